/**
 * Issue 3, results: AsyncResult.get() (woken by NOTIFY, across processes; immediate for a finished
 * task; a TimeoutError on time), progress, state.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { InvalidInputError, TimeoutError, type TaskContext } from "../src/index.js";
import { useDatabase } from "./helpers/db.js";
import { Child, gate, nextEvent, openJobs, taskRow, thrown, waitFor } from "./fixtures/issue3-util.js";

const db = useDatabase();
const WAITER = fileURLToPath(new URL("./fixtures/issue3-waiter.js", import.meta.url));

test("delay then get returns the handler's result, and the row says succeeded", async () => {
  const jobs = openJobs(db);
  const add = jobs.task("add", async (_ctx, a: number, b: number) => ({ sum: a + b }), { queue: "r_add" });
  await jobs.worker({ queues: ["r_add"] }).start();
  const r = await add.delay(2, 3);
  assert.match(r.id, /^\d+$/);
  assert.deepEqual(await r.get({ timeout: 10_000 }), { sum: 5 });
  const row = await taskRow(db, r.id);
  assert.equal(row.state, "succeeded");
  assert.deepEqual(row.result, { sum: 5 });
  assert.equal(row.attempts, 1);
  assert.equal(await r.state(), "succeeded");
  assert.equal(await r.ready(), true);
  await jobs.close();
});

test("get after the task finished resolves at once, from the first read (the fallback poll is 60 s)", async (t) => {
  // resultPoll 60 s and no NOTIFY to come (nobody waited when the task finished, so finishing
  // sent none): only the read that get() makes after registering can resolve it in time.
  const jobs = openJobs(db, { resultPoll: 60_000 });
  const hello = jobs.task("hello", async (_ctx, who: string) => `hello ${who}`, { queue: "r_done" });
  const boom = jobs.task("boom", async () => {
    throw new RangeError("no luck");
  }, { queue: "r_done", retries: 0 });
  const worker = await jobs.worker({ queues: ["r_done"] }).start();
  const ok = await hello.delay("world");
  const bad = await boom.delay();
  await waitFor("both tasks to finish", async () => (await ok.ready()) && (await bad.ready()));
  await worker.stop();
  const { rows } = await db.query("select count(*)::int as n from jobs.result_waiters where task_id = any($1::bigint[])", [[ok.id, bad.id]]);
  assert.equal(rows[0].n, 0, "nobody was waiting when they finished");

  const t0 = performance.now();
  assert.equal(await ok.get({ timeout: 5_000 }), "hello world");
  const okMs = performance.now() - t0;
  // A fresh handle by id, as another part of the app would make it.
  const err = await thrown(() => jobs.result(bad.id, "boom").get({ timeout: 5_000 }));
  assert.equal(err.name, "TaskFailedError", err.message);
  assert.equal(err.cause.name, "RangeError");
  assert.equal(err.cause.message, "no luck");
  t.diagnostic(`get() of a finished task resolved in ${okMs.toFixed(1)} ms`);
  await jobs.close();
});

test("a waiter in a second process (fallback poll 60 s) is woken by NOTIFY when the task finishes", async (t) => {
  const jobs = openJobs(db);
  const release = gate();
  const slow = jobs.task("issue3_slow", async () => {
    await release.promise;
    return { done: true, n: 42 };
  }, { queue: "r_notify" });
  await jobs.worker({ queues: ["r_notify"] }).start();
  const r = await slow.delay();
  await waitFor("the task to run", async () => (await r.state()) === "running");

  const child = new Child([WAITER, db.url, r.id, "20000"]);
  db.onClose(() => child.close());
  // The waiter read the row and found it unfinished: from here, only a notification (or its poll,
  // 60 s away; the get's own timeout is 20 s) can tell it that the task finished.
  assert.equal(await child.line((l) => l.endsWith(" registered")), "checked running registered");
  const { rows } = await db.query("select count(*)::int as n from jobs.result_waiters where task_id = $1", [r.id]);
  assert.equal(rows[0].n, 1, "the waiter registered itself in jobs.result_waiters");

  const t0 = performance.now();
  release.open();
  const outcome = JSON.parse(await child.line((l) => l.startsWith("{")));
  const latency = performance.now() - t0;
  assert.deepEqual({ ok: outcome.ok, value: outcome.value }, { ok: true, value: { done: true, n: 42 } }, JSON.stringify(outcome));
  assert.equal((await child.exited).code, 0, child.stderr);
  assert.equal(child.lines.filter((l) => l.startsWith("checked")).at(-1), "checked succeeded registered", "re-read on the notification");
  t.diagnostic(`cross-process waiter woken ${latency.toFixed(1)} ms after the task was released`);
  // The finished waiter removes its registration.
  await waitFor("the waiter's registration to be removed", async () => {
    const res = await db.query("select count(*)::int as n from jobs.result_waiters where task_id = $1", [r.id]);
    return res.rows[0].n === 0;
  });
  await jobs.close();
});

test("a finished task's result is returned even with a 1 ms timeout: the timeout bounds the waiting, not the first read", async () => {
  const jobs = openJobs(db, { resultPoll: 60_000 });
  const quick = jobs.task("quick", async () => "already here", { queue: "r_tiny_timeout" });
  const worker = await jobs.worker({ queues: ["r_tiny_timeout"] }).start();
  const r = await quick.delay();
  assert.equal(await r.get({ timeout: 10_000 }), "already here");
  await worker.stop();
  // Nothing to wait for: the row says succeeded. A caller asking "done yet? then give it to me,
  // without waiting" gets the result, as Celery's get(timeout=...) returns a ready result.
  assert.equal(await r.get({ timeout: 1 }), "already here");
  assert.equal(await jobs.result(r.id, "quick").get({ timeout: 0 }), "already here");
  await jobs.close();
});

test("get with a timeout rejects on time with a TimeoutError naming the task and id; a later get still works", async (t) => {
  const jobs = openJobs(db);
  const idle = jobs.task("unserved_for_now", async () => "finally", { queue: "r_timeout" });
  const r = await idle.delay();
  const t0 = performance.now();
  const err = await thrown(() => r.get({ timeout: 300 }));
  const elapsed = performance.now() - t0;
  assert.ok(err instanceof TimeoutError, `a TimeoutError, got ${err.name}: ${err.message}`);
  assert.equal(err.name, "TimeoutError");
  assert.match(err.message, /unserved_for_now/);
  assert.ok(err.message.includes(`id ${r.id}`), err.message);
  assert.ok(!err.message.includes("\n"), "one line");
  assert.ok(elapsed >= 290, `not before the timeout: ${elapsed} ms`);
  assert.ok(elapsed < 5_300, `on time, not much after 300 ms: ${elapsed} ms`);
  assert.equal(await r.state(), "ready", "giving up waiting does not touch the task");
  await waitFor("the timed-out waiter's registration to be removed", async () => {
    const res = await db.query("select count(*)::int as n from jobs.result_waiters where task_id = $1", [r.id]);
    return res.rows[0].n === 0;
  });

  await jobs.worker({ queues: ["r_timeout"] }).start();
  assert.equal(await r.get({ timeout: 10_000 }), "finally");
  t.diagnostic(`get({ timeout: 300 }) rejected after ${elapsed.toFixed(1)} ms`);
  await jobs.close();
});

test("ctx.progress is visible in SQL and through r.progress(); state and ready follow the task", async () => {
  const jobs = openJobs(db);
  const half = gate();
  const finish = gate();
  const job = jobs.task("with_progress", async (ctx: TaskContext, total: number) => {
    await ctx.progress(1, { of: total, step: "download" });
    await half.promise;
    await ctx.progress(total);
    await finish.promise;
    return "done";
  }, { queue: "r_progress" });
  const r = await job.delay(2);
  assert.equal(await r.progress(), null);
  assert.equal(await r.state(), "ready");
  assert.equal(await r.ready(), false);
  await jobs.worker({ queues: ["r_progress"] }).start();

  const sqlProgress = async () => (await db.query("select progress from jobs.tasks where id = $1", [r.id])).rows[0].progress;
  await waitFor("the first progress in SQL", async () => (await sqlProgress()) !== null);
  assert.deepEqual(await sqlProgress(), { value: 1, meta: { of: 2, step: "download" } });
  assert.deepEqual(await r.progress(), { value: 1, meta: { of: 2, step: "download" } });
  assert.equal(await r.state(), "running");
  assert.equal(await r.ready(), false);

  half.open();
  await waitFor("the second progress", async () => (await sqlProgress())?.value === 2);
  assert.deepEqual(await r.progress(), { value: 2 });
  finish.open();
  assert.equal(await r.get({ timeout: 10_000 }), "done");
  assert.equal(await r.ready(), true);
  assert.deepEqual(await r.progress(), { value: 2 }, "the last progress stays on the finished row");
  await jobs.close();
});

test("get and state of an id that was never enqueued reject with a clear error instead of waiting", async () => {
  const jobs = openJobs(db, { resultPoll: 60_000 });
  const ghost = jobs.result("987654321", "ghost");
  const err = await thrown(() => ghost.get({ timeout: 10_000 }));
  assert.notEqual(err.name, "TimeoutError", "answered from the read, not after the timeout");
  assert.match(err.message, /987654321/);
  assert.match(err.message, /does not exist/);
  const stateErr = await thrown(() => ghost.state());
  assert.match(stateErr.message, /ghost \(id 987654321\) does not exist/);
  await jobs.close();
});

test("a malformed task id is refused at once with a one-line error, not waited on until the timeout", async () => {
  const jobs = openJobs(db, { resultPoll: 60_000 });
  for (const id of ["abc", "", "1.5", "99999999999999999999"]) {
    const err = await thrown(() => jobs.result(id).get({ timeout: 3_000 }));
    assert.ok(err instanceof InvalidInputError, `jobs.result(${JSON.stringify(id)}).get(): an InvalidInputError, got ${err.name}: ${err.message}`);
    assert.ok(err.message.includes(JSON.stringify(id)), `names the id: ${err.message}`);
    assert.ok(!err.message.includes("\n"), "one line");
  }
  await jobs.close();
});

test("a waiter registered while the task runs gets the result the succeeded event carries", async () => {
  // Same process: the waiter is registered while the task runs; the finish must wake it by NOTIFY
  // (resultPoll 60 s).
  const jobs = openJobs(db, { resultPoll: 60_000 });
  const go = gate();
  const job = jobs.task("in_process_wait", async () => {
    await go.promise;
    return [1, "two", { three: 3 }];
  }, { queue: "r_same" });
  await jobs.worker({ queues: ["r_same"] }).start();
  // Listening before the enqueue: the worker may start the task before delay() has returned.
  const started = nextEvent<{ id: string; name: string }>(jobs, "started", (e) => e.name === "in_process_wait");
  const r = await job.delay();
  assert.equal((await started).id, r.id);
  const waiting = r.get({ timeout: 20_000 });
  await waitFor("the waiter's registration", async () => {
    const res = await db.query("select count(*)::int as n from jobs.result_waiters where task_id = $1", [r.id]);
    return res.rows[0].n === 1;
  });
  const succeeded = nextEvent<{ id: string; result: unknown }>(jobs, "succeeded", (e) => e.id === r.id);
  go.open();
  assert.deepEqual(await waiting, [1, "two", { three: 3 }]);
  assert.deepEqual((await succeeded).result, [1, "two", { three: 3 }]);
  await jobs.close();
});

test("a waiter whose read is chosen as a deadlock victim (against a finish of the same tasks) reads again at once, not at the next poll", async (t) => {
  // The finish took its snapshot (and found nobody waiting, so it will send no NOTIFY) before
  // the waiter registered; it locked B; the waiter's read then share-locked A and waited on B;
  // the finish then wanted A. The waiter has waited longer, so its deadlock check fires first
  // and its read is the one rolled back. Only reading again finds both finished (poll: 60 s).
  const jobs = openJobs(db, { resultPoll: 60_000 });
  const { rows } = await db.query<{ id: string }>("select id from jobs.enqueue_many(array['dl_a', 'dl_b'], queues => array['r_deadlock', 'r_deadlock']) order by id");
  const [a, b] = rows.map((r) => r.id) as [string, string];
  await db.query("update jobs.tasks set state = 'running', worker_id = gen_random_uuid(), attempts = 1, lease_until = now() + interval '1 hour' where id = any($1::bigint[])", [[a, b]]);
  const finisher = await db.connect();
  const finishing = finisher.query(`
    do $$
    begin
      perform jobs.notify_waiters(array[${a}, ${b}]::bigint[]);  -- nobody waits yet: no NOTIFY
      update jobs.tasks set state = 'succeeded', result = '"b"', finished_at = now(), lease_until = null where id = ${b};
      -- Until the waiter's read is blocked (on B), holding a share lock on A.
      loop
        perform pg_stat_clear_snapshot();
        exit when exists (select from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%task_wait_check%');
        perform pg_sleep(0.01);
      end loop;
      update jobs.tasks set state = 'succeeded', result = '"a"', finished_at = now(), lease_until = null where id = ${a};
    end $$`);
  const t0 = performance.now();
  const records = await jobs.waiters.wait([a, b], { timeoutMs: 20_000 });
  const ms = performance.now() - t0;
  await finishing;
  await finisher.end();
  assert.deepEqual(records.map((r) => [r.state, r.result]), [["succeeded", "a"], ["succeeded", "b"]]);
  // The scenario did happen (statistics reach pg_stat_database within a second or so).
  await waitFor("the server to count the deadlock", async () => {
    const { rows: dl } = await db.query("select deadlocks::int as n from pg_stat_database where datname = current_database()");
    return dl[0].n >= 1;
  });
  t.diagnostic(`resolved ${ms.toFixed(0)} ms after the wait began (deadlock_timeout 1 s)`);
  await jobs.close();
});
