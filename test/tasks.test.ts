/**
 * Issue 3, tasks: enqueue in the caller's transaction (pg client, Kysely), bad input refused with
 * one line and nothing written, context propagation, Dates as ISO strings, priority and countdown.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { createJobs, InvalidInputError, type Signature, type TaskContext } from "../src/index.js";
import { useDatabase } from "./helpers/db.js";
import { countTasks, nextEvent, openJobs, taskRow, thrown, waitFor } from "./fixtures/issue3-util.js";

const db = useDatabase();

test("an enqueue on a pg client runs if and only if its transaction commits", async () => {
  const jobs = openJobs(db);
  const ran: string[] = [];
  const receipt = jobs.task("send_receipt_pg", async (_ctx, order: string) => {
    ran.push(order);
    return `sent ${order}`;
  }, { queue: "t_tx_pg" });
  // The worker runs throughout, so a task that existed even briefly would be run.
  await jobs.worker({ queues: ["t_tx_pg"], pollInterval: 100 }).start();
  const client = await db.connect();

  await client.query("begin");
  const rolledBack = await receipt.applyAsync(["order-1"], { db: client });
  assert.equal(await countTasks(db, "id = $1", [rolledBack.id]), 0, "invisible to others before commit");
  await client.query("rollback");
  assert.equal(await countTasks(db, "id = $1 or name = 'send_receipt_pg'", [rolledBack.id]), 0, "the rollback left no task");
  // Its handle says so, rather than waiting for a task that will never exist (the id was drawn
  // from the sequence, which a rollback does not give back).
  const gone = await thrown(() => rolledBack.get({ timeout: 3_000 }));
  assert.notEqual(gone.name, "TimeoutError", `answered, not timed out: ${gone.message}`);
  assert.match(gone.message, /does not exist/);

  await client.query("begin");
  const committed = await receipt.applyAsync(["order-2"], { db: client });
  assert.equal(await countTasks(db, "id = $1", [committed.id]), 0, "invisible to others before commit");
  await client.query("commit");
  assert.equal(await committed.get({ timeout: 10_000 }), "sent order-2");
  assert.deepEqual(ran, ["order-2"], "only the committed task ran");
  assert.equal(await countTasks(db, "name = 'send_receipt_pg'"), 1);
  await jobs.close();
});

test("an enqueue in a Kysely transaction runs if and only if the transaction commits, with the order row", async () => {
  const jobs = openJobs(db);
  const ran: number[] = [];
  const receipt = jobs.task("send_receipt_kysely", async (_ctx, orderId: number) => {
    ran.push(orderId);
    return { receipt: orderId };
  }, { queue: "t_tx_kysely" });
  await jobs.worker({ queues: ["t_tx_kysely"], pollInterval: 100 }).start();
  await db.query("create table issue3_orders (id int primary key, item text not null)");
  const kdb = new Kysely<{ issue3_orders: { id: number; item: string } }>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: db.url, max: 2 }) }),
  });
  db.onClose(() => kdb.destroy()); // ends its pool

  let rolledBackId: string | undefined;
  const err = await thrown(() =>
    kdb.transaction().execute(async (trx) => {
      await trx.insertInto("issue3_orders").values({ id: 1, item: "book" }).execute();
      rolledBackId = (await receipt.applyAsync([1], { db: trx })).id;
      throw new Error("payment declined");
    }),
  );
  assert.equal(err.message, "payment declined");
  assert.ok(rolledBackId, "the enqueue returned an id inside the transaction");
  assert.equal(await countTasks(db, "id = $1 or name = 'send_receipt_kysely'", [rolledBackId]), 0, "the rollback left no task");
  assert.equal((await db.query("select count(*)::int as n from issue3_orders")).rows[0].n, 0);

  const committed = await kdb.transaction().execute(async (trx) => {
    await trx.insertInto("issue3_orders").values({ id: 2, item: "pen" }).execute();
    const r = await receipt.applyAsync([2], { db: trx });
    // Inside the transaction the task is visible to the transaction itself only.
    const seen = await sql<{ n: number }>`select count(*)::int as n from jobs.tasks where id = ${r.id}`.execute(trx);
    assert.equal(seen.rows[0]!.n, 1);
    assert.equal(await countTasks(db, "id = $1", [r.id]), 0, "invisible to others before commit");
    return r;
  });
  assert.deepEqual(await committed.get({ timeout: 10_000 }), { receipt: 2 });
  assert.deepEqual(ran, [2], "only the committed task ran");
  assert.equal((await db.query("select count(*)::int as n from issue3_orders")).rows[0].n, 1);
  await jobs.close();
});

/** A bad call: an InvalidInputError with a one-line message matching `pattern`. */
async function refused(fn: () => unknown, pattern: RegExp): Promise<string> {
  const err = await thrown(fn);
  assert.ok(err instanceof InvalidInputError, `an InvalidInputError, got ${err.name}: ${err.message}`);
  assert.ok(!err.message.includes("\n"), `one line: ${JSON.stringify(err.message)}`);
  assert.match(err.message, pattern);
  return err.message;
}

