/**
 * Issue 10, `pgjobs doctor`: critical while a transaction holds back vacuum of the tasks table,
 * healthy again once it ends; flags many dead tuples; --json gives the same findings; flags
 * lapsed leases, an unserved backlog, sessions idle in a transaction and a bloated index.
 *
 * Every check is scoped to this file's own database (sessions of other databases do not hold
 * back vacuum here), so other test files running on the same server cannot change the verdicts.
 * The test server may run with autovacuum off (then setting_autovacuum is critical whatever we
 * do): the verdicts that must be healthy leave that one check out when the server says so.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type pg from "pg";
import { doctor, parseThresholds, type DoctorReport } from "../src/doctor.js";
import { runCli } from "./helpers/cli.js";
import { useDatabase } from "./helpers/db.js";
import { waitFor } from "./fixtures/issue3-util.js";

const db = useDatabase();
let skip: string[] = [];
/** Leave out setting_autovacuum where the server runs without autovacuum (read once). */
let skipRead = false;
async function readSkip(): Promise<void> {
  if (skipRead) return;
  skipRead = true;
  const { rows } = await db.query("select current_setting('autovacuum') as on");
  skip = rows[0].on === "on" ? [] : ["setting_autovacuum"];
}

const verdictOf = (r: DoctorReport, id: string) => {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `check ${id} is in the report`);
  return c.verdict;
};
const critical = (r: DoctorReport) => r.checks.filter((c) => c.verdict === "critical").map((c) => c.id);

/** Dead tuples in jobs.tasks: insert n tasks, delete them, and make the statistics say so now. */
async function makeDeadTuples(session: pg.Client, n: number): Promise<void> {
  await session.query(`insert into jobs.tasks (name, queue) select 'doc_dead', 'doc_dead' from generate_series(1, $1)`, [n]);
  await session.query("delete from jobs.tasks where name = 'doc_dead'");
  // Statistics are flushed at most once a second: force it (Postgres 15+), then wait until the
  // counts are visible to other sessions.
  const { rows: [fn] } = await session.query("select to_regproc('pg_stat_force_next_flush') is not null as exists");
  if (fn.exists) await session.query("select pg_stat_force_next_flush()");
  await waitFor(`${n} dead tuples in the statistics`, async () => {
    const { rows } = await db.query("select n_dead_tup::int as dead from pg_stat_user_tables where relid = 'jobs.tasks'::regclass");
    return rows[0].dead >= n;
  });
}

test("critical while a transaction holds back vacuum of the tasks table, healthy again once it ends", async (t) => {
  await readSkip();
  const holder = await db.connect();
  const worker = await db.connect();
  await holder.query("set application_name = 'doctor-test-holder'");
  const { rows: [{ pid }] } = await holder.query("select pg_backend_pid() as pid");
  // A snapshot taken, then dead tuples made after it: vacuum must keep them for this snapshot.
  await holder.query("begin isolation level repeatable read");
  await holder.query("select count(*) from jobs.tasks");
  await makeDeadTuples(worker, 2000);
  await worker.query("vacuum jobs.tasks");
  const { rows: [afterVacuum] } = await worker.query("select n_dead_tup::int as dead from pg_stat_user_tables where relid = 'jobs.tasks'::regclass");
  assert.equal(afterVacuum.dead, 2000, "vacuum ran and could not remove the 2,000 dead tuples");

  const thresholds = { deadTuplesMin: 1000 };
  const sick = await doctor({ pool: db.pool, schema: "jobs" }, { thresholds, skip });
  for (const c of sick.checks.filter((x) => x.verdict !== "ok")) t.diagnostic(`${c.verdict} ${c.id}: ${c.summary} -> ${c.advice}`);
  assert.equal(sick.verdict, "critical");
  const xmin = sick.checks.find((c) => c.id === "xmin_horizon")!;
  assert.equal(xmin.verdict, "critical");
  assert.match(xmin.summary, new RegExp(`^session pid ${pid} \\(doctor-test-holder, role \\w+\\), idle in transaction, in a transaction open for [\\d.]+s .* holds the xmin horizon back: vacuum of jobs.tasks ran after it started and had to leave 2,000 dead tuples$`));
  assert.equal(xmin.advice, `end that transaction (select pg_terminate_backend(${pid})) and fix the code that leaves it open; set idle_in_transaction_session_timeout`);
  const dead = sick.checks.find((c) => c.id === "dead_tuples")!;
  assert.equal(dead.verdict, "critical");
  assert.match(dead.advice, /^vacuum ran [\d.]+s ago but could not remove them: end what holds the xmin horizon \(see xmin_horizon\), then VACUUM jobs\.tasks$/);

  // The CLI says the same, and exits 1 so a cron job or a health check notices.
  const cli = await runCli(["doctor", "--database-url", db.url, "--threshold", "dead-tuples-min=1000", ...skip.flatMap((s) => ["--skip", s])]);
  assert.equal(cli.code, 1, cli.stderr);
  assert.match(cli.stdout, /^pgjobs doctor: schema jobs on [^:]+:\d+\/\w+: CRITICAL \(2 critical, \d+ warning, \d+ ok\)$/m);
  assert.match(cli.stdout, new RegExp(`^CRITICAL\\s+xmin horizon\\s+session pid ${pid} `, "m"));
  assert.match(cli.stdout, new RegExp(`^\\s+-> end that transaction \\(select pg_terminate_backend\\(${pid}\\)\\)`, "m"));

  // The transaction ends; vacuum can now do its job.
  await holder.query("commit");
  await worker.query("vacuum jobs.tasks");
  const healthy = await doctor({ pool: db.pool, schema: "jobs" }, { thresholds, skip });
  assert.deepEqual(critical(healthy), []);
  assert.equal(verdictOf(healthy, "xmin_horizon"), "ok");
  assert.equal(verdictOf(healthy, "dead_tuples"), "ok");
  assert.notEqual(healthy.verdict, "critical");
  const again = await runCli(["doctor", "--database-url", db.url, "--threshold", "dead-tuples-min=1000", ...skip.flatMap((s) => ["--skip", s])]);
  assert.equal(again.code, 0, again.stdout + again.stderr);
});

