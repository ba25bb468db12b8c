/**
 * Database outages during a run (issue 6): every connection of the test database terminated
 * again and again (pg_terminate_backend: pools, LISTEN connections, the producer's too), and a
 * real server restart of a Postgres this file starts itself (the shared test server is never
 * restarted). Workers run in their own processes; the producer, whose get() calls must resolve,
 * runs here with a 60 s result poll so that it relies on notifications and reconnects.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import pg from "pg";
import { pino } from "pino";
import { createJobs, migrate, type AsyncResult, type Jobs } from "../src/index.js";
import { useDatabase } from "./helpers/db.js";
import { countBy, deferred, overlappingAttempts, type Proc, Procs, readLog, RestartableServer, TcpProxy, tempDir, waitFor, within, workersOf } from "./fixtures/issue6-helpers.js";

const db = useDatabase();
const procs = new Procs(db);

// A 5 s lease: with connections killed every 300 ms on a loaded machine (CI runs two test files at
// once), renewals can fail for a few seconds in a row; at 3 s a live worker's batch once lapsed and
// ran twice, which is at-least-once behaving as documented but not what this test is about.
const WORKER_FLAGS = ["--concurrency", "10", "--lease", "5s", "--heartbeat-interval", "1s", "--rescue-interval", "1s", "--poll-interval", "1s"];

/** The producer: registers `script` (never run here) so it can enqueue and wait. */
function producer(url: string, lines: string[] = []): { jobs: Jobs; script: ReturnType<Jobs["task"]> } {
  const logger = pino({ level: "info" }, { write: (s: string) => void lines.push(s) });
  const jobs = createJobs({ connectionString: url, logger, poolSize: 3, resultPoll: 60_000 });
  db.onClose(() => jobs.close());
  const script = jobs.task("script", async () => null, { queue: "outage" });
  return { jobs, script };
}

/**
 * Check the attempt log: each task's handler completed exactly once; no overlapping attempts.
 * A failure quotes the workers' warnings (failed heartbeats, rescues, late acknowledgements), which
 * say why a task ran again.
 */
function assertExactlyOnce(log: string, ids: string[], workers: Proc[]): { starts: number } {
  const entries = readLog(log);
  const ends = countBy(entries, "end");
  const warnings = () =>
    workers.flatMap((w, i) => w.stdout().split("\n").filter((l) => /"level":(40|50)/.test(l)).slice(-15).map((l) => `worker ${i + 1}: ${l}`)).join("\n");
  assert.equal(ends.size, ids.length, "every task completed");
  const twice = ids.filter((id) => ends.get(id) !== 1);
  assert.deepEqual(twice, [], `no task completed twice; the workers' last warnings:\n${twice.length ? warnings() : ""}`);
  assert.deepEqual(overlappingAttempts(entries), [], "no task ran on two workers at once");
  return { starts: entries.filter((e) => e.ev === "start").length };
}

