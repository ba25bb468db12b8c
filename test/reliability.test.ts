/**
 * Reliability under faults (issue 6): workers killed with SIGKILL, stopped with SIGTERM, cut off
 * from the database, racing each other; tasks that outlive their lease or kill their process.
 * Workers run in their own processes (`pgjobs worker --app dist/test/fixtures/issue6-app.js`) where
 * the fault is a process's death; in this process where the test must steer a handler.
 * Figures (time to rescue, throughput) are printed as test diagnostics, never asserted.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { createJobs, InvalidInputError, TaskFailedError, type Jobs } from "../src/index.js";
import { useDatabase } from "./helpers/db.js";
import {
  countBy,
  deferred,
  enqueueScripts,
  overlappingAttempts,
  Procs,
  RACE_WORKER,
  readLog,
  statesOf,
  TcpProxy,
  tempDir,
  waitFor,
  within,
  workersOf,
} from "./fixtures/issue6-helpers.js";

const db = useDatabase();
const procs = new Procs(db);

/** A Jobs instance on the test database, closed at teardown. */
function jobsFor(options: Partial<Parameters<typeof createJobs>[0]> = {}): Jobs {
  const jobs = createJobs({ connectionString: db.url, logLevel: "silent", poolSize: 4, resultPoll: 60_000, ...options });
  db.onClose(() => jobs.close());
  return jobs;
}

/** A pino logger whose lines land in `lines` (parsed). */
function captureLogger(lines: Array<Record<string, unknown>>) {
  return pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
}

async function runningOn(workerId: string): Promise<number> {
  const { rows } = await db.query("select count(*)::int as n from jobs.tasks where state = 'running' and worker_id = $1", [workerId]);
  return rows[0].n;
}

test("kill -9 of a worker holding 10 running tasks: a live worker completes all 10 once their lease lapses, none lost, none run twice at once", async (t) => {
  const log = join(tempDir(db, "pgjobs-kill9-"), "attempts.jsonl");
  const flags = ["--queues", "kill9", "--concurrency", "10", "--lease", "2s", "--heartbeat-interval", "500ms", "--rescue-interval", "1s"];
  const victim = procs.worker(db.url, flags, { PGJOBS_FIXTURE_LOG: log });
  const victimId = await waitFor("the first worker to register", async () => (await workersOf(db, "kill9")).get(victim.pid));
  // Attempt 1 hangs (the victim holds all 10 until it dies); attempt 2 takes 50 ms.
  const ids = await enqueueScripts(db, "kill9", Array.from({ length: 10 }, () => ["hang-first", 50]));
  await waitFor("all 10 running on the first worker", async () => (await runningOn(victimId)) === 10 && readLog(log).length === 10);

  const survivor = procs.worker(db.url, flags, { PGJOBS_FIXTURE_LOG: log });
  const survivorId = await waitFor("the second worker to register", async () => (await workersOf(db, "kill9")).get(survivor.pid));
  assert.equal(await runningOn(survivorId), 0, "the survivor claimed nothing while the victim held every task");

  const killedAt = Date.now();
  victim.kill("SIGKILL");
  assert.equal((await victim.exited).signal, "SIGKILL");
  await waitFor("all 10 to succeed", async () => (await statesOf(db, ids)).succeeded === 10, 30_000, 20);
  const doneMs = Date.now() - killedAt;

  const entries = readLog(log);
  const survivorStarts = entries.filter((e) => e.ev === "start" && e.pid === survivor.pid);
  assert.deepEqual(survivorStarts.map((e) => e.id).sort(), [...ids].sort(), "the survivor ran each task");
  assert.ok(survivorStarts.every((e) => e.attempt === 2), "the lost attempt counted: the rescued run is attempt 2");
  const ends = countBy(entries, "end");
  assert.deepEqual([...ends.values()], ids.map(() => 1), "each task completed exactly once");
  assert.ok(entries.filter((e) => e.ev === "end").every((e) => e.pid === survivor.pid));
  assert.deepEqual(overlappingAttempts(entries, new Map([[victim.pid, killedAt]])), [], "no task ran on two live workers at once");
  const { rows } = await db.query("select attempts, worker_id, result from jobs.tasks where id = any($1::bigint[])", [ids]);
  for (const r of rows) {
    assert.equal(r.attempts, 2);
    assert.equal(r.worker_id, survivorId);
    assert.deepEqual(r.result, { pid: survivor.pid, attempt: 2 });
  }
  const firstRescueMs = Math.min(...survivorStarts.map((e) => e.t)) - killedAt;
  // The promise: rescued within lease + one rescue interval of the last renewal (which came
  // before the kill). 2 s on top for a loaded machine: claiming and starting after the rescue.
  const lastRescueMs = Math.max(...survivorStarts.map((e) => e.t)) - killedAt;
  assert.ok(lastRescueMs <= 2_000 + 1_000 + 2_000, `every task started again within lease + rescue interval (+2 s): the last after ${lastRescueMs} ms`);
  t.diagnostic(`kill -9 -> first rescued task started: ${firstRescueMs} ms; -> all 10 succeeded: ${doneMs} ms (lease 2 s, heartbeat 0.5 s, rescue interval 1 s)`);

  survivor.kill("SIGTERM");
  assert.equal((await survivor.exited).code, 0);
});