test("flags a tasks table with many dead tuples, and a table whose autovacuum was turned off", async () => {
  await readSkip();
  const session = await db.connect();
  // Autovacuum must not clean up between the deletes and the doctor's look.
  await session.query("alter table jobs.tasks set (autovacuum_enabled = false)");
  try {
    await makeDeadTuples(session, 3000);
    const r = await doctor({ pool: db.pool, schema: "jobs" }, { thresholds: { deadTuplesMin: 1000 } });
    const dead = r.checks.find((c) => c.id === "dead_tuples")!;
    assert.equal(dead.verdict, "critical");
    assert.match(dead.summary, /^jobs\.tasks: 3,000 dead, \d+ live \(\d+% dead\); jobs\.tasks last vacuumed /);
    assert.equal(verdictOf(r, "xmin_horizon"), "ok", "nothing holds vacuum back: it just has not run");
    const av = r.checks.find((c) => c.id === "setting_autovacuum")!;
    assert.equal(av.verdict, "critical");
    if (skip.length === 0) assert.equal(av.advice, "ALTER TABLE jobs.tasks RESET (autovacuum_enabled)");
    // With the default threshold (10,000 dead tuples) 3,000 is no finding.
    assert.equal(verdictOf(await doctor({ pool: db.pool, schema: "jobs" }), "dead_tuples"), "ok");
  } finally {
    await session.query("alter table jobs.tasks reset (autovacuum_enabled)");
    await session.query("vacuum jobs.tasks");
  }
});

test("--json gives a script the same findings", async () => {
  const holder = await db.connect();
  await holder.query("begin");
  await holder.query("select txid_current()");
  const args = ["doctor", "--json", "--database-url", db.url, "--threshold", "xmin-warning-seconds=0", "--threshold", "idle-in-transaction-warning-seconds=0"];
  const cli = await runCli(args);
  const inProcess = await doctor({ pool: db.pool, schema: "jobs" }, { thresholds: parseThresholds(["xmin-warning-seconds=0", "idle-in-transaction-warning-seconds=0"]) });
  await holder.query("rollback");
  const json = JSON.parse(cli.stdout) as DoctorReport;
  assert.equal(cli.code, inProcess.verdict === "critical" ? 1 : 0, cli.stderr);
  assert.equal(json.schema, "jobs");
  assert.equal(json.verdict, inProcess.verdict);
  assert.deepEqual(json.checks.map((c) => [c.id, c.verdict]), inProcess.checks.map((c) => [c.id, c.verdict]));
  for (const c of json.checks) {
    assert.ok(c.summary.length > 0 && c.advice.length > 0 && !c.advice.includes("\n"), `${c.id}: a summary and one line of advice`);
  }
  assert.equal(json.checks.find((c) => c.id === "xmin_horizon")!.verdict, "warning");
  assert.equal(json.checks.find((c) => c.id === "idle_in_transaction")!.verdict, "warning");
  assert.deepEqual(
    json.checks.map((c) => c.id),
    ["dead_tuples", "xmin_horizon", "idle_in_transaction", "index_bloat", "backlog", "lapsed_leases", "notify_queue", "replication_slots", "setting_autovacuum", "setting_track_counts", "setting_idle_in_transaction_session_timeout", "visibility"],
  );
});