test("every connection terminated again and again, LISTEN ones included: every task completes exactly once and pending get() calls resolve", async (t) => {
  const log = join(tempDir(db, "pgjobs-outage-"), "attempts.jsonl");
  const workers = [1, 2].map(() => procs.worker(db.url, ["--queues", "outage", ...WORKER_FLAGS], { PGJOBS_FIXTURE_LOG: log, PGJOBS_FIXTURE_POOL: "4" }));
  await waitFor("both workers to register", async () => (await workersOf(db, "outage")).size === 2);
  const { jobs, script } = producer(db.url);
  const results = (await jobs.enqueueMany(Array.from({ length: 600 }, () => script.s("sleep", 100)))) as AsyncResult<{ pid: number }>[];
  const ids = results.map((r) => r.id);
  let resolved = 0;
  const all = Promise.all(results.map((r) => r.get({ timeout: 90_000 }).then((v) => (resolved++, v))));

  // The killer works from the server's maintenance database, so it never kills itself; it spares
  // only the harness's own pool (application_name pgjobs-test), which the checks below use.
  const killer = new pg.Client({ connectionString: db.serverUrl, application_name: "pgjobs-test-killer" });
  killer.on("error", () => {});
  await killer.connect();
  db.onClose(() => killer.end());
  const kills = { rounds: 0, sessions: 0, listen: 0, firstWith: 0 };
  let ended = false;
  all.finally(() => (ended = true)).catch(() => {});
  const began = Date.now();
  // Kill until every result is in (bounded, so a test that breaks does not kill for ever).
  while (!ended && Date.now() - began < 30_000) {
    const { rows } = await killer.query<{ query: string; killed: boolean }>(
      `select query, pg_terminate_backend(pid) as killed from pg_stat_activity
        where datname = $1 and pid <> pg_backend_pid() and application_name <> 'pgjobs-test'`,
      [db.name],
    );
    kills.rounds++;
    kills.sessions += rows.filter((r) => r.killed).length;
    kills.listen += rows.filter((r) => r.killed && /^\s*listen\b/i.test(r.query)).length;
    if (kills.rounds === 1) kills.firstWith = resolved;
    await new Promise((r) => setTimeout(r, 300));
  }
  const values = await all;
  const elapsed = Date.now() - began;

  assert.ok(kills.listen > 0, "LISTEN connections were among those terminated");
  assert.ok(kills.firstWith < ids.length && kills.rounds >= 3, "the connections were terminated again and again while tasks ran");
  assert.equal(values.length, ids.length);
  const { rows } = await db.query("select state, count(*)::int as n, max(attempts)::int as max_attempts from jobs.tasks where id = any($1::bigint[]) group by 1", [ids]);
  assert.deepEqual(rows.map((r) => [r.state, r.n]), [["succeeded", ids.length]]);
  const { starts } = assertExactlyOnce(log, ids, workers);
  for (const w of workers) assert.match(w.stdout(), /LISTEN connection re-established/);
  t.diagnostic(
    `600 tasks of 100 ms on 2 workers x 10 in ${elapsed} ms; ${kills.rounds} kill rounds terminated ${kills.sessions} sessions ` +
      `(${kills.listen} LISTEN) until the last result was in; ${starts} handler starts, ` +
      `highest attempt ${rows[0].max_attempts} (an attempt is spent when a claim's answer is lost with its connection)`,
  );

  for (const w of workers) w.kill("SIGTERM");
  assert.deepEqual((await Promise.all(workers.map((w) => w.exited))).map((e) => e.code), [0, 0]);
});