test("a task running 4 times its lease on a live worker is never rescued and runs once", async (t) => {
  const jobs = jobsFor();
  const runs = new Map<string, number>();
  const long = jobs.task("long", async (ctx, ms: number) => {
    runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
    await sleep(ms, undefined, { signal: ctx.signal });
    return ctx.attempt;
  }, { queue: "long" });
  const runner = await jobs.worker({ queues: ["long"], concurrency: 3, lease: "1s", heartbeatInterval: 300, rescueInterval: 100 }).start();
  const stale: unknown[] = [];
  runner.on("stale", (s) => stale.push(s));
  // A second, eager rescuer on another queue: rescue looks at every queue's running tasks.
  const rescuerJobs = jobsFor();
  await rescuerJobs.worker({ queues: ["long-rescuer"], rescueInterval: 100 }).start();

  const results = await Promise.all([1, 2, 3].map(() => long.delay(4_000)));
  const ids = results.map((r) => r.id);
  await waitFor("the long tasks to start", async () => runs.size === 3);
  // A control: an orphan whose lease lapses 2 s into the long tasks' run. Its rescue proves the
  // rescuers were at work while the long tasks ran past their lease.
  const { rows } = await db.query(
    `insert into jobs.tasks (name, queue, state, attempts, worker_id, lease_until, started_at)
     values ('orphan', 'long-orphan', 'running', 1, gen_random_uuid(), now() + interval '2 seconds', now()) returning id`,
  );
  const orphan = rows[0].id;
  await waitFor("the orphan to be rescued", async () => {
    const { rows } = await db.query("select state, error->>'name' as error from jobs.tasks where id = $1", [orphan]);
    return rows[0].state === "ready" && rows[0].error === "LeaseExpired";
  });
  assert.deepEqual(await statesOf(db, ids), { running: 3 }, "the long tasks were still running when the orphan was rescued");

  assert.deepEqual(await Promise.all(results.map((r) => r.get({ timeout: 10_000 }))), [1, 1, 1]);
  assert.deepEqual([...runs.values()], [1, 1, 1], "each ran once");
  assert.deepEqual(stale, []);
  const { rows: after } = await db.query("select attempts, error from jobs.tasks where id = any($1::bigint[])", [ids]);
  assert.deepEqual(after, ids.map(() => ({ attempts: 1, error: null })));
  t.diagnostic("3 tasks of 4 s with a 1 s lease, rescuers every 100 ms: 0 rescued, 0 stale acknowledgements");
});

