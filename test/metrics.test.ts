/**
 * Issue 10, metrics: a Prometheus scrape after 1,000 tasks (some failing, some retried) agrees
 * with SQL and its histograms hold 1,000 observations; per-queue counts come from SQL, cached so
 * that scrapes do not load the database; a scrape survives a database outage; rescues and claim
 * batches are counted; `pgjobs worker --metrics-port` serves all of it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import type { TaskContext } from "../src/index.js";
import { createMetrics, parseMetricsAddress, serveMetrics } from "../src/metrics.js";
import { useDatabase } from "./helpers/db.js";
import { CLI_BIN } from "./helpers/paths.js";
import { openJobs, waitFor } from "./fixtures/issue3-util.js";
import { freePort, freePortPair, has, parseProm, scrape, total } from "./fixtures/issue10-prom.js";

const db = useDatabase();

test("a scrape after 1,000 tasks (some failing, some retried) reports what SQL says, with 1,000 observations per histogram", async (t) => {
  const jobs = openJobs(db);
  const metrics = createMetrics(jobs, { queueStatsTtl: 0 });
  db.onClose(() => metrics.close());
  const server = await serveMetrics(metrics, { port: 0, host: "127.0.0.1" });
  db.onClose(() => server.close());

  // i % 10 == 0 fails both attempts; i % 10 == 1 fails once, then succeeds; the rest succeed.
  const work = jobs.task("m1k", async (ctx: TaskContext, i: number) => {
    if (i % 10 === 0) throw new Error(`task ${i} always fails`);
    if (i % 10 === 1 && ctx.attempt === 1) throw new Error(`task ${i} fails once`);
    return i;
  }, { queue: "m1k", retries: 1, backoff: { delay: 5 } });
  let finals = 0;
  const allDone = new Promise<void>((resolve) => {
    const count = () => ++finals === 1000 && resolve();
    jobs.on("succeeded", count);
    jobs.on("failed", count);
  });

  await jobs.enqueueMany(Array.from({ length: 1000 }, (_, i) => work.s(i)));
  const worker = await jobs.worker({ queues: ["m1k"], concurrency: 20, prefetch: 0 }).start();
  const t0 = performance.now();
  await allDone;
  t.diagnostic(`1,000 tasks (1,200 attempts) ran in ${Math.round(performance.now() - t0)} ms`);

  const s0 = performance.now();
  const res = await scrape(server.url);
  t.diagnostic(`scrape took ${(performance.now() - s0).toFixed(1)} ms, ${res.text.length} bytes`);
  assert.equal(res.status, 200);
  assert.match(res.contentType, /^text\/plain; version=0\.0\.4/);
  const m = parseProm(res.text);

  const { rows: [sql] } = await db.query(`
    select count(*) filter (where state = 'succeeded')::int as succeeded,
           count(*) filter (where state = 'failed')::int as failed,
           count(*) filter (where state not in ('succeeded', 'failed'))::int as unfinished,
           sum(attempts)::int as attempts,
           sum(attempts - 1)::int as retries
      from jobs.tasks where name = 'm1k'`);
  assert.deepEqual(sql, { succeeded: 900, failed: 100, unfinished: 0, attempts: 1200, retries: 200 });

  const task = { name: "m1k", queue: "m1k" };
  assert.equal(total(m, "pgjobs_tasks_enqueued_total", task), 1000);
  assert.equal(total(m, "pgjobs_tasks_finished_total", { ...task, outcome: "succeeded" }), sql.succeeded);
  assert.equal(total(m, "pgjobs_tasks_finished_total", { ...task, outcome: "failed" }), sql.failed);
  assert.equal(total(m, "pgjobs_task_retries_total", task), sql.retries);
  assert.equal(total(m, "pgjobs_tasks_started_total", task), sql.attempts);
  // Handler durations: one observation per attempt, labelled by its outcome. The final attempts
  // of the 1,000 tasks are the 1,000 observations of succeeded + failed.
  const durations = (outcome: string) => total(m, "pgjobs_task_duration_seconds_count", { ...task, outcome });
  assert.equal(durations("succeeded") + durations("failed"), 1000);
  assert.equal(durations("retried"), sql.retries);
  assert.equal(total(m, "pgjobs_task_duration_seconds_bucket", { ...task, outcome: "succeeded", le: "+Inf" }), 900);
  // run_at to start: one per attempt (a retry waits from its own run_at).
  assert.equal(total(m, "pgjobs_task_wait_seconds_count", { queue: "m1k" }), sql.attempts);
  // Claim batches: their sizes add up to the attempts claimed.
  assert.equal(total(m, "pgjobs_claim_batch_size_sum", { queue: "m1k" }), sql.attempts);
  const claims = total(m, "pgjobs_claim_batch_size_count", { queue: "m1k" });
  assert.ok(claims >= 1200 / 20, `at most 20 tasks per claim, so at least 60 claims: ${claims}`);
  t.diagnostic(`${claims} claims, ${(sql.attempts / claims).toFixed(1)} tasks per claim on average`);

  // Per-queue counts, from SQL.
  const q = { queue: "m1k" };
  assert.equal(total(m, "pgjobs_queue_tasks", { ...q, state: "succeeded" }), 900);
  assert.equal(total(m, "pgjobs_queue_tasks", { ...q, state: "failed" }), 100);
  for (const state of ["ready", "scheduled", "running", "cancelled"]) assert.equal(total(m, "pgjobs_queue_tasks", { ...q, state }), 0, state);
  assert.equal(total(m, "pgjobs_queue_oldest_ready_age_seconds", q), 0);
  assert.equal(total(m, "pgjobs_queue_workers", q), 1);
  // The process's own state.
  assert.equal(total(m, "pgjobs_worker_concurrency"), 20);
  assert.equal(total(m, "pgjobs_worker_tasks", { state: "running" }), 0);
  assert.ok(total(m, "pgjobs_pool_connections", { state: "total" }) >= 1);
  assert.ok(has(m, "pgjobs_event_loop_lag_seconds", { stat: "p99" }), "event-loop lag is reported");
  t.diagnostic(`event-loop lag during the run: p99 ${(total(m, "pgjobs_event_loop_lag_seconds", { stat: "p99" }) * 1000).toFixed(1)} ms, max ${(total(m, "pgjobs_event_loop_lag_seconds", { stat: "max" }) * 1000).toFixed(1)} ms`);

  await worker.stop();
  // A stopped worker is no longer counted.
  assert.equal(total(parseProm(await metrics.metrics()), "pgjobs_worker_concurrency"), 0);
});

test("per-queue counts come from one cached query, however many scrapes ask", async () => {
  const jobs = openJobs(db);
  const metrics = createMetrics(jobs, { queueStatsTtl: "60s" });
  db.onClose(() => metrics.close());
  let queries = 0;
  const query = jobs.pool.query.bind(jobs.pool) as (...a: unknown[]) => unknown;
  (jobs.pool as unknown as { query: unknown }).query = (...a: unknown[]) => {
    if ((a[0] as { name?: string })?.name?.endsWith("_queue_status")) queries++;
    return query(...a);
  };
  const noop = jobs.task("m_cache", () => null, { queue: "m_cache" });
  await noop.delay();

  const texts = await Promise.all(Array.from({ length: 5 }, () => metrics.metrics()));
  assert.equal(queries, 1, "five concurrent scrapes, one query");
  for (const text of texts) assert.equal(total(parseProm(text), "pgjobs_queue_tasks", { queue: "m_cache", state: "ready" }), 1);

  await noop.delay();
  const cached = parseProm(await metrics.metrics());
  assert.equal(queries, 1, "within the TTL the cache answers");
  assert.equal(total(cached, "pgjobs_queue_tasks", { queue: "m_cache", state: "ready" }), 1, "a cached count, a few seconds old at most");

  metrics.invalidate();
  const fresh = parseProm(await metrics.metrics());
  assert.equal(queries, 2);
  assert.equal(total(fresh, "pgjobs_queue_tasks", { queue: "m_cache", state: "ready" }), 2);
});

test("a scrape while the database is away answers, and counts the failed read", async () => {
  const jobs = openJobs(db, { connectionString: "postgres://postgres@127.0.0.1:1/nothing_listens_here" });
  const metrics = createMetrics(jobs, { queueStatsTtl: 0 });
  db.onClose(() => metrics.close());
  const server = await serveMetrics(metrics, { port: 0, host: "127.0.0.1" });
  db.onClose(() => server.close());
  const res = await scrape(server.url);
  assert.equal(res.status, 200);
  const m = parseProm(res.text);
  assert.equal(total(m, "pgjobs_queue_stats_errors_total"), 1);
  assert.equal(has(m, "pgjobs_queue_tasks"), false, "no numbers rather than made-up ones");
  assert.ok(has(m, "pgjobs_pool_connections", { state: "total" }));
});

test("rescues of lapsed leases are counted, requeued or failed for good", async () => {
  const jobs = openJobs(db);
  const metrics = createMetrics(jobs);
  db.onClose(() => metrics.close());
  // Two tasks whose worker vanished a minute ago: one with attempts left, one without.
  await db.query(`
    insert into jobs.tasks (name, queue, state, attempts, max_attempts, worker_id, started_at, lease_until)
    values ('m_lost', 'm_elsewhere', 'running', 1, 4, gen_random_uuid(), now() - interval '2 minutes', now() - interval '1 minute'),
           ('m_lost', 'm_elsewhere', 'running', 4, 4, gen_random_uuid(), now() - interval '2 minutes', now() - interval '1 minute')`);
  const worker = jobs.worker({ queues: ["m_rescuer"], rescueInterval: 100 });
  const rescued = new Promise<void>((resolve) => worker.once("rescued", () => resolve()));
  await worker.start();
  await rescued;
  const m = parseProm(await metrics.metrics());
  assert.equal(total(m, "pgjobs_tasks_rescued_total", { outcome: "requeued" }), 1);
  assert.equal(total(m, "pgjobs_tasks_rescued_total", { outcome: "failed" }), 1);
  await worker.stop();
});

test("metrics.close() stops counting and hands jobs.worker back", async () => {
  const jobs = openJobs(db);
  const metrics = createMetrics(jobs);
  assert.ok(Object.prototype.hasOwnProperty.call(jobs, "worker"), "wrapped while metrics are on");
  metrics.close();
  metrics.close();
  assert.equal(Object.prototype.hasOwnProperty.call(jobs, "worker"), false);
  assert.equal(jobs.hooks.length, 0);
  const noop = jobs.task("m_closed", () => null, { queue: "m_closed" });
  await noop.delay();
  assert.equal(total(parseProm(await metrics.metrics()), "pgjobs_tasks_enqueued_total"), 0);
});

test("--metrics-port takes a port or host:port; prefork children add their slot", () => {
  assert.deepEqual(parseMetricsAddress("9464", 0), { host: "0.0.0.0", port: 9464 });
  assert.deepEqual(parseMetricsAddress("127.0.0.1:9464", 2), { host: "127.0.0.1", port: 9466 });
  assert.deepEqual(parseMetricsAddress("[::1]:9000", 0), { host: "::1", port: 9000 });
  assert.throws(() => parseMetricsAddress("http://x", 0), /--metrics-port "http:\/\/x" is not a port/);
  assert.throws(() => parseMetricsAddress("70000", 0), /is not a port/);
});

test("pgjobs worker --metrics-port serves the worker's metrics while it runs", async (t) => {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI_BIN, "worker", "--app", "dist/test/fixtures/issue10-metrics-app.js", "--queues", "m_cli", "--concurrency", "4", "--metrics-port", `127.0.0.1:${port}`], {
    env: { ...process.env, DATABASE_URL: db.url, PGJOBS_LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  db.onClose(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    await exited;
  });
  const url = `http://127.0.0.1:${port}/metrics`;
  await waitFor("the metrics endpoint", () => scrape(url).then((r) => r.status === 200, () => false), 20_000, 100);

  // 35 tasks: 5 always fail (i % 7 == 0), 6 more fail once and are retried (i % 5 == 0).
  await db.query(`select jobs.enqueue('m_cli', jsonb_build_array(i), queue => 'm_cli', max_attempts => 2) from generate_series(1, 35) i`);
  // Finished counts are counted as they happen; per-queue counts come from SQL, cached 5 s.
  const m = await waitFor("35 finished tasks in the scrape, and in the per-queue counts", async () => {
    const s = parseProm((await scrape(url)).text);
    const done = total(s, "pgjobs_tasks_finished_total", { name: "m_cli" }) === 35;
    return done && total(s, "pgjobs_queue_tasks", { queue: "m_cli", state: "succeeded" }) === 30 ? s : null;
  }, 20_000, 200);
  const { rows: [sql] } = await db.query(`
    select count(*) filter (where state = 'succeeded')::int as succeeded, count(*) filter (where state = 'failed')::int as failed,
           sum(attempts - 1)::int as retries from jobs.tasks where name = 'm_cli'`);
  assert.deepEqual(sql, { succeeded: 30, failed: 5, retries: 11 });
  assert.equal(total(m, "pgjobs_tasks_finished_total", { name: "m_cli", outcome: "succeeded" }), sql.succeeded);
  assert.equal(total(m, "pgjobs_tasks_finished_total", { name: "m_cli", outcome: "failed" }), sql.failed);
  assert.equal(total(m, "pgjobs_task_retries_total", { name: "m_cli" }), sql.retries);
  assert.equal(total(m, "pgjobs_worker_concurrency"), 4, "the CLI's worker is observed");
  assert.equal(total(m, "pgjobs_claim_batch_size_sum", { queue: "m_cli" }), 35 + sql.retries);
  assert.ok(has(m, "process_cpu_seconds_total"), "and the process's own metrics");
  assert.equal(total(m, "pgjobs_queue_tasks", { queue: "m_cli", state: "failed" }), 5);

  child.kill("SIGTERM");
  assert.equal(await exited, 0, `the worker stops cleanly on SIGTERM: ${stderr}`);
  t.diagnostic(`worker on port ${port} exited 0`);
});

test("pgjobs worker --processes 2 --metrics-port P: each process serves its own, on P and P+1", async () => {
  const port = await freePortPair();
  const child = spawn(process.execPath, [CLI_BIN, "worker", "--app", "dist/test/fixtures/issue10-metrics-app.js", "--queues", "m_cli2", "--processes", "2", "--concurrency", "1", "--prefetch", "0", "--metrics-port", `127.0.0.1:${port}`], {
    // One task at a time per process, 50 ms each: neither process can take all 40 (2 s) alone.
    env: { ...process.env, DATABASE_URL: db.url, PGJOBS_LOG_LEVEL: "warn", PGJOBS_FIXTURE_SLEEP_MS: "50" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  db.onClose(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    await exited;
  });
  const urls = [port, port + 1].map((p) => `http://127.0.0.1:${p}/metrics`);
  for (const url of urls) await waitFor(`the metrics endpoint ${url}`, () => scrape(url).then((r) => r.status === 200, () => false), 30_000, 100);
  await db.query(`select jobs.enqueue('m_cli', jsonb_build_array(i), queue => 'm_cli2', max_attempts => 2) from generate_series(1, 40) i`);
  const finished = await waitFor("40 finished tasks across both processes", async () => {
    const per = await Promise.all(urls.map(async (u) => total(parseProm((await scrape(u)).text), "pgjobs_tasks_finished_total", { name: "m_cli" })));
    return per[0]! + per[1]! === 40 ? per : null;
  }, 20_000, 100);
  assert.deepEqual(finished.map((n) => n > 0), [true, true], `both processes ran tasks: ${finished.join(" + ")}`);
  child.kill("SIGTERM");
  assert.equal(await exited, 0, stderr);
});