test("flags leases nobody rescued and a backlog no worker serves", async () => {
  await db.query(`
    insert into jobs.tasks (name, queue, state, attempts, worker_id, started_at, lease_until)
    values ('doc_stuck', 'doc_stuck', 'running', 1, gen_random_uuid(), now() - interval '20 minutes', now() - interval '15 minutes')`);
  await db.query(`insert into jobs.tasks (name, queue, run_at) values ('doc_waiting', 'doc_waiting', now() - interval '10 minutes')`);
  try {
    const r = await doctor({ pool: db.pool, schema: "jobs" });
    const lapsed = r.checks.find((c) => c.id === "lapsed_leases")!;
    assert.equal(lapsed.verdict, "critical", "15 minutes past the lease, beyond the 10-minute default");
    assert.match(lapsed.summary, /^1 running task with a lapsed lease; the oldest lapsed 15m0\ds ago \(queue doc_stuck\)$/);
    const backlog = r.checks.find((c) => c.id === "backlog")!;
    assert.equal(backlog.verdict, "warning");
    assert.match(backlog.summary, /^1 ready task; oldest waits in doc_waiting for 10m0\ds; no live worker serves doc_waiting$/);
    assert.equal(backlog.advice, "start a worker for doc_waiting: pgjobs worker --app ... --queues doc_waiting");
    const strict = await doctor({ pool: db.pool, schema: "jobs" }, { thresholds: { backlogCriticalSeconds: 300 } });
    assert.equal(verdictOf(strict, "backlog"), "critical");
  } finally {
    await db.query("delete from jobs.tasks where name in ('doc_stuck', 'doc_waiting')");
  }
});

test("estimates index bloat: the ready index of a queue that drained", async (t) => {
  const session = await db.connect();
  await session.query("alter table jobs.tasks set (autovacuum_enabled = false)");
  try {
    // 20,000 ready tasks fill tasks_ready_idx; once they have run, vacuum empties its pages but
    // the index keeps its size.
    await session.query(`insert into jobs.tasks (name, queue) select 'doc_bloat', 'doc_bloat' from generate_series(1, 20000)`);
    await session.query(`update jobs.tasks set state = 'succeeded', finished_at = now() where name = 'doc_bloat'`);
    await session.query("vacuum analyze jobs.tasks");
    const r = await doctor({ pool: db.pool, schema: "jobs" }, { thresholds: { indexBloatWarningBytes: 100_000 } });
    const bloat = r.checks.find((c) => c.id === "index_bloat")!;
    t.diagnostic(`${bloat.summary}`);
    assert.equal(bloat.verdict, "warning");
    const ready = (bloat.details.indexes as Array<{ index: string; estimatedBloatRatio: number; bytes: number }>).find((i) => i.index === "jobs.tasks_ready_idx")!;
    assert.ok(ready.estimatedBloatRatio > 0.9, `the drained ready index is mostly empty pages: ${JSON.stringify(ready)}`);
    assert.match(bloat.advice, /^rebuild it without blocking the queue: REINDEX INDEX CONCURRENTLY jobs\.tasks_\w+$/);
    await session.query("reindex index jobs.tasks_ready_idx");
    const after = await doctor({ pool: db.pool, schema: "jobs" }, { thresholds: { indexBloatWarningBytes: 100_000 } });
    const readyAfter = (after.checks.find((c) => c.id === "index_bloat")!.details.indexes as Array<{ index: string; estimatedBloatBytes: number }>).find((i) => i.index === "jobs.tasks_ready_idx")!;
    assert.equal(readyAfter.estimatedBloatBytes, 0, "a fresh build has no bloat");
  } finally {
    await session.query("delete from jobs.tasks where name = 'doc_bloat'");
    await session.query("alter table jobs.tasks reset (autovacuum_enabled)");
    await session.query("vacuum jobs.tasks");
  }
});

test("bad thresholds and check names are one-line errors", async () => {
  const bad = await runCli(["doctor", "--database-url", db.url, "--threshold", "dead-tuples=5"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^pgjobs: --threshold "dead-tuples=5": expected name=value with one of deadTuplesMin, /);
  const skipBad = await runCli(["doctor", "--database-url", db.url, "--skip", "nope"]);
  assert.equal(skipBad.code, 2);
  assert.match(skipBad.stderr, /^pgjobs: --skip nope: no such check; the checks are dead_tuples, xmin_horizon, /);
  const noSchema = await runCli(["doctor", "--database-url", db.url, "--schema", "nothing_here"]);
  assert.equal(noSchema.code, 2);
  assert.match(noSchema.stderr, /^pgjobs: schema nothing_here has no tasks table in database \w+: run pgjobs migrate, or pass the --schema your app uses\n$/);
});