test("SIGTERM: running tasks finish, claimed-but-not-started ones are runnable again with attempts unchanged, exit 0", async () => {
  const log = join(tempDir(db, "pgjobs-term-"), "attempts.jsonl");
  const w = procs.worker(db.url, ["--queues", "term", "--concurrency", "2", "--prefetch", "5", "--lease", "10s"], { PGJOBS_FIXTURE_LOG: log });
  const workerId = await waitFor("the worker to register", async () => (await workersOf(db, "term")).get(w.pid));
  // 3 s: long enough that the signal lands while the first two still run, even on a loaded machine.
  const ids = await enqueueScripts(db, "term", Array.from({ length: 7 }, () => ["sleep", 3_000]));
  // Claims of up to 7 (concurrency 2 + prefetch 5): 2 start, the rest wait in the worker's buffer.
  // (The idle worker's offered slot is taken back after the first claim; the buffer is then more
  // than half full, so the seventh task may stay ready: it is never claimed again before the stop.)
  await waitFor("2 started, at least 3 more claimed", async () => readLog(log).length === 2 && (await runningOn(workerId)) >= 5);
  const started = readLog(log).map((e) => e.id);

  w.kill("SIGTERM");
  const exit = await w.exited;
  assert.equal(exit.code, 0, w.stderr());

  const { rows } = await db.query<{ id: string; state: string; attempts: number; started_at: Date | null }>(
    "select id, state, attempts, started_at from jobs.tasks where id = any($1::bigint[]) order by id",
    [ids],
  );
  for (const r of rows) {
    if (started.includes(r.id)) {
      assert.equal(r.state, "succeeded", `running task ${r.id} finished`);
      assert.equal(r.attempts, 1);
    } else {
      assert.equal(r.state, "ready", `unstarted task ${r.id} is runnable again`);
      assert.equal(r.attempts, 0, "its attempt was handed back");
      assert.equal(r.started_at, null);
    }
  }
  assert.equal(rows.filter((r) => r.state === "ready").length, 5);
  const entries = readLog(log);
  assert.equal(entries.filter((e) => e.ev === "end").length, 2, "only the two running tasks ran");
  assert.equal((await workersOf(db, "term")).size, 0, "the worker deregistered");
});

test("a second SIGTERM stops at once: running tasks are aborted and handed back, exit 0", async (t) => {
  const log = join(tempDir(db, "pgjobs-term2-"), "attempts.jsonl");
  const w = procs.worker(db.url, ["--queues", "term2", "--concurrency", "2", "--shutdown-grace", "60s"], { PGJOBS_FIXTURE_LOG: log });
  await waitFor("the worker to register", async () => (await workersOf(db, "term2")).size === 1);
  const ids = await enqueueScripts(db, "term2", [["hang"], ["hang"]]);
  await waitFor("both to start", () => readLog(log).length === 2);
  w.kill("SIGTERM");
  await waitFor("the first signal to be taken", () => w.stdout().includes("stopping: finishing running tasks"));
  const second = Date.now();
  w.kill("SIGTERM");
  assert.equal((await w.exited).code, 0, w.stderr());
  t.diagnostic(`second SIGTERM -> exit: ${Date.now() - second} ms (grace was 60 s)`);
  const { rows } = await db.query("select state, attempts from jobs.tasks where id = any($1::bigint[])", [ids]);
  assert.deepEqual(rows, [{ state: "ready", attempts: 0 }, { state: "ready", attempts: 0 }], "handed back: a stop by the worker does not count as an attempt");
});

