/**
 * The operator's CLI (issue 6): `pgjobs status`, `pgjobs task show|retry|cancel ID`,
 * `pgjobs purge`, `pgjobs enqueue`, each with --json, against a real database; bad input is one
 * line on stderr and exit 2, checked before anything is sent to a server.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createJobs, type Jobs } from "../src/index.js";
import { runCli, type CliResult } from "./helpers/cli.js";
import { useDatabase } from "./helpers/db.js";
import { deferred } from "./fixtures/issue6-helpers.js";

const db = useDatabase();
/** Nothing listens on port 1: a command that reached the network would fail to connect. */
const NOWHERE = "postgres://postgres@127.0.0.1:1/nowhere";

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCli(args, { env: { DATABASE_URL: db.url, ...env } });
}

async function json<T = any>(args: string[]): Promise<T> {
  const r = await cli([...args, "--json"]);
  assert.equal(r.code, 0, `pgjobs ${args.join(" ")}: exit ${r.code}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

/** A user error: exit 2, nothing on stdout, exactly one line on stderr, no stack trace. */
function assertOneLineError(r: CliResult, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code 2, got ${r.code}; stderr: ${r.stderr}`);
  assert.equal(r.stdout, "");
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^pgjobs: /);
  assert.match(lines[0]!, pattern);
}

async function insertTask(values: Record<string, unknown>): Promise<string> {
  const cols = Object.keys(values);
  const { rows } = await db.query(
    `insert into jobs.tasks (${cols.join(", ")}) values (${cols.map((_, i) => `$${i + 1}`).join(", ")}) returning id`,
    Object.values(values),
  );
  return rows[0].id;
}

function jobsFor(): Jobs {
  const jobs = createJobs({ connectionString: db.url, logLevel: "silent", poolSize: 3, resultPoll: 60_000 });
  db.onClose(() => jobs.close());
  return jobs;
}

test("pgjobs status shows each queue's counts and the live workers", async () => {
  const jobs = jobsFor();
  const gate = deferred();
  const started = deferred();
  jobs.task("busy", async () => {
    started.resolve();
    await gate.promise;
  }, { queue: "ops-status" });
  const worker = await jobs.worker({ queues: ["ops-status"], concurrency: 1, name: "status-worker" }).start();
  await jobs.getTask("busy")!.delay();
  await started.promise;
  for (let i = 0; i < 3; i++) await insertTask({ name: "x", queue: "ops-status", state: "ready" });
  await insertTask({ name: "x", queue: "ops-status", state: "pending", run_at: new Date(Date.now() + 3_600_000) });
  for (let i = 0; i < 2; i++) await insertTask({ name: "x", queue: "ops-status", state: "failed", finished_at: new Date() });
  await insertTask({ name: "x", queue: "ops-status", state: "succeeded", finished_at: new Date() });
  await insertTask({ name: "x", queue: "ops-status", state: "cancelled", finished_at: new Date() });

  const [s, human] = await Promise.all([json(["status"]), cli(["status"])]);
  const q = s.queues.find((x: { queue: string }) => x.queue === "ops-status");
  assert.deepEqual({ ...q, oldest_ready_s: typeof q.oldest_ready_s }, {
    queue: "ops-status", ready: 3, scheduled: 1, running: 1, failed: 2, succeeded: 1, cancelled: 1, oldest_ready_s: "number",
  });
  const w = s.workers.find((x: { id: string }) => x.id === worker.id);
  assert.equal(w.name, "status-worker");
  assert.equal(w.pid, process.pid);
  assert.deepEqual(w.queues, ["ops-status"]);
  assert.equal(w.running, 1);
  assert.ok(w.tasks.includes("busy"));

  assert.equal(human.code, 0, human.stderr);
  const lines = human.stdout.split("\n");
  assert.match(lines[0]!, /^QUEUE\s+READY\s+SCHEDULED\s+RUNNING\s+FAILED\s+SUCCEEDED\s+CANCELLED\s+OLDEST READY$/);
  assert.ok(lines.some((l) => /^ops-status\s+3\s+1\s+1\s+2\s+1\s+1\s+\d/.test(l)), human.stdout);
  assert.ok(lines.some((l) => /^status-worker\s+\S+\s+\d+\s+ops-status\s+1\s+1\s+[\d.]+s ago$/.test(l)), human.stdout);
  gate.resolve();
});

