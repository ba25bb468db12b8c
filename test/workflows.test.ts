/**
 * Issue 4, workflows: group, chain, chord, map/starmap/chunks and error callbacks, nested as
 * Celery's canvas nests, run by a worker in this process; the chord_progress view; canvases in
 * the caller's transaction and from SQL; and the examples (report pipeline, news, fan-out), run
 * from their own code. Faults (worker processes killed, duplicated acknowledgements, members that
 * fail for good) are in workflows-faults.test.ts.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  AsyncResult,
  chain,
  chord,
  chunks,
  createJobs,
  group,
  GroupResult,
  InvalidInputError,
  map,
  starmap,
  TaskFailedError,
  TimeoutError,
  type Jobs,
} from "../src/index.js";
import { statement } from "../src/sql.js";
import { useDatabase } from "./helpers/db.js";
import { waitFor } from "./fixtures/issue4-procs.js";
import { runFanout } from "../examples/fanout.js";
import { runNews } from "../examples/news.js";
import { runReportPipeline } from "../examples/report-pipeline.js";

const db = useDatabase();
const Q = "wf";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function defineTasks(jobs: Jobs) {
  const o = { queue: Q, retries: 0 };
  const add = jobs.task("wf.add", (_ctx, a: number, b: number) => a + b, o);
  /** Sums numbers, nested lists flattened. */
  const sum = jobs.task("wf.sum", (_ctx, xs: unknown[]) => (xs.flat(Infinity) as number[]).reduce((s, x) => s + x, 0), o);
  return {
    add,
    sum,
    mul: jobs.task("wf.mul", (_ctx, a: number, b: number) => a * b, o),
    identity: jobs.task("wf.identity", (_ctx, x: unknown) => x, o),
    sleepy: jobs.task("wf.sleepy", async (_ctx, i: number, ms: number) => {
      await sleep(ms);
      return i;
    }, o),
    fail: jobs.task("wf.fail", (_ctx, ...args: unknown[]): never => {
      throw new Error(`fail ${JSON.stringify(args)}`);
    }, o),
    /** Error callback: {id, name, error} of the failed task, then a tag. */
    onError: jobs.task("wf.on_error", (_ctx, info: { id: string; name: string; error: { message: string } }, tag: string) => ({ tag, ...info }), o),
    /** Builds and applies a chord from inside a running task; returns the callback's id. */
    spawner: jobs.task("wf.spawner", async (ctx, n: number): Promise<string> => {
      const r = await chord(Array.from({ length: n }, (_, i) => add.s(i, ctx.headers.offset as number)), sum.s()).applyAsync();
      return (r as AsyncResult<number>).id;
    }, o),
    chunkSum: jobs.task("wf.chunk_sum", (_ctx, xs: number[]) => xs.reduce((s, x) => s + x, 0), o),
  };
}

let jobs: Jobs;
let tasks: ReturnType<typeof defineTasks>;
let ready: Promise<void> | undefined;

/** One Jobs, its tasks and a worker on queue "wf", made by the first test that runs. */
function setup(): Promise<void> {
  return (ready ??= (async () => {
    jobs = createJobs({ connectionString: db.url, logLevel: "silent" });
    tasks = defineTasks(jobs);
    db.onClose(() => jobs.close());
    await jobs.worker({ queues: [Q], concurrency: 20, pollInterval: 500 }).start();
  })());
}

const idOf = (r: unknown) => (r as AsyncResult).id;

async function taskRows(where: string, params: unknown[] = []) {
  const { rows } = await db.query(`select id::text, name, args, state::text, attempts, parent_id::text, chord_id::text, result from jobs.tasks where ${where} order by id`, params);
  return rows;
}