test("four worker processes with random claim batch sizes and heartbeats every few ms race over 20,000 tasks: each succeeds exactly once, no deadlock", async (t) => {
  const N = 20_000;
  const log = join(tempDir(db, "pgjobs-race-"), "attempts.jsonl");
  const seed = Number(process.env.PGJOBS_RACE_SEED ?? Date.now() % 100_000);
  let s = seed;
  const rand = (lo: number, hi: number) => {
    s = (s * 1103515245 + 12345) % 2 ** 31; // a seeded LCG: a failure can be replayed with PGJOBS_RACE_SEED
    return lo + (s % (hi - lo + 1));
  };
  // Heartbeats every few ms, so lease renewals run alongside claims and acknowledgements (with
  // the default 5 s there would be none in this test's 2-3 s): they lock the same rows.
  const configs = [1, 2, 3, 4].map(() => ({ queue: "race", concurrency: rand(4, 60), prefetch: rand(0, 100), batchSize: rand(1, 250), heartbeatMs: rand(5, 40) }));
  t.diagnostic(`seed ${seed}: ${JSON.stringify(configs)}`);
  const workers = configs.map((c) => procs.node([RACE_WORKER, JSON.stringify(c)], { DATABASE_URL: db.url, PGJOBS_FIXTURE_LOG: log, PGJOBS_LOG_LEVEL: "warn", PGJOBS_FIXTURE_POOL: "3" }));
  await waitFor("4 workers to register", async () => (await workersOf(db, "race")).size === 4);
  const deadlocksBefore = await deadlocks();

  const began = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < N; i += 1_000) ids.push(...(await enqueueScripts(db, "race", Array.from({ length: 1_000 }, () => ["ok"]))));
  await waitFor(
    "all 20,000 to succeed",
    async () => {
      const { rows } = await db.query("select count(*)::int as n from jobs.tasks where queue = 'race' and state = 'succeeded'");
      return rows[0].n === N;
    },
    90_000,
    200,
  );
  const elapsed = Date.now() - began;
  for (const w of workers) w.kill("SIGTERM");
  const exits = await Promise.all(workers.map((w) => w.exited));
  assert.deepEqual(exits.map((e) => e.code), [0, 0, 0, 0], workers.map((w) => w.stderr()).join("\n"));

  assert.deepEqual(await statesOf(db, ids), { succeeded: N }, "every task succeeded, none left running");
  const entries = readLog(log);
  const starts = countBy(entries, "start");
  const ends = countBy(entries, "end");
  assert.equal(starts.size, N);
  assert.equal(ends.size, N);
  assert.ok([...starts.values()].every((n) => n === 1), "each task started exactly once");
  assert.ok([...ends.values()].every((n) => n === 1), "each task completed exactly once");
  const { rows: attempts } = await db.query("select max(attempts)::int as max from jobs.tasks where queue = 'race'");
  assert.equal(attempts[0].max, 1, "no task needed a second attempt");

  const summaries = workers.map((w) => JSON.parse(w.stdout().trim().split("\n").at(-1)!) as { claims: number; claimSizes: Record<string, number>; stale: number; errors: string[] });
  const output = workers.map((w) => w.stdout() + w.stderr()).join("\n");
  assert.doesNotMatch(output, /deadlock/i);
  assert.deepEqual(summaries.flatMap((x) => x.errors), []);
  assert.deepEqual(summaries.map((x) => x.stale), [0, 0, 0, 0]);
  assert.equal(await deadlocks(), deadlocksBefore, "pg_stat_database counted no deadlock");
  const perPid = new Map<number, number>();
  for (const e of entries) if (e.ev === "end") perPid.set(e.pid, (perPid.get(e.pid) ?? 0) + 1);
  t.diagnostic(
    `20,000 tasks in ${elapsed} ms (${Math.round(N / (elapsed / 1000))} tasks/s) over 4 processes; ` +
      `tasks per process ${JSON.stringify(workers.map((w) => perPid.get(w.pid) ?? 0))}; claims ${JSON.stringify(summaries.map((x) => x.claims))}; ` +
      `distinct claim sizes ${JSON.stringify(summaries.map((x) => Object.keys(x.claimSizes).length))}`,
  );
});

async function deadlocks(): Promise<number> {
  const { rows } = await db.query("select deadlocks::int as n from pg_stat_database where datname = current_database()");
  return rows[0].n;
}