test("pgjobs task show prints every column, with --json the row", async () => {
  const id = await insertTask({
    name: "report", queue: "ops-show", state: "failed", attempts: 4, args: JSON.stringify(["2026-11-01", 3]),
    error: JSON.stringify({ name: "HTTPError", message: "upstream said 503", stack: "HTTPError: upstream said 503\n    at fetchPage (tasks.js:12:9)" }),
    finished_at: new Date(),
  });
  const [row, human] = await Promise.all([json(["task", "show", id]), cli(["task", "show", id])]);
  assert.equal(row.id, id);
  assert.equal(row.state, "failed");
  assert.deepEqual(row.args, ["2026-11-01", 3]);
  assert.equal(row.error.message, "upstream said 503");
  assert.equal(row.max_attempts, 4);

  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, new RegExp(`^id:\\s+${id}$`, "m"));
  assert.match(human.stdout, /^state:\s+failed$/m);
  assert.match(human.stdout, /^attempts:\s+4 of 4$/m);
  assert.match(human.stdout, /^args:\s+\["2026-11-01",3\]$/m);
  assert.match(human.stdout, /^error:\s+HTTPError: upstream said 503$/m);
  assert.match(human.stdout, /^\s+at fetchPage \(tasks\.js:12:9\)$/m);

  const [missing, bad] = await Promise.all([cli(["task", "show", "999999999"]), cli(["task", "show", "12abc"], { DATABASE_URL: NOWHERE })]);
  assertOneLineError(missing, /no task with id 999999999 in schema jobs/);
  assertOneLineError(bad, /invalid task id "12abc": a task id is a whole number/);
});

test("pgjobs task retry runs a failed task again; any other state is refused and left alone", async () => {
  const failed = await insertTask({ name: "flaky", queue: "ops-retry", state: "failed", attempts: 4, finished_at: new Date() });
  const ready = await insertTask({ name: "flaky", queue: "ops-retry", state: "ready" });
  assert.deepEqual(await json(["task", "retry", failed]), { id: failed, state: "ready" });
  const { rows } = await db.query("select state, attempts, finished_at from jobs.tasks where id = $1", [failed]);
  assert.deepEqual(rows[0], { state: "ready", attempts: 0, finished_at: null });

  const [refused, twice] = await Promise.all([cli(["task", "retry", ready]), cli(["task", "retry", failed])]);
  assertOneLineError(refused, new RegExp(`task flaky \\(id ${ready}\\) is ready: only failed or cancelled tasks can be retried`));
  assertOneLineError(twice, /is ready: only failed or cancelled/);
  const { rows: untouched } = await db.query("select state, attempts from jobs.tasks where id = $1", [ready]);
  assert.deepEqual(untouched[0], { state: "ready", attempts: 0 });
});

test("pgjobs task cancel: a queued task never runs, a running one has its signal aborted, a finished one is refused", async () => {
  const jobs = jobsFor();
  const started = deferred();
  const aborted = deferred<string>();
  const slow = jobs.task("slow", async (ctx) => {
    started.resolve();
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    aborted.resolve(String((ctx.signal.reason as Error)?.message));
  }, { queue: "ops-cancel" });
  await jobs.worker({ queues: ["ops-cancel"], concurrency: 1 }).start();
  const running = await slow.delay();
  await started.promise;
  const queued = await slow.applyAsync([], { countdown: 3600 });

  assert.deepEqual(await json(["task", "cancel", queued.id]), { id: queued.id, state: "cancelled", was: "pending" });
  const human = await cli(["task", "cancel", running.id]);
  assert.equal(human.code, 0, human.stderr);
  assert.equal(human.stdout, `task ${running.id} cancelled (it was running)\n`);
  assert.match(await aborted.promise, /was cancelled/);
  assert.equal(await running.state(), "cancelled");
  assert.equal(await queued.state(), "cancelled");

  assertOneLineError(await cli(["task", "cancel", running.id]), new RegExp(`task slow \\(id ${running.id}\\) already cancelled: only unfinished tasks can be cancelled`));
});