test("bad input gets a one-line error that names the task and the value, and writes nothing", async () => {
  const jobs = openJobs(db);
  const take = jobs.task("bad_input", async (_ctx, value: unknown) => value, { queue: "t_bad" });
  const good = jobs.task("good_input", async () => 1, { queue: "t_bad" });
  // Another Jobs instance registers a task this one does not know.
  const other = openJobs(db);
  const ghost = other.task("ghost_task", async () => 1);
  await db.query("select jobs.enqueue('before', '[]', queue => 't_bad_other')"); // the table is not empty
  const before = await countTasks(db);

  // Unknown task names: a signature of a task registered elsewhere, or a hand-made one.
  await refused(() => jobs.enqueueMany([ghost.s()]), /unknown task "ghost_task"/);
  const handMade: Signature = { kind: "signature", task: "nope", args: [], options: {}, immutable: false };
  await refused(() => jobs.enqueueMany([handMade]), /unknown task "nope".*register it with jobs\.task\("nope"/);
  // A batch with one bad member writes none of it.
  await refused(() => jobs.enqueueMany([good.s(), ghost.s(), good.s()]), /ghost_task/);

  // Values JSON cannot carry, named by their path.
  class Point {
    constructor(
      readonly x: number,
      readonly y: number,
    ) {}
  }
  const circular: Record<string, unknown> = { name: "loop" };
  circular.self = circular;
  await refused(() => take.delay(10n), /task bad_input: args\[0\] is a BigInt \(10n\)/);
  await refused(() => take.delay({ nested: { big: [1, 2n] } }), /args\[0\]\.nested\.big\[1\] is a BigInt/);
  await refused(() => take.delay({ callback: () => 1 }), /task bad_input: args\[0\]\.callback is a function/);
  await refused(() => take.delay(circular), /args\[0\]\.self is a circular reference/);
  await refused(() => take.delay([1, undefined, 3]), /args\[0\]\[1\] is undefined/);
  await refused(() => take.delay(new Point(1, 2)), /args\[0\] is an instance of Point/);
  await refused(() => take.delay(new Map([["a", 1]])), /args\[0\] is an instance of Map/);
  await refused(() => take.delay({ "odd key": NaN }), /args\[0\]\["odd key"\] is NaN/);
  await refused(() => take.delay(new Date("not a date")), /args\[0\] is an invalid Date/);
  await refused(() => take.s(Symbol("s")), /args\[0\] is a symbol/);
  await refused(() => jobs.context.run({ fn: (() => 1) as never }, () => take.delay(1)), /context values\.fn is a function/);

  // Options out of range.
  await refused(() => take.applyAsync([1], { queue: "no spaces" }), /task bad_input: invalid queue name "no spaces"/);
  await refused(() => take.applyAsync([1], { queue: "x".repeat(64) }), /invalid queue name/);
  await refused(() => take.applyAsync([1], { countdown: -5 }), /task bad_input: countdown must be 0 or more seconds, got -5/);
  await refused(() => take.applyAsync([1], { countdown: Number.NaN }), /countdown/);
  await refused(() => take.applyAsync([1], { priority: 101 }), /task bad_input: priority 101 is out of range.*-100 to 100/);
  await refused(() => take.applyAsync([1], { priority: -101 }), /priority -101 is out of range/);
  await refused(() => take.applyAsync([1], { priority: 2.5 }), /priority 2\.5 is out of range/);
  await refused(() => take.applyAsync([1], { retries: -1 }), /retries must be a whole number/);
  await refused(() => take.applyAsync([1], { timeout: "soon" as never }), /cannot read "soon" as a duration/);
  await refused(() => take.applyAsync(1 as never), /applyAsync takes its arguments as an array/);
  // ... also when they travel in signatures, next to good ones.
  await refused(() => jobs.enqueueMany([good.s(), take.signature([1], { queue: "bad queue" })]), /invalid queue name "bad queue"/);
  await refused(() => jobs.enqueueMany([good.s(), take.signature([1], { priority: 500 })]), /priority 500/);
  await refused(() => jobs.enqueueMany([take.signature([1], { countdown: -1 })]), /countdown must be 0 or more/);
  // ... and at registration.
  await refused(() => jobs.task("bad_queue_task", async () => 1, { queue: "a b" }), /task bad_queue_task: invalid queue name "a b"/);
  await refused(() => jobs.task("bad_priority_task", async () => 1, { priority: 1000 }), /priority 1000/);
  await refused(() => jobs.task("bad_input", async () => 1), /registered twice/);

  assert.equal(await countTasks(db), before, "nothing was written");
  await jobs.close();
  await other.close();
});

test("a signature passed as an argument is plain data: it arrives as its JSON, without its methods", async () => {
  const jobs = openJobs(db);
  const inner = jobs.task("sig_inner", async (_ctx, n: number) => n, { queue: "t_sig_arg" });
  const outer = jobs.task("sig_outer", async (_ctx, s: unknown) => s, { queue: "t_sig_arg" });
  const sig = inner.signature([7], { priority: 3 });
  assert.deepEqual(Object.keys(sig), ["kind", "task", "args", "options", "immutable"]);
  assert.equal(typeof sig.delay, "function");
  await jobs.worker({ queues: ["t_sig_arg"] }).start();
  const r = await outer.delay(sig as never);
  assert.deepEqual(await r.get({ timeout: 10_000 }), { kind: "signature", task: "sig_inner", args: [7], options: { priority: 3 }, immutable: false });
  await jobs.close();
});

test("context set with jobs.context.run arrives in ctx.headers and flows on to tasks the handler enqueues", async () => {
  const jobs = openJobs(db);
  const child = jobs.task("ctx_child", async (ctx: TaskContext) => ({ headers: ctx.headers }), { queue: "t_ctx" });
  const parent = jobs.task("ctx_parent", async (ctx: TaskContext) => {
    // Nested context adds to what the task received.
    const r = await jobs.context.run({ step: "child" }, () => child.delay());
    const plain = await child.delay();
    return { headers: ctx.headers, childId: r.id, plainChildId: plain.id };
  }, { queue: "t_ctx" });
  await jobs.worker({ queues: ["t_ctx"] }).start();

  const r = await jobs.context.run({ locale: "de", requestId: "req-7" }, () => parent.delay());
  const out = await r.get({ timeout: 10_000 });
  assert.deepEqual(out.headers, { locale: "de", requestId: "req-7" });
  assert.deepEqual(await jobs.result<{ headers: unknown }>(out.childId).get({ timeout: 10_000 }), {
    headers: { locale: "de", requestId: "req-7", step: "child" },
  });
  assert.deepEqual(await jobs.result<{ headers: unknown }>(out.plainChildId).get({ timeout: 10_000 }), {
    headers: { locale: "de", requestId: "req-7" },
  });

  const { rows } = await db.query("select id, name, parent_id, headers from jobs.tasks where id = any($1::bigint[]) order by id", [[r.id, out.childId, out.plainChildId]]);
  assert.deepEqual(rows, [
    { id: r.id, name: "ctx_parent", parent_id: null, headers: { locale: "de", requestId: "req-7" } },
    { id: out.childId, name: "ctx_child", parent_id: r.id, headers: { locale: "de", requestId: "req-7", step: "child" } },
    { id: out.plainChildId, name: "ctx_child", parent_id: r.id, headers: { locale: "de", requestId: "req-7" } },
  ]);

  // Outside any context nothing leaks in: no headers, no parent.
  const outside = await child.delay();
  assert.deepEqual(await outside.get({ timeout: 10_000 }), { headers: {} });
  const row = await taskRow(db, outside.id);
  assert.equal(row.parent_id, null);
  assert.deepEqual(row.headers, {});
  await jobs.close();
});

test("Dates in arguments arrive as ISO strings", async () => {
  const jobs = openJobs(db);
  const when = new Date("2026-11-27T09:00:00.000Z");
  const seen = jobs.task("dates", async (_ctx, at: Date, opts: { until: Date; list: Date[] }) => ({
    types: [typeof at, typeof opts.until, typeof opts.list[0]],
    values: [at, opts.until, opts.list[0]],
  }), { queue: "t_dates" });
  await jobs.worker({ queues: ["t_dates"] }).start();
  const r = await seen.delay(when, { until: when, list: [when] });
  assert.deepEqual(await r.get({ timeout: 10_000 }), {
    types: ["string", "string", "string"],
    values: ["2026-11-27T09:00:00.000Z", "2026-11-27T09:00:00.000Z", "2026-11-27T09:00:00.000Z"],
  });
  assert.deepEqual((await taskRow(db, r.id)).args, ["2026-11-27T09:00:00.000Z", { until: "2026-11-27T09:00:00.000Z", list: ["2026-11-27T09:00:00.000Z"] }]);
  await jobs.close();
});

test("higher priority runs first; equal priorities run in enqueue order", async () => {
  const jobs = openJobs(db);
  const order: string[] = [];
  const step = jobs.task("prioritised", async (_ctx, label: string) => {
    order.push(label);
  }, { queue: "t_prio" });
  // Enqueued before any worker serves the queue, so the claim sees them all.
  const results = await jobs.enqueueMany([
    step.signature(["p0"], {}),
    step.signature(["p5-first"], { priority: 5 }),
    step.signature(["p-5"], { priority: -5 }),
    step.signature(["p100"], { priority: 100 }),
    step.signature(["p5-second"], { priority: 5 }),
    step.signature(["p-100"], { priority: -100 }),
  ]);
  const late = await step.applyAsync(["p50-late"], { priority: 50 });
  const { rows } = await db.query("select priority from jobs.tasks where id = any($1::bigint[]) order by id", [[...results.map((r) => r.id), late.id]]);
  assert.deepEqual(rows.map((r) => r.priority), [0, 5, -5, 100, 5, -100, 50]);
  // One at a time, so the run order is the claim order.
  await jobs.worker({ queues: ["t_prio"], concurrency: 1 }).start();
  for (const r of [...results, late]) await r.get({ timeout: 10_000 });
  assert.deepEqual(order, ["p100", "p50-late", "p5-first", "p5-second", "p0", "p-5", "p-100"]);
  await jobs.close();
});

test("a countdown is counted on the database's clock, whatever the client's says", async () => {
  const jobs = openJobs(db);
  const task = jobs.task("skewed_clock", async () => null, { queue: "t_skew" });
  // This host's clock an hour behind: a run_at made here would be in the past, and run at once.
  const realNow = Date.now;
  Date.now = () => realNow() - 3_600_000;
  let r;
  try {
    r = await task.applyAsync([], { countdown: 30 });
  } finally {
    Date.now = realNow;
  }
  const { rows } = await db.query<{ state: string; ahead_ms: number }>(
    "select state::text, (extract(epoch from run_at - created_at) * 1000)::int as ahead_ms from jobs.tasks where id = $1",
    [r.id],
  );
  assert.deepEqual(rows[0], { state: "pending", ahead_ms: 30_000 });
  // An eta is the caller's own absolute time, taken as given.
  const eta = new Date(realNow() + 3_600_000);
  const e = await task.applyAsync([], { eta });
  assert.equal((await taskRow(db, e.id)).run_at.getTime(), eta.getTime());
  await jobs.close();
});

test("a countdown (seconds) holds the task pending until its run_at; a task due now runs first", async () => {
  const jobs = openJobs(db);
  const ranAt = new Map<string, number>();
  const step = jobs.task("counted_down", async (_ctx, label: string) => {
    ranAt.set(label, Date.now());
  }, { queue: "t_countdown" });
  await jobs.worker({ queues: ["t_countdown"], concurrency: 1, pollInterval: 100 }).start();
  const enqueuedAt = Date.now();
  const later = await step.applyAsync(["later"], { countdown: 2 });
  const soon = await step.applyAsync(["soon"], { countdown: 0 });
  const row = await taskRow(db, later.id);
  assert.equal(row.state, "pending", "waiting for run_at");
  // The database adds the countdown to its own now(), the same now() as created_at.
  assert.equal(row.run_at.getTime() - row.created_at.getTime(), 2_000, "run_at is created_at + 2 s");

  await soon.get({ timeout: 10_000 });
  await later.get({ timeout: 10_000 });
  assert.ok(ranAt.get("soon")! < ranAt.get("later")!, "the task due now ran first");
  const done = await taskRow(db, later.id);
  assert.ok(done.started_at.getTime() >= done.run_at.getTime(), `started ${done.started_at.toISOString()} at or after run_at ${done.run_at.toISOString()}`);
  assert.ok(ranAt.get("later")! >= row.run_at.getTime(), "the handler ran at or after run_at");
  assert.ok(ranAt.get("later")! - enqueuedAt >= 2_000, "two seconds later, not before");
  await jobs.close();
});

test("a countdown task enqueued while a worker runs starts at its run_at, not at the worker's next poll", async (t) => {
  // The fallback poll is 60 s: only a notification or a timer armed for the run_at can start the
  // task within the get's 15 s. A database of its own, so no other test's worker (whose poll
  // stages due tasks of every queue) can do it instead.
  const own = await db.createDatabase({ migrated: true });
  const jobs = createJobs({ connectionString: own.url, logLevel: "silent" });
  db.onClose(() => jobs.close());
  const step = jobs.task("wake_at_run_at", async () => Date.now(), { queue: "t_countdown_wake" });
  const worker = jobs.worker({ queues: ["t_countdown_wake"], pollInterval: 60_000 });
  const idle = nextEvent(worker, "idle");
  await worker.start();
  // The worker looks for due tasks once as it starts (in the background). Let that look and a whole
  // task round trip pass first, so the countdown task below is enqueued into a running worker.
  await idle;
  await (await step.delay()).get({ timeout: 10_000 });
  const r = await step.applyAsync([], { countdown: 1 });
  const ranAt = await r.get({ timeout: 15_000 });
  const row = (await jobs.pool.query("select run_at from jobs.tasks where id = $1", [r.id])).rows[0];
  assert.ok(ranAt >= row.run_at.getTime(), "not before run_at");
  t.diagnostic(`countdown 1 s: started ${ranAt - row.run_at.getTime()} ms after run_at`);
  await jobs.close();
});

test("the enqueued event fires with the id, name and queue", async () => {
  const jobs = openJobs(db);
  const step = jobs.task("announced", async () => 1, { queue: "t_announce" });
  const seen: unknown[] = [];
  jobs.on("enqueued", (e) => seen.push(e));
  const a = await step.delay();
  const b = await step.applyAsync([], { queue: "t_announce_other" });
  const [c] = await jobs.enqueueMany([step.s()]);
  assert.deepEqual(seen, [
    { id: a.id, name: "announced", queue: "t_announce" },
    { id: b.id, name: "announced", queue: "t_announce_other" },
    { id: c!.id, name: "announced", queue: "t_announce" },
  ]);
  const next = nextEvent<{ id: string }>(jobs, "enqueued");
  const d = await step.delay();
  assert.equal((await next).id, d.id);
  await waitFor("rows for all four", async () => (await countTasks(db, "name = 'announced'")) === 4);
  await jobs.close();
});