test("a task that SIGKILLs its process every time fails after its max attempts while other tasks keep flowing (--processes 2)", async (t) => {
  const log = join(tempDir(db, "pgjobs-poison-"), "attempts.jsonl");
  // The supervisor restarts a child that dies; with --processes 1 the worker is the CLI process
  // itself, and a task that kills it takes the only worker down: restarting is then the process
  // manager's job (systemd, Kubernetes), and the task is rescued when a worker comes back.
  const sup = procs.worker(
    db.url,
    ["--queues", "poison", "--processes", "2", "--concurrency", "2", "--lease", "2s", "--heartbeat-interval", "500ms", "--rescue-interval", "500ms", "--poll-interval", "500ms"],
    { PGJOBS_FIXTURE_LOG: log, PGJOBS_FIXTURE_POOL: "3" },
  );
  await waitFor("2 worker processes to register", async () => (await workersOf(db, "poison")).size === 2);
  const began = Date.now();
  const [poison] = await enqueueScripts(db, "poison", [["sigkill"]], 3);
  const ok = await enqueueScripts(db, "poison", Array.from({ length: 40 }, () => ["sleep", 100]), 10);
  await waitFor(
    "the poison task to fail for good and the others to succeed",
    async () => (await statesOf(db, [poison!])).failed === 1 && (await statesOf(db, ok)).succeeded === 40,
    45_000,
    100,
  );
  const { rows } = await db.query("select attempts, error from jobs.tasks where id = $1", [poison]);
  assert.equal(rows[0].attempts, 3);
  assert.equal(rows[0].error.name, "LeaseExpired");
  const entries = readLog(log);
  const poisonStarts = entries.filter((e) => e.id === poison);
  assert.deepEqual(poisonStarts.map((e) => e.attempt), [1, 2, 3]);
  assert.equal(new Set(poisonStarts.map((e) => e.pid)).size, 3, "each attempt killed a different process");
  // At least once, not exactly once: a task that finished in a process the poison task killed
  // before its acknowledgement landed is rescued and runs again. Only a killed process may have
  // run a task that another process then ran again.
  const killed = new Set(poisonStarts.map((e) => e.pid));
  for (const id of ok) {
    const ends = entries.filter((e) => e.id === id && e.ev === "end");
    assert.ok(ends.length >= 1, `task ${id} completed`);
    assert.ok(ends.slice(0, -1).every((e) => killed.has(e.pid)), `task ${id} ran again only after a process that ran it was killed: ${JSON.stringify(ends)}`);
  }
  const rerun = ok.filter((id) => entries.filter((e) => e.id === id && e.ev === "end").length > 1).length;
  const deaths = sup.stdout().split("\n").filter((l) => l.includes("worker process died; restarting it"));
  assert.equal(deaths.length, 3, deaths.join("\n"));
  t.diagnostic(`poison task failed for good after 3 attempts in ${Date.now() - began} ms; 40 other tasks succeeded meanwhile (${rerun} of them ran again after their process was killed before the acknowledgement landed); ${deaths.length} child restarts`);

  // The last restarted child must be up before the signal: one still loading dies of it (see the
  // supervisor test below).
  await waitFor("the restarted children to start", () => sup.stdout().split("\n").filter((l) => l.includes('"msg":"worker started"')).length === 5);
  sup.kill("SIGTERM");
  assert.equal((await sup.exited).code, 0, sup.stdout().split("\n").slice(-15).join("\n") + sup.stderr());
});

test("children of a supervisor killed with SIGKILL stop gracefully: running tasks finish, none is left to a lease", async () => {
  const log = join(tempDir(db, "pgjobs-orphan-"), "attempts.jsonl");
  const sup = procs.worker(db.url, ["--queues", "orphan", "--processes", "2", "--concurrency", "2", "--prefetch", "0"], { PGJOBS_FIXTURE_LOG: log });
  const pids = await waitFor("2 worker processes to register", async () => {
    const w = await workersOf(db, "orphan");
    return w.size === 2 ? [...w.keys()] : false;
  });
  const ids = await enqueueScripts(db, "orphan", Array.from({ length: 4 }, () => ["sleep", 1_500]));
  await waitFor("4 tasks to start", () => readLog(log).filter((e) => e.ev === "start").length === 4);
  sup.kill("SIGKILL");
  await sup.exited;
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  await waitFor("both orphaned children to exit", () => pids.every((pid) => !alive(pid)), 15_000, 50);
  // A graceful stop: each running task finished and was acknowledged, and the workers deregistered.
  assert.deepEqual(await statesOf(db, ids), { succeeded: 4 });
  assert.equal((await workersOf(db, "orphan")).size, 0, "the stopped workers deregistered");
  assert.deepEqual([...countBy(readLog(log), "end").values()], [1, 1, 1, 1]);
});

test("SIGTERM to a supervisor whose children are still starting exits 0", async () => {
  // Found while writing these tests; fails until the supervisor counts a child that the
  // forwarded signal stopped before it installed its handlers as a clean stop (see the report).
  const sup = procs.worker(db.url, ["--queues", "early", "--processes", "2"]);
  await waitFor("both children to be forked", () => sup.stdout().split("\n").filter((l) => l.includes('"msg":"worker process started"')).length === 2);
  sup.kill("SIGTERM");
  const exit = await sup.exited;
  assert.equal(exit.code, 0, sup.stdout().split("\n").slice(-6).join("\n"));
});