test("pgjobs purge deletes old finished tasks of a queue in batches, shows progress, and keeps what it must", async () => {
  const old = new Date(Date.now() - 8 * 86_400_000);
  const recent = new Date(Date.now() - 86_400_000);
  await db.query(
    `insert into jobs.tasks (name, queue, state, finished_at)
     select 'gone', 'ops-purge', 'failed', $1 from generate_series(1, 120)`,
    [old],
  );
  const keep = [
    await insertTask({ name: "recent", queue: "ops-purge", state: "failed", finished_at: recent }),
    await insertTask({ name: "other-state", queue: "ops-purge", state: "succeeded", finished_at: old }),
    await insertTask({ name: "other-queue", queue: "ops-purge-2", state: "failed", finished_at: old }),
  ];

  const dry = await json(["purge", "--queue", "ops-purge", "--state", "failed", "--older-than", "7d", "--dry-run"]);
  assert.deepEqual(dry, { deleted: 0, matched: 120, dryRun: true });

  const r = await cli(["purge", "--queue", "ops-purge", "--state", "failed", "--older-than", "7d", "--batch-size", "50"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "deleted 120 failed tasks of queue ops-purge finished more than 7d ago\n");
  const progress = r.stderr.split("\n").filter((l) => l !== "");
  assert.ok(progress.every((l) => /^purge: \d+\/120 deleted \(\d+%\)$/.test(l)), r.stderr);
  assert.equal(progress[0], "purge: 0/120 deleted (0%)");
  assert.equal(progress.at(-1), "purge: 120/120 deleted (100%)");
  const { rows } = await db.query("select count(*)::int as n from jobs.tasks where name = 'gone'");
  assert.equal(rows[0].n, 0);
  const { rows: kept } = await db.query("select count(*)::int as n from jobs.tasks where id = any($1::bigint[])", [keep]);
  assert.equal(kept[0].n, 3);

  // A succeeded member of a chord still waiting is kept: the chord's callback reads its result.
  const chord = "7f1c0f9e-0000-4000-8000-000000000001";
  await db.query(`insert into jobs.chords (id, group_id, total, remaining, callback) values ($1, gen_random_uuid(), 2, 1, '{}')`, [chord]);
  const member = await insertTask({ name: "member", queue: "ops-purge-chord", state: "succeeded", finished_at: old, chord_id: chord, result: "1" });
  const plain = await insertTask({ name: "plain", queue: "ops-purge-chord", state: "succeeded", finished_at: old });
  assert.deepEqual(await json(["purge", "--queue", "ops-purge-chord", "--state", "succeeded", "--older-than", "7d"]), { deleted: 1, matched: 1, dryRun: false });
  const { rows: left } = await db.query("select id from jobs.tasks where id = any($1::bigint[])", [[member, plain]]);
  assert.deepEqual(left.map((x) => x.id), [member]);
});

test("pgjobs purge refuses bad input in one line before connecting", async () => {
  const env = { DATABASE_URL: NOWHERE };
  const [state, age, queue] = await Promise.all([
    cli(["purge", "--state", "running", "--older-than", "7d"], env),
    cli(["purge", "--state", "failed", "--older-than", "a week"], env),
    cli(["purge", "--queue", "no spaces", "--state", "failed", "--older-than", "7d"], env),
  ]);
  assertOneLineError(state, /state "running" cannot be purged: only finished tasks can be: use succeeded, failed or cancelled/);
  assertOneLineError(age, /--older-than: cannot read "a week" as a duration/);
  assertOneLineError(queue, /invalid queue name "no spaces"/);
});

test("pgjobs enqueue puts a task on a queue through jobs.enqueue_many, and a worker runs it", async () => {
  const jobs = jobsFor();
  jobs.task("add", async (_ctx, a: number, b: number) => a + b, { queue: "ops-enq" });
  await jobs.worker({ queues: ["ops-enq"], concurrency: 2 }).start();

  const now = await json(["enqueue", "add", "--args", "[2, 3]", "--queue", "ops-enq"]);
  assert.ok(["ready", "running", "succeeded"].includes(now.state), now.state); // the worker may be quick
  assert.deepEqual({ workers: now.workers, knownBy: now.knownBy }, { workers: 1, knownBy: 1 });
  assert.equal(await jobs.result(now.id).get({ timeout: 10_000 }), 5);

  const later = await json(["enqueue", "add", "--args", "[1, 1]", "--queue", "ops-enq-later", "--priority", "7", "--countdown", "60", "--retries", "0"]);
  assert.equal(later.state, "pending");
  const { rows } = await db.query(
    "select name, args, queue, priority, max_attempts, extract(epoch from run_at - created_at)::float8 as delay_s from jobs.tasks where id = $1",
    [later.id],
  );
  // run_at and created_at come from the same transaction's now(): exactly the countdown apart.
  assert.deepEqual(rows[0], { name: "add", args: [1, 1], queue: "ops-enq-later", priority: 7, max_attempts: 1, delay_s: 60 });

  // Without --json, the id alone; a dedup key an unfinished task holds gives that task's id. A
  // name no live worker of the queue registered is enqueued, with a warning.
  const [human, typo] = await Promise.all([
    cli(["enqueue", "add", "--args", "[4, 4]", "--queue", "ops-enq-later", "--countdown", "5m", "--key", "once"]),
    cli(["enqueue", "ad", "--queue", "ops-enq"]),
  ]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^\d+\n$/);
  const again = await cli(["enqueue", "add", "--args", "[5, 5]", "--queue", "ops-enq-later", "--key", "once"]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, human.stdout);

  assert.equal(typo.code, 0, typo.stderr);
  assert.equal(typo.stderr, "pgjobs: warning: none of the 1 live workers of queue ops-enq registered task ad: check the name\n");
});

test("pgjobs enqueue refuses bad input in one line before connecting", async () => {
  const env = { DATABASE_URL: NOWHERE };
  const runs = await Promise.all([
    cli(["enqueue", "add", "--args", "{\"a\": 1}"], env),
    cli(["enqueue", "add", "--args", "[1,"], env),
    cli(["enqueue", "add", "--priority", "101"], env),
    cli(["enqueue", "add", "--queue", "a queue"], env),
    cli(["enqueue", "add", "--countdown", "soon"], env),
  ]);
  assertOneLineError(runs[0]!, /task add: args must be a JSON array of the handler's arguments/);
  assertOneLineError(runs[1]!, /task add: --args is not JSON/);
  assertOneLineError(runs[2]!, /task add: priority 101 is out of range/);
  assertOneLineError(runs[3]!, /task add: invalid queue name "a queue"/);
  assertOneLineError(runs[4]!, /countdown: cannot read "soon" as a duration/);
});

test("every operator command validates --schema before connecting and needs a database URL", async () => {
  const env = { DATABASE_URL: NOWHERE };
  const commands = [["status"], ["task", "show", "1"], ["task", "retry", "1"], ["task", "cancel", "1"], ["purge", "--state", "failed", "--older-than", "7d"], ["enqueue", "add"]];
  const runs = await Promise.all(commands.map((c) => cli([...c, "--schema", "jobs; drop table x"], env)));
  for (const r of runs) assertOneLineError(r, /invalid schema name "jobs; drop table x"/);
  const noUrl = await cli(["status"], { DATABASE_URL: undefined });
  assertOneLineError(noUrl, /no database to connect to: pass --database-url/);
  const json = await cli(["status", "--json"], { DATABASE_URL: NOWHERE });
  assert.equal(json.code, 2);
  assert.match(JSON.parse(json.stdout).error.message, /cannot connect to the database at 127\.0\.0\.1:1\/nowhere/);
});
