/**
 * Issue 3, the worker: retries with growing backoff, final failure with the error recorded,
 * timeouts and revocation through ctx.signal, 2,000 short tasks at concurrency 50 exactly once,
 * lifecycle events, unknown task names, retention pruning, graceful stop, several queues.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { TaskFailedError, type TaskContext } from "../src/index.js";
import { useDatabase } from "./helpers/db.js";
import { countTasks, gate, nextEvent, openJobs, taskRow, thrown, waitFor } from "./fixtures/issue3-util.js";

const db = useDatabase();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class DiskFullError extends Error {
  override name = "DiskFullError";
}

test("a task that fails twice then succeeds ends succeeded after three attempts", async () => {
  const jobs = openJobs(db);
  const attempts: Array<[number, number]> = [];
  const flaky = jobs.task("flaky", async (ctx: TaskContext, x: number) => {
    attempts.push([ctx.attempt, ctx.maxAttempts]);
    if (ctx.attempt < 3) throw new Error(`transient failure ${ctx.attempt}`);
    return x * 2;
  }, { queue: "w_flaky", backoff: { delay: 50 } });
  await jobs.worker({ queues: ["w_flaky"] }).start();
  const r = await flaky.delay(21);
  assert.equal(await r.get({ timeout: 15_000 }), 42);
  assert.deepEqual(attempts, [[1, 4], [2, 4], [3, 4]], "attempt and maxAttempts in ctx");
  const row = await taskRow(db, r.id);
  assert.equal(row.state, "succeeded");
  assert.equal(row.attempts, 3);
  assert.equal(row.max_attempts, 4);
  assert.equal(row.result, 42);
  assert.equal(row.error, null, "a success clears the error of the failed attempts");
  await jobs.close();
});

test("a task that always fails ends failed after max attempts with its error; the delays between attempts grow", async (t) => {
  const jobs = openJobs(db);
  const starts: number[] = [];
  const doomed = jobs.task("doomed", async (ctx: TaskContext) => {
    starts.push(Date.now());
    throw new DiskFullError(`disk full (attempt ${ctx.attempt})`);
  }, { queue: "w_doomed", retries: 3, backoff: { delay: 200 } });
  const delays: number[] = [];
  jobs.on("retrying", (e) => {
    if (e.name === "doomed") delays.push(e.delayMs);
  });
  await jobs.worker({ queues: ["w_doomed"] }).start();
  const r = await doomed.delay();

  const err = await thrown(() => r.get({ timeout: 20_000 }));
  assert.ok(err instanceof TaskFailedError, `a TaskFailedError, got ${err.name}: ${err.message}`);
  assert.equal(err.taskId, r.id);
  assert.equal(err.taskName, "doomed");
  assert.match(err.message, new RegExp(`task doomed \\(id ${r.id}\\) failed: DiskFullError: disk full \\(attempt 4\\)`));
  assert.equal(err.cause.name, "DiskFullError");
  assert.equal(err.cause.message, "disk full (attempt 4)");
  assert.match(err.cause.stack ?? "", /^DiskFullError: disk full \(attempt 4\)\n\s+at /);
  assert.match(err.cause.stack ?? "", /worker\.test\.js/, "the stack points at the handler");
  assert.match(err.stack!, /--- recorded stack ---\nDiskFullError: disk full/);

  const row = await taskRow(db, r.id);
  assert.equal(row.state, "failed");
  assert.equal(row.attempts, 4);
  assert.equal(row.max_attempts, 4);
  assert.equal(row.error.name, "DiskFullError");
  assert.equal(row.error.message, "disk full (attempt 4)");
  assert.match(row.error.stack, /^DiskFullError: disk full \(attempt 4\)\n\s+at .*worker\.test\.js/);
  assert.ok(row.finished_at instanceof Date);

  assert.equal(starts.length, 4, "exactly max_attempts attempts, then no more");
  await sleep(300);
  assert.equal(starts.length, 4, "nothing ran after the final failure");
  const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
  t.diagnostic(`backoff delays chosen ${delays.join(", ")} ms; gaps between attempt starts ${gaps.join(", ")} ms`);
  assert.equal(delays.length, 3);
  // Each retry waited at least its backoff, and the backoff grows (exponential with jitter:
  // 100-200, 200-400, 400-800 ms for a 200 ms base).
  for (let i = 0; i < 3; i++) assert.ok(gaps[i]! >= delays[i]!, `attempt ${i + 2} started ${gaps[i]} ms after the previous one, before its backoff of ${delays[i]} ms`);
  assert.ok(delays[0]! <= delays[1]! && delays[1]! <= delays[2]! && delays[0]! < delays[2]!, `growing delays: ${delays.join(", ")}`);
  await jobs.close();
});

test("a timeout aborts the handler's signal and fails the attempt", async () => {
  const jobs = openJobs(db);
  const observed: Array<{ attempt: number; aborted: boolean; reason: string; afterMs: number }> = [];
  const hang = jobs.task("hang", async (ctx: TaskContext) => {
    const t0 = Date.now();
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    observed.push({ attempt: ctx.attempt, aborted: ctx.signal.aborted, reason: (ctx.signal.reason as Error).name, afterMs: Date.now() - t0 });
    return "finished after the abort";
  }, { queue: "w_timeout", timeout: "200ms", retries: 1, backoff: { delay: 20 } });
  await jobs.worker({ queues: ["w_timeout"] }).start();
  const r = await hang.delay();
  const err = await thrown(() => r.get({ timeout: 15_000 }));
  assert.equal(err.name, "TaskFailedError");
  assert.equal(err.cause.name, "TimeoutError");
  assert.match(err.cause.message, new RegExp(`task hang \\(id ${r.id}\\) timed out after 200 ms \\(attempt 2\\)`));
  assert.deepEqual(observed.map(({ attempt, aborted, reason }) => ({ attempt, aborted, reason })), [
    { attempt: 1, aborted: true, reason: "TimeoutError" },
    { attempt: 2, aborted: true, reason: "TimeoutError" },
  ], "each attempt's handler saw its signal aborted");
  for (const o of observed) assert.ok(o.afterMs >= 190, `not aborted before the timeout: ${o.afterMs} ms`);
  const row = await taskRow(db, r.id);
  assert.equal(row.state, "failed");
  assert.equal(row.attempts, 2);
  assert.equal(row.result, null, "the handler's late return value was not recorded");

  // A per-call timeout overrides (here: sets) the task's.
  const seen: boolean[] = [];
  const patient = jobs.task("patient", async (ctx: TaskContext) => {
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    seen.push(ctx.signal.aborted);
  }, { queue: "w_timeout" });
  const p = await patient.applyAsync([], { timeout: "100ms", retries: 0 });
  const perr = await thrown(() => p.get({ timeout: 15_000 }));
  assert.equal(perr.cause.name, "TimeoutError");
  assert.deepEqual(seen, [true]);
  assert.equal((await taskRow(db, p.id)).timeout_ms, 100);
  await jobs.close();
});

test("revoking a queued task means it never runs; revoking a running task aborts its signal", async () => {
  const jobs = openJobs(db);
  const ran: string[] = [];
  const started = gate();
  const abortSeen = gate<{ aborted: boolean; reason: string }>();
  const job = jobs.task("revocable", async (ctx: TaskContext, label: string) => {
    ran.push(label);
    if (label !== "running") return label;
    started.open();
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    abortSeen.open({ aborted: ctx.signal.aborted, reason: (ctx.signal.reason as Error).name });
    return "late result";
  }, { queue: "w_revoke" });
  const succeeded: string[] = [];
  jobs.on("succeeded", (e) => succeeded.push(e.id));

  // Queued: revoked before any worker serves the queue.
  const queued = await job.delay("queued");
  assert.equal(await queued.revoke(), true);
  assert.equal(await queued.revoke(), false, "a second revoke finds nothing to cancel");
  const worker = jobs.worker({ queues: ["w_revoke"] });
  const idle = nextEvent(worker, "idle");
  await worker.start();
  await idle;
  const control = await job.delay("control");
  assert.equal(await control.get({ timeout: 10_000 }), "control");
  assert.deepEqual(ran, ["control"], "the revoked task never ran");
  const qrow = await taskRow(db, queued.id);
  assert.equal(qrow.state, "cancelled");
  assert.equal(qrow.attempts, 0);
  const qerr = await thrown(() => queued.get({ timeout: 5_000 }));
  assert.equal(qerr.name, "TaskFailedError");
  assert.equal(qerr.cause.name, "Cancelled");

  // Running: the revoke reaches the worker, which aborts ctx.signal.
  const running = await job.delay("running");
  await started.promise;
  assert.equal(await running.revoke(), true);
  assert.deepEqual(await abortSeen.promise, { aborted: true, reason: "Cancelled" });
  const rerr = await thrown(() => running.get({ timeout: 5_000 }));
  assert.equal(rerr.cause.name, "Cancelled");
  await waitFor("the worker to let go of the revoked task", () => worker.stats().running === 0);
  // The handler's late result changes nothing.
  const after = await job.delay("after");
  await after.get({ timeout: 10_000 });
  const rrow = await taskRow(db, running.id);
  assert.equal(rrow.state, "cancelled");
  assert.equal(rrow.result, null);
  assert.ok(!succeeded.includes(running.id), "no succeeded event for the revoked task");
  await jobs.close();
});

test("2,000 tasks that each wait 20 ms run exactly once with concurrency 50", async (t) => {
  const jobs = openJobs(db);
  const N = 2_000;
  const counts = new Map<string, number>();
  const byArg = new Map<number, number>();
  let active = 0;
  let maxActive = 0;
  const nap = jobs.task("nap", async (ctx: TaskContext, i: number) => {
    counts.set(ctx.id, (counts.get(ctx.id) ?? 0) + 1);
    byArg.set(i, (byArg.get(i) ?? 0) + 1);
    active++;
    maxActive = Math.max(maxActive, active);
    await sleep(20);
    active--;
    return i;
  }, { queue: "w_many" });
  const results = await jobs.enqueueMany(Array.from({ length: N }, (_, i) => nap.s(i)));
  assert.equal(results.length, N);
  let succeeded = 0;
  const allDone = new Promise<void>((resolve) =>
    jobs.on("succeeded", (e) => {
      if (e.name === "nap" && ++succeeded === N) resolve();
    }),
  );
  const t0 = performance.now();
  await jobs.worker({ queues: ["w_many"], concurrency: 50 }).start();
  await allDone;
  const ms = performance.now() - t0;
  const sequential = N * 20;
  t.diagnostic(`2,000 x 20 ms tasks at concurrency 50: ${ms.toFixed(0)} ms (sequential would be ${sequential} ms: ${((ms / sequential) * 100).toFixed(1)} %)`);

  assert.equal(counts.size, N, "every task ran");
  assert.deepEqual([...new Set(counts.values())], [1], "no task ran twice");
  assert.equal(byArg.size, N);
  assert.equal(maxActive, 50, "up to 50 handlers at once, never more");
  const { rows } = await db.query<{ state: string; attempts: number; n: number }>(
    "select state::text, attempts, count(*)::int as n from jobs.tasks where name = 'nap' group by 1, 2",
  );
  assert.deepEqual(rows, [{ state: "succeeded", attempts: 1, n: N }]);
  const ids = new Set(results.map((r) => r.id));
  assert.deepEqual([...counts.keys()].filter((id) => !ids.has(id)), [], "only the enqueued ids ran");
  await jobs.close();
});

test("tasks finishing one at a time are refilled in claims of half the prefetch or more, not a claim per freed slot", async () => {
  const jobs = openJobs(db);
  const N = 300;
  const ran = new Map<number, number>();
  // Durations that differ task to task: slots free up one by one, not in waves.
  const stagger = jobs.task("stagger", async (_ctx: TaskContext, i: number) => {
    ran.set(i, (ran.get(i) ?? 0) + 1);
    await sleep(2 + ((i * 7) % 11));
  }, { queue: "w_stagger" });
  await jobs.enqueueMany(Array.from({ length: N }, (_, i) => stagger.s(i)));
  const worker = jobs.worker({ queues: ["w_stagger"], concurrency: 10, prefetch: 10 });
  const claims: number[] = [];
  worker.on("claimed", (e) => claims.push(e.count));
  let done = 0;
  const allDone = new Promise<void>((resolve) => jobs.on("succeeded", () => ++done === N && resolve()));
  await worker.start();
  await allDone;
  assert.equal(ran.size, N);
  assert.deepEqual([...new Set(ran.values())], [1], "each task ran once");
  assert.equal(claims.reduce((a, b) => a + b, 0), N, "every task claimed once");
  // Below half the prefetch only where the queue ran short (the last claims).
  const small = claims.filter((c) => c < 5);
  assert.ok(small.length <= 2, `claims of fewer than 5: ${small.length} of ${claims.length} (${claims.join(" ")})`);
  await jobs.close();
});

test("lifecycle events fire with the right information", async () => {
  const jobs = openJobs(db);
  const events: Array<[string, Record<string, any>]> = [];
  for (const name of ["enqueued", "started", "succeeded", "failed", "retrying"] as const) {
    jobs.on(name, (e: Record<string, any>) => events.push([name, e]));
  }
  const wobbly = jobs.task("wobbly", async (ctx: TaskContext, x: number) => {
    if (ctx.attempt === 1) throw new TypeError("first attempt fails");
    return { x };
  }, { queue: "w_events", retries: 1, backoff: { delay: 200 } });
  const broken = jobs.task("broken", async () => {
    throw new Error("always broken");
  }, { queue: "w_events", retries: 0 });
  const worker = await jobs.worker({ queues: ["w_events"] }).start();
  const a = await wobbly.delay(7);
  await a.get({ timeout: 10_000 });
  const b = await broken.delay();
  await thrown(() => b.get({ timeout: 10_000 }));
  await waitFor("the failed event", () => events.some(([n, e]) => n === "failed" && e.id === b.id));
  await waitFor("the succeeded event", () => events.some(([n, e]) => n === "succeeded" && e.id === a.id));

  const base = { queue: "w_events", workerId: worker.id };
  // "enqueued" fires in the enqueuing process once the insert returns; the worker may already have
  // started the task by then (its NOTIFY and claim can overtake the insert's reply), so its place
  // relative to the worker's events is not fixed. The worker's own events are in order.
  const enqueuedOf = (id: string) => events.filter(([n, e]) => n === "enqueued" && e.id === id).map(([, e]) => e);
  const workerEventsOf = (id: string) => events.filter(([n, e]) => n !== "enqueued" && e.id === id);
  assert.deepEqual(enqueuedOf(a.id), [{ id: a.id, name: "wobbly", queue: "w_events" }]);
  assert.deepEqual(enqueuedOf(b.id), [{ id: b.id, name: "broken", queue: "w_events" }]);

  const ofA = workerEventsOf(a.id);
  assert.deepEqual(ofA.map(([n]) => n), ["started", "retrying", "started", "succeeded"]);
  assert.deepEqual(ofA[0]![1], { id: a.id, name: "wobbly", ...base, attempt: 1, maxAttempts: 2 });
  const retrying = ofA[1]![1];
  assert.equal(typeof retrying.durationMs, "number", "a retrying attempt says how long it ran");
  assert.deepEqual({ ...retrying, error: undefined, delayMs: undefined, durationMs: undefined }, { id: a.id, name: "wobbly", ...base, attempt: 1, maxAttempts: 2, error: undefined, delayMs: undefined, durationMs: undefined });
  assert.equal(retrying.error.name, "TypeError");
  assert.equal(retrying.error.message, "first attempt fails");
  assert.ok(retrying.delayMs >= 0 && retrying.delayMs <= 200, `delayMs from the backoff (200 ms base): ${retrying.delayMs}`);
  assert.deepEqual(ofA[2]![1], { id: a.id, name: "wobbly", ...base, attempt: 2, maxAttempts: 2 });
  const succeeded = ofA[3]![1];
  assert.deepEqual(succeeded.result, { x: 7 });
  assert.equal(succeeded.attempt, 2);
  assert.equal(typeof succeeded.durationMs, "number");

  const ofB = workerEventsOf(b.id);
  assert.deepEqual(ofB.map(([n]) => n), ["started", "failed"]);
  const failed = ofB[1]![1];
  assert.equal(failed.name, "broken");
  assert.equal(failed.attempt, 1);
  assert.equal(failed.maxAttempts, 1);
  assert.equal(failed.workerId, worker.id);
  assert.equal(failed.error.message, "always broken");
  assert.match(failed.error.stack, /always broken/);
  assert.equal(typeof failed.durationMs, "number");
  await jobs.close();
});

test("a task name no worker knows fails at once with an error naming it, instead of looping", async () => {
  const jobs = openJobs(db);
  jobs.task("known", async () => "known", { queue: "w_unknown" });
  const worker = await jobs.worker({ queues: ["w_unknown"] }).start();
  // Enqueued from SQL (another app, another language) under a name this worker has no handler for.
  const { rows } = await db.query("select jobs.enqueue('nobody_registered_this', '[1]', queue => 'w_unknown') as id");
  const id = String(rows[0].id);
  const err = await thrown(() => jobs.result(id, "nobody_registered_this").get({ timeout: 10_000 }));
  assert.equal(err.name, "TaskFailedError");
  assert.equal(err.cause.name, "UnknownTask");
  assert.match(err.cause.message, /no handler for task nobody_registered_this/);
  const row = await taskRow(db, id);
  assert.equal(row.state, "failed");
  assert.equal(row.attempts, 1, "failed for good on the first attempt, not retried");
  assert.equal(row.max_attempts, 4);
  assert.match(row.error.message, /nobody_registered_this/);
  assert.match(row.error.message, /register it with jobs\.task\("nobody_registered_this"/);
  assert.equal(worker.stats().running, 0);
  await jobs.close();
});

test("retention: a starting worker prunes finished tasks older than its retention and keeps the rest; retention false keeps all", async () => {
  // Pruning runs in the worker's maintenance, first right after start, then at most once a minute.
  // The last step of that pass forgets workers whose heartbeat stopped an hour ago: a dead worker
  // row going away tells the test that the pass is over.
  const seed = async () => {
    await db.query("delete from jobs.tasks where queue = 'w_retention'");
    await db.query(`insert into jobs.workers (id, name, hostname, pid, queues, concurrency, heartbeat_at)
                    values (gen_random_uuid(), 'dead', 'nowhere', 1, '{w_retention}', 1, now() - interval '2 hours')`);
    const { rows } = await db.query<{ id: string; label: string }>(`
      insert into jobs.tasks (name, queue, state, finished_at, args)
      select 'old_or_new', 'w_retention', s::jobs.task_state, f, jsonb_build_array(l)
        from (values ('succeeded', now() - interval '3 hours', 'old-succeeded'),
                     ('failed',    now() - interval '3 hours', 'old-failed'),
                     ('cancelled', now() - interval '3 hours', 'old-cancelled'),
                     ('succeeded', now() - interval '30 minutes', 'recent-succeeded'),
                     ('ready',     null::timestamptz, 'unfinished')) v(s, f, l)
      returning id, args->>0 as label`);
    return rows;
  };
  const deadWorkerGone = async () => (await db.query("select count(*)::int as n from jobs.workers where name = 'dead'")).rows[0].n === 0;
  const remaining = async () =>
    (await db.query<{ label: string }>("select args->>0 as label from jobs.tasks where queue = 'w_retention' order by 1")).rows.map((r) => r.label);

  await seed();
  const keeper = openJobs(db);
  await keeper.worker({ queues: ["w_retention_none"], retention: false }).start();
  await waitFor("the maintenance pass of the worker with retention false", deadWorkerGone);
  assert.deepEqual(await remaining(), ["old-cancelled", "old-failed", "old-succeeded", "recent-succeeded", "unfinished"]);
  await keeper.close();

  await seed();
  const pruner = openJobs(db);
  await pruner.worker({ queues: ["w_retention_none"], retention: "1h" }).start();
  await waitFor("the maintenance pass of the worker with retention 1h", deadWorkerGone);
  assert.deepEqual(await remaining(), ["recent-succeeded", "unfinished"]);
  await pruner.close();
});

test("worker.stop() lets running tasks finish and hands back claimed tasks that had not started", async () => {
  const jobs = openJobs(db);
  const begun = gate();
  const release = gate();
  const signals: boolean[] = [];
  const ran: string[] = [];
  const job = jobs.task("finish_me", async (ctx: TaskContext, label: string) => {
    ran.push(label);
    begun.open();
    await release.promise;
    signals.push(ctx.signal.aborted);
    return `${label} done`;
  }, { queue: "w_stop" });
  const first = await job.delay("first");
  const second = await job.delay("second");
  // One running, one claimed ahead (prefetch) but not started.
  const worker = jobs.worker({ queues: ["w_stop"], concurrency: 1, prefetch: 1 });
  const claimed = new Promise<void>((resolve) => {
    let n = 0;
    worker.on("claimed", (e) => {
      n += e.count;
      if (n >= 2) resolve();
    });
  });
  await worker.start();
  await begun.promise;
  await claimed;
  assert.deepEqual(worker.stats(), { running: 1, buffered: 1, pendingAcks: 0 });
  assert.equal((await taskRow(db, second.id)).attempts, 1, "the prefetched task is claimed (attempt charged) while it waits");

  let stopResolved = false;
  const stopping = worker.stop().then(() => (stopResolved = true));
  await waitFor("the unstarted task to be handed back", async () => (await taskRow(db, second.id)).state === "ready");
  assert.equal(stopResolved, false, "stop() waits for the running task");
  assert.equal((await taskRow(db, first.id)).state, "running");
  release.open();
  await stopping;
  assert.deepEqual(ran, ["first"]);
  assert.deepEqual(signals, [false], "the running task finished without an abort");
  const firstRow = await taskRow(db, first.id);
  assert.equal(firstRow.state, "succeeded");
  assert.equal(firstRow.result, "first done");
  const secondRow = await taskRow(db, second.id);
  assert.equal(secondRow.state, "ready", "handed back");
  assert.equal(secondRow.attempts, 0, "its attempt is not charged");
  assert.equal((await db.query("select count(*)::int as n from jobs.workers where id = $1", [worker.id])).rows[0].n, 0, "deregistered");
  await worker.stop(); // idempotent

  // Past the grace period, a running task is aborted and handed back with its attempt counted.
  const aborted = gate<boolean>();
  const stuck = jobs.task("stuck", async (ctx: TaskContext) => {
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    aborted.open(ctx.signal.aborted);
  }, { queue: "w_stop_grace" });
  const s = await stuck.delay();
  const impatient = await jobs.worker({ queues: ["w_stop_grace"], shutdownGrace: "200ms" }).start();
  await waitFor("the stuck task to start", () => impatient.stats().running === 1);
  await impatient.stop();
  assert.equal(await aborted.promise, true);
  const stuckRow = await taskRow(db, s.id);
  assert.equal(stuckRow.state, "ready", "handed back to run again");
  assert.equal(stuckRow.attempts, 0, "the interrupted attempt is not counted: the task did not fail, the worker stopped it");
  await jobs.close();
});

test("stop() called while start() is still in progress leaves the worker stopped", async () => {
  // What SIGTERM during a worker's start does (runUntilSignalled calls stop() whenever the signal
  // comes): the worker must not come to life after stop() resolved.
  const jobs = openJobs(db);
  const ran: string[] = [];
  const job = jobs.task("late_starter", async (_ctx, label: string) => {
    ran.push(label);
    return label;
  }, { queue: "w_start_stop" });
  const worker = jobs.worker({ queues: ["w_start_stop"], pollInterval: 100 });
  const starting = worker.start();
  await worker.stop();
  await starting.catch(() => {}); // resolving or rejecting are both fine; running afterwards is not
  const r = await job.delay("after stop");
  // A live worker would claim it on the insert's NOTIFY, or at the latest at its 100 ms poll.
  await sleep(600);
  assert.deepEqual(ran, [], "the stopped worker ran nothing");
  assert.equal(await r.state(), "ready");
  assert.equal((await db.query("select count(*)::int as n from jobs.workers where id = $1", [worker.id])).rows[0].n, 0, "not registered");
  await jobs.worker({ queues: ["w_start_stop"] }).start();
  assert.equal(await r.get({ timeout: 10_000 }), "after stop", "a worker started afterwards runs it");
  assert.deepEqual(ran, ["after stop"]);
  await jobs.close();
});

test("one worker serves several queues, and only those", async () => {
  const jobs = openJobs(db);
  const seen = new Map<string, string[]>();
  const job = jobs.task("multi", async (ctx: TaskContext, label: string) => {
    seen.set(ctx.queue, [...(seen.get(ctx.queue) ?? []), label]);
    return ctx.queue;
  });
  const queues = ["w_multi_a", "w_multi_b", "w_multi_c"];
  const rs = [];
  for (const q of queues) for (let i = 0; i < 3; i++) rs.push(await job.applyAsync([`${q}-${i}`], { queue: q }));
  const other = await job.applyAsync(["elsewhere"], { queue: "w_multi_d" });
  await jobs.worker({ queues, concurrency: 2 }).start();
  for (const r of rs) assert.ok(queues.includes(await r.get({ timeout: 10_000 })));
  for (const q of queues) assert.deepEqual((seen.get(q) ?? []).sort(), [0, 1, 2].map((i) => `${q}-${i}`));
  assert.equal(await other.state(), "ready", "a queue the worker does not serve is left alone");
  assert.equal(await countTasks(db, "name = 'multi' and state = 'succeeded'"), 9);
  await jobs.close();
});

test("a result JSON cannot carry fails the task for good; a thrown non-Error and a synchronous throw are recorded", async () => {
  const jobs = openJobs(db);
  let resultRuns = 0;
  const badResult = jobs.task("bad_result", async () => {
    resultRuns++;
    return { total: 10n } as unknown as { total: number };
  }, { queue: "w_bad_result", retries: 3, backoff: { delay: 20 } });
  const stringThrower = jobs.task("string_thrower", async () => {
    throw "plain string"; // eslint-disable-line no-throw-literal
  }, { queue: "w_bad_result", retries: 0 });
  const syncThrower = jobs.task("sync_thrower", (): number => {
    throw new SyntaxError("thrown before any await");
  }, { queue: "w_bad_result", retries: 0 });
  await jobs.worker({ queues: ["w_bad_result"] }).start();

  const r1 = await badResult.delay();
  const e1 = await thrown(() => r1.get({ timeout: 10_000 }));
  assert.equal(e1.name, "TaskFailedError");
  assert.match(e1.cause.message, /task bad_result: the result\.total is a BigInt \(10n\)/);
  assert.equal(resultRuns, 1, "not retried: running it again cannot make the result JSON");
  assert.equal((await taskRow(db, r1.id)).attempts, 1);

  const r2 = await stringThrower.delay();
  const e2 = await thrown(() => r2.get({ timeout: 10_000 }));
  assert.deepEqual({ name: e2.cause.name, message: e2.cause.message }, { name: "NonErrorThrown", message: "plain string" });

  const r3 = await syncThrower.delay();
  const e3 = await thrown(() => r3.get({ timeout: 10_000 }));
  assert.deepEqual({ name: e3.cause.name, message: e3.cause.message }, { name: "SyntaxError", message: "thrown before any await" });
  assert.equal((await taskRow(db, r3.id)).state, "failed");
  await jobs.close();
});