test("a late acknowledgement from a worker whose task was rescued changes nothing and is logged as stale", async () => {
  const url = new URL(db.url);
  const proxy = await new TcpProxy(url.hostname, Number(url.port || 5432)).start();
  db.onClose(() => proxy.close());
  const lines: Array<Record<string, unknown>> = [];
  // Worker A reaches the database through the proxy, which the test cuts; B connects directly.
  const jobsA = createJobs({ connectionString: proxy.url(db.url), logger: captureLogger(lines), poolSize: 3, resultPoll: 60_000 });
  db.onClose(() => jobsA.close());
  const jobsB = jobsFor();
  const gates = { a: deferred(), b: deferred(), aStarted: deferred(), bStarted: deferred() };
  jobsA.task("late", async (ctx) => {
    gates.aStarted.resolve();
    await gates.a.promise;
    return `A${ctx.attempt}`;
  }, { queue: "late" });
  const late = jobsB.task("late", async (ctx) => {
    gates.bStarted.resolve();
    await gates.b.promise;
    return `B${ctx.attempt}`;
  }, { queue: "late" });
  const a = await jobsA.worker({ queues: ["late"], concurrency: 1, lease: "1s", heartbeatInterval: 250, rescueInterval: 60_000 }).start();
  const r = await late.delay();
  await gates.aStarted.promise;

  proxy.cut(); // A can no longer renew its lease ...
  const b = await jobsB.worker({ queues: ["late"], concurrency: 1, lease: "10s", rescueInterval: 100 }).start();
  await gates.bStarted.promise; // ... so B rescued the task and runs attempt 2.
  // Not events.once(): A emits "error" for each claim that fails while cut off, which would reject it.
  const staleEvent = deferred<{ id: string; attempt: number }>();
  a.on("stale", (e) => staleEvent.resolve(e));
  gates.a.resolve(); // A's handler returns; its acknowledgement cannot land yet
  await sleep(50);
  proxy.restore();
  const stale = await staleEvent.promise;
  assert.deepEqual(stale, { id: r.id, attempt: 1 });

  const { rows } = await db.query("select state, attempts, worker_id, result from jobs.tasks where id = $1", [r.id]);
  assert.deepEqual(rows[0], { state: "running", attempts: 2, worker_id: b.id, result: null }, "A's late success changed nothing");
  assert.ok(lines.some((l) => l.level === 40 && String(l.msg).includes("late acknowledgement changed nothing") && l.taskId === r.id && l.attempt === 1));

  gates.b.resolve();
  assert.equal(await r.get({ timeout: 10_000 }), "B2");
});

test("a failed heartbeat is retried within the interval, with a growing delay, until one lands", async () => {
  // The renewal fails while block_heartbeat has a row: a trigger refuses the worker row's update.
  await db.query(`
    create table block_heartbeat (blocked boolean);
    create function block_heartbeat_guard() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from block_heartbeat) then
        raise exception using errcode = '40001', message = 'simulated heartbeat failure';
      end if;
      return new;
    end $$;
    create trigger block_heartbeat_guard before update on jobs.workers for each row execute function block_heartbeat_guard();`);
  const lines: Array<Record<string, unknown>> = [];
  const jobs = jobsFor({ logger: captureLogger(lines) });
  const worker = await jobs.worker({ queues: ["hb"], concurrency: 1, lease: "20s", heartbeatInterval: "4s" }).start();
  const failures = () => lines.filter((l) => l.msg === "heartbeat failed; retrying");
  await db.query("insert into block_heartbeat values (true)");
  await waitFor("a heartbeat to fail", () => failures().length >= 1, 10_000, 10);
  // The next interval is 4 s away; the retries (50-100 ms, 100-200 ms, ... up to 2 s) come sooner.
  await waitFor("three retries before the next interval", () => failures().length >= 4, 3_000, 10);
  const delays = failures().map((l) => l.retryMs as number);
  assert.ok(delays.every((d, i) => i === 0 || d >= delays[i - 1]! / 2) && delays.every((d) => d <= 2_000), `retry delays grow, up to half the interval: ${delays}`);
  const before = await db.query("select heartbeat_at from jobs.workers where id = $1", [worker.id]);
  await db.query("delete from block_heartbeat");
  await waitFor("a retry to land", async () => {
    const { rows } = await db.query("select heartbeat_at from jobs.workers where id = $1", [worker.id]);
    return rows[0].heartbeat_at > before.rows[0].heartbeat_at;
  }, 3_000, 10);
  await worker.stop();
  await db.query("drop trigger block_heartbeat_guard on jobs.workers");
});