test("a real Postgres restart in the middle of a run: every task completes exactly once and pending get() calls resolve", async (t) => {
  const server = await new RestartableServer().start();
  db.onClose(() => server.stop());
  await migrate(server.url, { schema: "jobs" });
  const log = join(tempDir(db, "pgjobs-restart-"), "attempts.jsonl");
  const workers = [1, 2].map(() => procs.worker(server.url, ["--queues", "outage", ...WORKER_FLAGS], { PGJOBS_FIXTURE_LOG: log }));
  const lines: string[] = [];
  const { jobs, script } = producer(server.url, lines);
  await waitFor("both workers to register", async () => {
    const { rows } = await jobs.pool.query("select count(*)::int as n from jobs.workers");
    return rows[0].n === 2;
  });
  // 300 x 150 ms on 20 slots: about 2.3 s of work, so that the restart (the server's stop alone
  // can take half a second) lands while tasks still run; at 50 ms each, all 300 were once done
  // before the server was back.
  const results = (await jobs.enqueueMany(Array.from({ length: 300 }, () => script.s("sleep", 150)))) as AsyncResult<{ pid: number }>[];
  const ids = results.map((r) => r.id);
  // 20 s, well under the 60 s fallback poll: the results must come by notification.
  let resolved = 0;
  const all = Promise.all(results.map((r) => r.get({ timeout: 20_000 }).then((v) => (resolved++, v))));
  // Every get() registered (in result_waiters) before the restart: a registration the outage
  // breaks is the next test's subject.
  await waitFor("every get() to register", async () => {
    const { rows } = await jobs.pool.query("select count(*)::int as n from jobs.result_waiters");
    return rows[0].n + resolved >= ids.length;
  });
  await waitFor("a third of the tasks to finish", () => countBy(readLog(log), "end").size >= 100, 30_000, 10);

  const downMs = await server.restart();
  const doneAtRestart = countBy(readLog(log), "end").size;
  const restartedAt = Date.now();
  const values = await all.catch(async (err) => {
    const { rows } = await jobs.pool.query("select (select count(*)::int from jobs.result_waiters) as waiters, (select count(*)::int from jobs.tasks where state = 'succeeded') as succeeded");
    throw new Error(`${err.message}; ${JSON.stringify(rows[0])}; producer log:\n${lines.join("")}`);
  });
  const recoverMs = Date.now() - restartedAt;

  assert.ok(doneAtRestart < ids.length, "the server restarted while tasks still ran");
  assert.equal(values.length, ids.length);
  const { rows } = await jobs.pool.query("select state, count(*)::int as n, max(attempts)::int as max_attempts from jobs.tasks group by 1");
  assert.deepEqual(rows.map((r) => [r.state, r.n]), [["succeeded", ids.length]]);
  const { starts } = assertExactlyOnce(log, ids, workers);
  for (const w of workers) assert.match(w.stdout(), /LISTEN connection re-established/);
  // After the restart, a new task is picked up and its result delivered (the listeners are back).
  const after = await script.applyAsync(["ok"]);
  assert.equal(typeof (await after.get({ timeout: 10_000 })), "object");
  t.diagnostic(
    `server down for ${downMs} ms with ${doneAtRestart}/300 done; the rest finished ${recoverMs} ms after it was back; ` +
      `${starts} handler starts, highest attempt ${rows[0].max_attempts}`,
  );

  for (const w of workers) w.kill("SIGTERM");
  assert.deepEqual((await Promise.all(workers.map((w) => w.exited))).map((e) => e.code), [0, 0]);
  await jobs.close();
});

test("a get() called while the database is unreachable is woken by notification once it is back, not by the slow poll", async (t) => {
  // Found while writing these tests; fails until ResultWaiters registers its waiting ids again
  // after the LISTEN connection comes back (see the report: src/result.ts).
  const url = new URL(db.url);
  const proxy = await new TcpProxy(url.hostname, Number(url.port || 5432)).start();
  db.onClose(() => proxy.close());
  const lines: string[] = [];
  // The producer reaches the database through the proxy; the worker (here too) directly.
  const { jobs: prod, script } = producer(proxy.url(db.url), lines);
  const workerJobs = createJobs({ connectionString: db.url, logLevel: "silent", poolSize: 3 });
  db.onClose(() => workerJobs.close());
  const gate = deferred();
  const started = deferred();
  workerJobs.task("script", async (_ctx, what: string) => {
    if (what === "gated") {
      started.resolve();
      await gate.promise;
    }
    return what;
  }, { queue: "outage" });
  await workerJobs.worker({ queues: ["outage"], concurrency: 2 }).start();

  // A first result, so the producer's LISTEN connection is up before the outage.
  assert.equal(await (await script.applyAsync(["warm-up"])).get({ timeout: 10_000 }), "warm-up");
  const r = await script.applyAsync(["gated"]);
  await started.promise;
  proxy.cut();
  const result = r.get({ timeout: 15_000 }); // its registration fails: the database is unreachable
  await waitFor("the registration to fail", () => lines.some((l) => l.includes("could not register a result waiter yet")));
  proxy.restore();
  await waitFor("the producer's LISTEN connection to come back", () => lines.some((l) => l.includes("LISTEN connection re-established")));
  const finishedAt = Date.now();
  gate.resolve();
  const value = await within(result, 10_000, "no result 10 s after the task finished (the fallback poll is 60 s)").catch((e: Error) => e.message);
  assert.equal(value, "gated");
  t.diagnostic(`result delivered ${Date.now() - finishedAt} ms after the task finished`);
  await result.catch(() => {});
});