async function failure(p: Promise<unknown>): Promise<TaskFailedError> {
  const err = await p.then(
    (v) => assert.fail(`expected a failure, got ${JSON.stringify(v)}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof TaskFailedError, `expected a TaskFailedError, got ${String(err)}`);
  return err;
}

test("a group's results come in member order, whatever order the members finish in", async () => {
  await setup();
  // Member 0 sleeps longest, so the members finish in reverse order.
  const r = await group([0, 1, 2, 3, 4].map((i) => tasks.sleepy.s(i, (4 - i) * 40))).applyAsync();
  assert.ok(r instanceof GroupResult);
  assert.deepEqual(await r.get({ timeout: 10_000 }), [0, 1, 2, 3, 4]);
  const ids = r.results.map(idOf);
  const { rows } = await db.query<{ id: string }>("select id::text from jobs.tasks where id = any($1::bigint[]) order by finished_at, id desc", [ids]);
  assert.deepEqual(rows.map((x) => x.id), [...ids].reverse(), "the members finished last-first");
  const groups = await db.query("select count(distinct group_id)::int as n, count(group_id)::int as members from jobs.tasks where id = any($1::bigint[])", [ids]);
  assert.deepEqual(groups.rows, [{ n: 1, members: 5 }], "the members share one group_id");
  assert.equal(await r.ready(), true);
  assert.equal(await r.completedCount(), 5);
  assert.equal(await r.failedCount(), 0);
});

test("GroupResult counts completed and failed members; get() rejects with the first failure in member order", async () => {
  await setup();
  const r = await group(tasks.add.s(1, 1), tasks.fail.s("a"), tasks.add.s(2, 2), tasks.fail.s("b"), tasks.add.s(3, 3)).applyAsync();
  const err = await failure(r.get({ timeout: 10_000 }));
  assert.equal(err.taskName, "wf.fail");
  assert.equal(err.taskId, idOf(r.results[1]), "the first failed member in member order");
  assert.match(err.message, /fail \["a"\]/);
  assert.equal(await r.ready(), true);
  assert.equal(await r.completedCount(), 3);
  assert.equal(await r.failedCount(), 2);
});

test("a chain hands each result to the next step; an immutable .si() step ignores it", async () => {
  await setup();
  // (1 + 2) * 10 = 30, ignored by mul.si(2, 3) = 6, then 6 + 100.
  const r = await chain(tasks.add.s(1, 2), tasks.mul.s(10), tasks.mul.si(2, 3), tasks.add.s(100)).applyAsync();
  assert.equal(await r.get({ timeout: 10_000 }), 106);
  // From the last step back to the first, by parent_id.
  const { rows: back } = await db.query(
    `with recursive s as (select id, name, args, result, parent_id from jobs.tasks where id = $1
                          union all
                          select t.id, t.name, t.args, t.result, t.parent_id from jobs.tasks t join s on t.id = s.parent_id)
     select id::text, name, args, result, parent_id::text from s`,
    [idOf(r)],
  );
  const steps = back.reverse();
  assert.deepEqual(steps.map((s) => [s.name, s.args, s.result]), [
    ["wf.add", [1, 2], 3],
    ["wf.mul", [3, 10], 30],
    ["wf.mul", [2, 3], 6],
    ["wf.add", [6, 100], 106],
  ]);
  for (let i = 1; i < steps.length; i++) assert.equal(steps[i].parent_id, steps[i - 1].id, "each step is the child of the one before");
});

test("a group followed by a step becomes a chord; a group after a step gets that step's result", async () => {
  await setup();
  const r1 = await chain(group(tasks.add.s(1, 1), tasks.add.s(2, 2)), tasks.sum.s()).applyAsync();
  assert.equal(await r1.get({ timeout: 10_000 }), 6);
  const { rows } = await db.query("select total, remaining, state from jobs.chords where callback_id = $1", [idOf(r1)]);
  assert.deepEqual(rows, [{ total: 2, remaining: 0, state: "fired" }], "chain(group, step) ran as a chord");

  // 1 + 1 = 2 -> [2 * 2, 2 * 3] -> 10
  const r2 = await chain(tasks.add.s(1, 1), group(tasks.mul.s(2), tasks.mul.s(3)), tasks.sum.s()).applyAsync();
  assert.equal(await r2.get({ timeout: 10_000 }), 10);

  // A chain of two groups: each member of the second gets the list of the first's results.
  const r3 = await chain(group(tasks.add.s(1, 1), tasks.add.s(2, 2)), group(tasks.sum.s(), tasks.identity.s())).applyAsync();
  assert.ok(r3 instanceof GroupResult);
  assert.deepEqual(await r3.get({ timeout: 10_000 }), [6, [2, 4]]);
});

test("a group of chains returns each chain's last result, in member order", async () => {
  await setup();
  const r = await group(chain(tasks.add.s(1, 1), tasks.mul.s(10)), chain(tasks.add.s(2, 2), tasks.sleepy.s(50), tasks.mul.s(100))).applyAsync();
  // The second chain's last step (sleepy returns its first argument: 4, then * 100).
  assert.deepEqual(await r.get({ timeout: 10_000 }), [20, 400]);
});

test("a chord whose header holds chains and a group gets their results in header order", async () => {
  await setup();
  const header = [chain(tasks.add.s(1, 1), tasks.sleepy.s(60), tasks.mul.s(3)), group(tasks.add.s(1, 0), tasks.add.s(2, 0)), tasks.add.s(5, 5)];
  const r = await chord(header, tasks.identity.s()).applyAsync();
  const value = await r.get({ timeout: 5_000 }).catch(async (err: unknown) => {
    // Say what is stuck: a task nobody serves waits forever.
    const { rows } = await db.query("select name, queue, state::text from jobs.tasks where state not in ('succeeded', 'failed', 'cancelled') and created_at > now() - interval '1 minute'");
    assert.fail(`${String(err)}; unfinished tasks: ${JSON.stringify(rows)} (the worker serves queue "${Q}" only)`);
  });
  assert.deepEqual(value, [6, [1, 2], 10]);
});

test("a chain whose middle step is a chord of chains produces the expected value", async () => {
  await setup();
  // 1 + 1 = 2; header: [2 * 10 + 1 = 21, (2 + 5) * 2 = 14]; sum = 35; then * 2 = 70.
  const c = chain(
    tasks.add.s(1, 1),
    chord([chain(tasks.mul.s(10), tasks.add.s(1)), chain(tasks.add.s(5), tasks.mul.s(2))], tasks.sum.s()),
    tasks.mul.s(2),
  );
  const r = await c.applyAsync();
  assert.equal(await r.get({ timeout: 10_000 }), 70);
  const last = await taskRows("id = $1", [idOf(r)]);
  assert.deepEqual(last.map((x) => [x.name, x.args]), [["wf.mul", [35, 2]]]);
  const sumStep = await taskRows("id = $1::bigint", [last[0].parent_id]);
  assert.deepEqual(sumStep.map((x) => [x.name, x.args]), [["wf.sum", [[21, 14]]]]);
});

test("an empty chord calls its body at once with an empty list", async () => {
  await setup();
  const r = await chord([], tasks.identity.s()).applyAsync();
  assert.deepEqual(await r.get({ timeout: 10_000 }), []);
});

test("a canvas built inside a running task is linked to it by parent_id and carries its headers", async () => {
  await setup();
  const spawner = await jobs.context.run({ offset: 100, tenant: "t1" }, () => tasks.spawner.delay(4));
  const callbackId = await spawner.get({ timeout: 10_000 });
  // The callback exists once the chord fires (jobs.result(id) refuses an id not enqueued yet:
  // see the test of jobs.result below). (0..3) + 100 each = 406.
  await waitFor("the chord's callback to be enqueued", async () => (await taskRows("id = $1", [callbackId])).length > 0 || undefined, 10_000);
  assert.equal(await jobs.result<number>(callbackId).get({ timeout: 10_000 }), 406);
  const members = await db.query("select args, headers from jobs.tasks where name = 'wf.add' and parent_id = $1 order by id", [spawner.id]);
  assert.deepEqual(members.rows.map((m) => m.args), [[0, 100], [1, 100], [2, 100], [3, 100]], "the members' parent is the task that applied the chord");
  for (const m of members.rows) assert.equal(m.headers.tenant, "t1", "the context travels to the members");
  const { rows } = await db.query("select parent_id::text, callback_id::text from jobs.chords where callback_id = $1", [callbackId]);
  assert.deepEqual(rows, [{ parent_id: spawner.id, callback_id: callbackId }]);
  const cb = await taskRows("id = $1", [callbackId]);
  assert.equal(cb[0].parent_id, spawner.id);
});

test("an error callback on a signature runs once with the failed task", async () => {
  await setup();
  const tag = `sig-${randomUUID()}`;
  const r = await tasks.fail.s("x").onError(tasks.onError.s(tag)).applyAsync();
  const err = await failure(r.get({ timeout: 10_000 }));
  assert.equal(err.taskId, r.id);
  const errback = await waitFor("the error callback to finish", async () => {
    const rows = await taskRows("name = 'wf.on_error' and args->>1 = $1", [tag]);
    return rows.length > 0 && rows.every((x) => x.state === "succeeded") ? rows : undefined;
  });
  assert.equal(errback.length, 1);
  assert.equal(errback[0].result.id, r.id);
  assert.equal(errback[0].result.name, "wf.fail");
  assert.match(errback[0].result.error.message, /fail \["x"\]/);
  assert.equal(errback[0].parent_id, r.id, "the error callback is the failed task's child");
});

test("an error callback on a chain runs once, for the step that failed; the later steps never run", async () => {
  await setup();
  const tag = `chain-${randomUUID()}`;
  const c = chain(tasks.add.s(1, 1), tasks.fail.s(), tasks.add.s(5), tasks.add.s(6)).onError(tasks.onError.s(tag));
  const r = await c.applyAsync();
  const err = await failure(r.get({ timeout: 10_000 }));
  assert.equal(err.cause.name, "UpstreamFailed");
  assert.match(err.message, /step wf\.fail \(id \d+\) failed: Error: fail \[2\]/);
  const errback = await waitFor("the error callback to finish", async () => {
    const rows = await taskRows("name = 'wf.on_error' and args->>1 = $1", [tag]);
    return rows.length > 0 && rows.every((x) => x.state === "succeeded") ? rows : undefined;
  });
  assert.equal(errback.length, 1, "one error callback for the chain");
  assert.equal(errback[0].result.name, "wf.fail");
  const later = await taskRows("parent_id = $1 and name = 'wf.add'", [errback[0].result.id]);
  assert.deepEqual(later.map((x) => [x.state, x.attempts]), [["cancelled", 0], ["cancelled", 0]], "the steps after the failure were never run");
});

test("a chord's error callback runs once when its callback fails", async () => {
  await setup();
  const tag = `chord-body-${randomUUID()}`;
  const r = await chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.fail.s()).onError(tasks.onError.s(tag)).applyAsync();
  await failure(r.get({ timeout: 10_000 }));
  const errbacks = await waitFor(
    "the chord's error callback to run",
    async () => {
      const rows = await taskRows("name = 'wf.on_error' and args->>1 = $1", [tag]);
      return rows.length > 0 ? rows : undefined;
    },
    3_000,
  ).catch(() => []);
  assert.equal(errbacks.length, 1, "chord(...).onError(e): e runs when the chord's callback fails for good (Celery's chord link_error)");
});

test("map, starmap and chunks: one task per item, per argument list, per chunk", async () => {
  await setup();
  assert.deepEqual(await (await map(tasks.identity, ["a", "b", "c"]).applyAsync()).get({ timeout: 10_000 }), ["a", "b", "c"]);
  assert.deepEqual(await (await starmap(tasks.add, [[1, 2], [3, 4], [5, 6]]).applyAsync()).get({ timeout: 10_000 }), [3, 7, 11]);
  const items = Array.from({ length: 10 }, (_, i) => i + 1);
  const r = await chunks(tasks.chunkSum, items, 3).applyAsync();
  assert.equal(r.results.length, 4, "10 items in chunks of 3: 4 tasks");
  assert.deepEqual(await r.get({ timeout: 10_000 }), [6, 15, 24, 10]);
  assert.throws(() => chunks(tasks.chunkSum, items, 0), InvalidInputError);
});

test("jobs.chord_progress shows total, completed, remaining and failed as members finish", async () => {
  await setup();
  const queue = "wf-manual"; // no worker serves it: this test acknowledges by hand
  const worker = randomUUID();
  const header = [1, 2, 3, 4, 5].map((i) => tasks.add.signature([i, 0], { queue }));
  await chord(header, tasks.sum.signature([], { queue })).applyAsync();
  const claimed = await db.query<{ id: string; attempts: number }>(statement("jobs", "task_claim_many").text, [queue, 5, worker, 60_000]);
  assert.equal(claimed.rows.length, 5);
  const chordId = (await db.query("select chord_id from jobs.tasks where id = $1", [claimed.rows[0]!.id])).rows[0].chord_id;
  const progress = async () =>
    (await db.query("select total, completed, remaining, failed, state from jobs.chord_progress where chord_id = $1", [chordId])).rows[0];
  assert.deepEqual(await progress(), { total: 5, completed: 0, remaining: 5, failed: 0, state: "waiting" });

  const [a, b, c] = claimed.rows;
  await db.query(statement("jobs", "task_finish_many").text, [[a!.id, b!.id], [a!.attempts, b!.attempts], ["1", "2"], worker]);
  assert.deepEqual(await progress(), { total: 5, completed: 2, remaining: 3, failed: 0, state: "waiting" });

  await db.query(statement("jobs", "task_fail_many").text, [[c!.id], [c!.attempts], [JSON.stringify({ name: "Error", message: "no" })], [null], worker]);
  assert.deepEqual(await progress(), { total: 5, completed: 2, remaining: 3, failed: 1, state: "failed" });

  // Members that succeed after the chord failed are still counted; the callback never runs.
  const [, , , d, e] = claimed.rows;
  await db.query(statement("jobs", "task_finish_many").text, [[d!.id, e!.id], [d!.attempts, e!.attempts], ["4", "5"], worker]);
  assert.deepEqual(await progress(), { total: 5, completed: 4, remaining: 1, failed: 1, state: "failed" });
  // Its callback stays what the failure made it: a cancelled placeholder naming the failed member.
  assert.deepEqual((await taskRows("name = 'wf.sum' and queue = $1", [queue])).map((r) => r.state), ["cancelled"]);
});

test("a canvas applied in the caller's transaction exists only if it commits", async () => {
  await setup();
  const client = await db.connect();
  await client.query("begin");
  const rolledBack = await chord([tasks.add.s(10, 10), tasks.add.s(20, 20)], tasks.sum.s()).applyAsync({ db: client });
  await client.query("rollback");
  assert.deepEqual(await taskRows("args = '[10, 10]' or id = $1", [idOf(rolledBack)]), []);
  assert.equal((await db.query("select count(*)::int as n from jobs.chords where callback->'node'->>'id' = $1", [idOf(rolledBack)])).rows[0].n, 0);

  await client.query("begin");
  const committed = await chord([tasks.add.s(10, 10), tasks.add.s(20, 20)], tasks.sum.s()).applyAsync({ db: client });
  await client.query("commit");
  assert.equal(await committed.get({ timeout: 10_000 }), 60);
});

test("select jobs.apply_canvas(...) from SQL runs on the TypeScript worker", async () => {
  await setup();
  const { rows } = await db.query<{ canvas: { steps: Array<{ id: string }> } }>(
    `select jobs.apply_canvas('{"t":"chain","steps":[{"t":"sig","name":"wf.add","args":[1,1],"queue":"wf"},{"t":"sig","name":"wf.mul","args":[21],"queue":"wf"}]}') as canvas`,
  );
  const lastId = rows[0]!.canvas.steps[1]!.id;
  // The last step exists once the first has succeeded (jobs.result(id) refuses an id not enqueued
  // yet: see the next test).
  await waitFor("the second step to be enqueued", async () => (await taskRows("id = $1", [lastId])).length > 0 || undefined, 10_000);
  assert.equal(await jobs.result<number>(lastId).get({ timeout: 10_000 }), 42);
});

test("jobs.result(id, name, { mayNotExistYet: true }) of a workflow step not enqueued yet reads as pending and waits, as Celery's AsyncResult(id) does", async () => {
  await setup();
  // The first step waits on a queue no worker serves, so the second is not enqueued for now.
  const { rows } = await db.query<{ canvas: { steps: Array<{ id: string }> } }>(
    `select jobs.apply_canvas('{"t":"chain","steps":[{"t":"sig","name":"wf.add","args":[1,1],"queue":"wf-later"},{"t":"sig","name":"wf.mul","args":[21],"queue":"wf"}]}') as canvas`,
  );
  const later = jobs.result<number>(rows[0]!.canvas.steps[1]!.id, "wf.mul", { mayNotExistYet: true });
  // Another process holds only the id (seeds/003: the web app hands the chord callback's id to the
  // frontend, which polls it long before the chord fires) and says it may not be enqueued yet.
  const state = await later.state().catch((e: unknown) => e);
  assert.equal(state, "pending", `state() of a step still to come: ${String(state)}`);
  const waited = await later.get({ timeout: 300 }).catch((e: unknown) => e);
  assert.ok(waited instanceof TimeoutError, `get() should keep waiting for a step still to come, got: ${String(waited)}`);
  await db.query("update jobs.tasks set queue = 'wf' where id = $1", [rows[0]!.canvas.steps[0]!.id]);
  await db.query("select pg_notify('jobs.ready', 'wf')");
  assert.equal(await later.get({ timeout: 10_000 }), 42);
});

test("jobs.apply_canvas refuses a canvas with a bad step anywhere in it, and writes nothing", async () => {
  await setup();
  const before = (await db.query("select count(*)::int as n from jobs.tasks")).rows[0].n;
  // The second step's queue is not a valid name: the canvas must be refused when it is applied,
  // not when the first step succeeds (then the worker's acknowledgement would fail instead).
  const err = await db
    .query(`select jobs.apply_canvas('{"t":"chain","steps":[{"t":"sig","name":"wf.add","args":[1,1],"queue":"wf-unserved"},{"t":"sig","name":"wf.mul","args":[2],"queue":"no spaces"}]}')`)
    .then(() => undefined, (e: Error & { code?: string }) => e);
  assert.ok(err, "apply_canvas accepted a chain whose second step has an invalid queue name");
  assert.equal(err.code, "22023", err.message);
  assert.match(err.message, /queue/);
  // In a chord header (checked as a whole when every member is fine) the bad member is named
  // by its path; so is a bad error callback of a member.
  const badMember = await db
    .query(`select jobs.apply_canvas('{"t":"chord","header":[{"t":"sig","name":"wf.add","args":[1,1]},{"t":"sig","name":"wf.add","args":[2,2],"priority":500},{"t":"sig","name":"wf.add","args":[3,3]}],"body":{"t":"sig","name":"wf.sum"}}')`)
    .then(() => undefined, (e: Error & { code?: string }) => e);
  assert.equal(badMember?.code, "22023", badMember?.message);
  assert.match(badMember!.message, /canvas\.header\[1\] \(task wf\.add\): priority 500 is out of range/);
  const badErrback = await db
    .query(`select jobs.apply_canvas('{"t":"group","members":[{"t":"sig","name":"wf.add","args":[1,1]},{"t":"sig","name":"wf.add","args":[2,2],"errbacks":[{"t":"sig","name":""}]}]}')`)
    .then(() => undefined, (e: Error & { code?: string }) => e);
  assert.equal(badErrback?.code, "22023", badErrback?.message);
  assert.match(badErrback!.message, /canvas\.members\[1\]\.errbacks\[0\] has an invalid task name/);
  assert.equal((await db.query("select count(*)::int as n from jobs.tasks")).rows[0].n, before);
});

test("examples/report-pipeline: five page fetches in parallel, merged into a CSV by a chord callback", async () => {
  const outDir = join(tmpdir(), `pgjobs-report-${process.pid}`);
  db.onClose(() => rm(outDir, { recursive: true, force: true }));
  const r = await runReportPipeline({ databaseUrl: db.url, outDir, delayMs: 150, log: () => {} });
  assert.equal(r.pages, 5);
  assert.equal(r.repos, 500);
  assert.match(r.csv.split("\n")[0]!, /^[A-Za-z+#]+,repo-/, "a line per language: the language, then its repositories");
  assert.ok(r.sequentialS > 0 && r.parallelS > 0);
  const { rows } = await db.query("select count(*)::int as n from jobs.tasks where name = 'fetch_hot_repos' and state = 'succeeded'");
  assert.equal(rows[0].n, 5);
});

test("examples/news: a chord over five country fetches aggregates their headlines", async () => {
  const r = await runNews({ databaseUrl: db.url, delayMs: 150, log: () => {} });
  assert.deepEqual(Object.keys(r.byCountry).sort(), ["de", "fr", "gb", "in", "us"]);
  assert.equal(r.articles, 5 * 8);
});

test("examples/fanout: 20 pages of 100 objects, each page fanning out a group from inside its task, every object processed exactly once", async () => {
  const r = await runFanout({ databaseUrl: db.url, sequentialSample: 5, log: () => {} });
  assert.equal(r.objects, 2000);
  const { rows } = await db.query<{ n: number; once: number; distinct_ids: number }>(
    "select count(*)::int as n, count(*) filter (where saves = 1)::int as once, count(distinct obj_id)::int as distinct_ids from fanout_objects",
  );
  assert.deepEqual(rows[0], { n: 2000, once: 2000, distinct_ids: 2000 });
  const tasksRun = await db.query<{ name: string; n: number; ok: number; first_try: number }>(
    `select name, count(*)::int as n, count(*) filter (where state = 'succeeded')::int as ok,
            count(*) filter (where attempts = 1)::int as first_try
       from jobs.tasks where name in ('fanout.start', 'fanout.store_results', 'fanout.store_obj_info') group by name order by name`,
  );
  assert.deepEqual(tasksRun.rows, [
    { name: "fanout.start", n: 1, ok: 1, first_try: 1 },
    { name: "fanout.store_obj_info", n: 2000, ok: 2000, first_try: 2000 },
    { name: "fanout.store_results", n: 20, ok: 20, first_try: 20 },
  ]);
  // The tree: start -> a task per page -> a task per object.
  const tree = await db.query<{ depth_ok: boolean }>(
    `select bool_and(p.name = 'fanout.store_results' and pp.name = 'fanout.start') as depth_ok
       from jobs.tasks o join jobs.tasks p on p.id = o.parent_id join jobs.tasks pp on pp.id = p.parent_id
      where o.name = 'fanout.store_obj_info'`,
  );
  assert.equal(tree.rows[0]!.depth_ok, true);
});