test("a finished task whose acknowledgement keeps failing is not rescued from its live worker and run again", async (t) => {
  // The worker renews the leases of tasks whose acknowledgement is still pending: a finished task
  // is its worker's until the acknowledgement lands.
  await db.query(`
    create table ack_block (blocked boolean);
    insert into ack_block values (true);
    create function ack_block_guard() returns trigger language plpgsql as $$
    begin
      if new.state = 'succeeded' and new.name = 'ackfail' and exists (select 1 from ack_block) then
        raise exception using errcode = '40001', message = 'simulated serialization failure';
      end if;
      return new;
    end $$;
    create trigger ack_block_guard before update on jobs.tasks for each row execute function ack_block_guard();`);
  const jobs = jobsFor();
  const runs: number[] = [];
  const ackfail = jobs.task("ackfail", async (ctx) => {
    runs.push(ctx.attempt);
    return "done";
  }, { queue: "ackfail" });
  await jobs.worker({ queues: ["ackfail"], concurrency: 1, lease: "1s", heartbeatInterval: 250, rescueInterval: 100 }).start();
  const r = await ackfail.delay();
  await waitFor("the handler to run", () => runs.length === 1);
  // A control orphan whose lease lapses 3 s from now: once it is rescued, three leases of the
  // ackfail task have passed with rescuers running every 100 ms.
  const { rows } = await db.query(
    `insert into jobs.tasks (name, queue, state, attempts, worker_id, lease_until, started_at)
     values ('orphan', 'ackfail-orphan', 'running', 1, gen_random_uuid(), now() + interval '3 seconds', now()) returning id`,
  );
  await waitFor("the control orphan to be rescued", async () => (await statesOf(db, [rows[0].id])).ready === 1);
  await db.query("delete from ack_block");
  assert.equal(await r.get({ timeout: 15_000 }), "done");
  t.diagnostic(`handler runs while the acknowledgement failed: ${JSON.stringify(runs)}`);
  assert.deepEqual(runs, [1], "the handler ran once: its worker was alive and had finished it");
  const { rows: after } = await db.query("select attempts from jobs.tasks where id = $1", [r.id]);
  assert.equal(after[0].attempts, 1);
  await db.query("drop trigger ack_block_guard on jobs.tasks");
});

test("a result or an error Postgres cannot store (a NUL character) fails that task and does not hold up the acknowledgements of others", async () => {
  // Found while writing these tests; fails until the fixes in the report land (json.ts refuses
  // U+0000, serializeError escapes it, and the finisher stops retrying an acknowledgement the
  // database refuses for good). In a worker process: while the bug is there, it cannot stop.
  const log = join(tempDir(db, "pgjobs-nul-"), "attempts.jsonl");
  const w = procs.worker(db.url, ["--queues", "nul", "--concurrency", "5", "--lease", "2s", "--rescue-interval", "500ms"], { PGJOBS_FIXTURE_LOG: log });
  await waitFor("the worker to register", async () => (await workersOf(db, "nul")).size === 1);
  const [ok1, badResult, badError, ok2] = await enqueueScripts(db, "nul", [["ok"], ["nul-result"], ["nul-error"], ["ok"]], 1);
  const expected = new Map([[ok1, "succeeded"], [badResult, "failed"], [badError, "failed"], [ok2, "succeeded"]]);
  await waitFor("the good tasks to succeed and the others to fail", async () => {
    const { rows } = await db.query("select id, state from jobs.tasks where id = any($1::bigint[])", [[...expected.keys()]]);
    return rows.every((r) => expected.get(r.id) === r.state);
  }, 10_000);
  const { rows } = await db.query("select id, error->>'message' as message from jobs.tasks where id = any($1::bigint[]) order by id", [[badResult, badError]]);
  assert.match(rows[0].message, /NUL|u0000/i, "the error names the NUL character");
  assert.match(rows[1].message, /^a\\u0000b$/, "the handler's message, with the NUL written out");
  assert.deepEqual(countBy(readLog(log), "start"), new Map([...expected.keys()].map((id) => [id, 1])), "nothing was run twice");
  w.kill("SIGTERM");
  assert.equal((await w.exited).code, 0);
});

test("a second SIGTERM stops a worker whose acknowledgements cannot reach the database", async (t) => {
  // Found while writing these tests; fails until Worker.shutdown stops waiting for the finisher on
  // a hard stop (see the report). The tasks are then run again after their lease: at least once.
  const url = new URL(db.url);
  const proxy = await new TcpProxy(url.hostname, Number(url.port || 5432)).start();
  db.onClose(() => proxy.close());
  const log = join(tempDir(db, "pgjobs-cutoff-"), "attempts.jsonl");
  const w = procs.worker(proxy.url(db.url), ["--queues", "cutoff", "--concurrency", "2", "--lease", "5s"], { PGJOBS_FIXTURE_LOG: log });
  await waitFor("the worker to register", async () => (await workersOf(db, "cutoff")).size === 1);
  await enqueueScripts(db, "cutoff", [["sleep", 300], ["sleep", 300]]);
  await waitFor("both to start", () => readLog(log).length === 2);
  proxy.cut();
  await waitFor("both to finish (their acknowledgements cannot land)", () => countBy(readLog(log), "end").size === 2);
  w.kill("SIGTERM");
  await waitFor("the first signal to be taken", () => w.stdout().includes("stopping: finishing running tasks"));
  const second = Date.now();
  w.kill("SIGTERM");
  const exit = await within(w.exited, 10_000, "still running 10 s after the second signal");
  assert.equal(typeof exit, "object", `${String(exit)}:\n${w.stdout().split("\n").slice(-8).join("\n")}`);
  t.diagnostic(`second SIGTERM -> exit with the database unreachable: ${Date.now() - second} ms`);
});

test("arguments Postgres cannot store (a NUL character) are refused at enqueue with an error that names the task and the value", async () => {
  const jobs = jobsFor();
  const echo = jobs.task("nul_args", async (_ctx, s: { text: string }) => s);
  await assert.rejects(echo.delay({ text: "a\u0000b" }), (err: Error) => err instanceof InvalidInputError && /task nul_args: args\[0\]\.text/.test(err.message));
});

test("oversize arguments are refused at enqueue with the task, the size and the limit; an oversize result fails the task for good", async () => {
  const jobs = jobsFor({ maxPayloadBytes: 1_000 });
  const echo = jobs.task("echo_big", async (_ctx, s: string) => s);
  const grow = jobs.task("grow_big", async (_ctx, n: number) => "é".repeat(n), { retries: 3 });
  await assert.rejects(echo.delay("x".repeat(2_000)), (err: Error) => {
    assert.ok(err instanceof InvalidInputError);
    assert.match(err.message, /^task echo_big: args is 2004 bytes of JSON, over the 1000-byte limit: /);
    return true;
  });
  // Multi-byte characters count as bytes, not characters: 600 "é" are 1,200 bytes.
  await assert.rejects(echo.delay("é".repeat(600)), /args is 1204 bytes of JSON, over the 1000-byte limit/);
  const { rows } = await db.query("select count(*)::int as n from jobs.tasks where name = 'echo_big'");
  assert.equal(rows[0].n, 0, "nothing was written");

  await jobs.worker({ queues: ["default"], concurrency: 1 }).start();
  const r = await grow.delay(600);
  await assert.rejects(r.get({ timeout: 10_000 }), (err: Error) => {
    assert.ok(err instanceof TaskFailedError);
    assert.match(err.message, /task grow_big: the result is 1202 bytes of JSON, over the 1000-byte limit/);
    return true;
  });
  const { rows: task } = await db.query("select state, attempts from jobs.tasks where id = $1", [r.id]);
  assert.deepEqual(task[0], { state: "failed", attempts: 1 }, "not retried: the same result would be refused again");
});
