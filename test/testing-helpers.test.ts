/**
 * Issue 10, pgjobs/testing: the documented example test of a small user app passes, and its
 * checks fail against a broken task, a task never enqueued, and a task enqueued in a transaction
 * that rolled back; then each helper on its own: assertions on what was enqueued (committed, open
 * or rolled-back transactions), drain(), eager mode, and a fresh schema per test.
 */
import assert, { AssertionError } from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { chain, chord, TaskFailedError, type Jobs, type TaskContext } from "../src/index.js";
import { assertEnqueued, createTestJobs, createTestSchema, drain, DrainTimeoutError, eager, enqueued, refuteEnqueued, resetJobs } from "../src/testing/index.js";
import { checks, OutboxMailer } from "../examples/user-app/shop.checks.js";
import { createShop, type Mailer, type Shop } from "../examples/user-app/shop.js";
import { useDatabase } from "./helpers/db.js";
import { REPO_ROOT } from "./helpers/paths.js";
import { thrown } from "./fixtures/issue3-util.js";
import { enqueuesInRolledBackTransaction, neverEnqueues, RefusingMailer } from "./fixtures/issue10-shops.js";

const db = useDatabase();

/** A shop on a fresh schema of this file's database, as the example test builds it. */
async function withShop<M extends Mailer>(mailer: M, fn: (shop: Shop, mailer: M) => Promise<void>, variant: (s: Shop) => Shop = (s) => s): Promise<void> {
  const ts = await createTestSchema({ connectionString: db.url });
  const shop = createShop({ connectionString: db.url, jobsSchema: ts.schema, shopSchema: ts.schema, mailer, logLevel: "silent" });
  try {
    await shop.setup();
    await fn(variant(shop), mailer);
  } finally {
    await shop.close();
    await ts.drop();
  }
}

/** A Jobs on a fresh schema, closed and dropped at the end of the file. */
async function freshJobs(): Promise<Jobs> {
  const { jobs, cleanup } = await createTestJobs({ connectionString: db.url, logLevel: "silent" });
  db.onClose(cleanup);
  return jobs;
}

test("the example shop's test passes, run as its README says", async (t) => {
  const t0 = performance.now();
  const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--test", "dist/examples/user-app/shop.test.js"], {
      cwd: REPO_ROOT,
      env: { ...process.env, DATABASE_URL: db.url, NODE_TEST_CONTEXT: undefined },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
  t.diagnostic(`node --test dist/examples/user-app/shop.test.js: ${Math.round(performance.now() - t0)} ms`);
  assert.equal(code, 0, out);
  // node --test's summary: "# pass 4" from the TAP reporter (Node 20's default off a terminal),
  // "ℹ pass 4" from the spec reporter (Node 22 and later).
  assert.match(out, /^(#|ℹ) pass 4$/m);
  assert.match(out, /^(#|ℹ) fail 0$/m);
});

test("the example checks pass in this process against the shop as written", async () => {
  for (const [name, check] of Object.entries(checks)) {
    await withShop(new OutboxMailer(), check).catch((err: Error) => {
      throw new Error(`${name}: ${err.message}`);
    });
  }
});

test("the example checks fail when the shop's task is broken", async () => {
  await withShop(new RefusingMailer(), async (shop, mailer) => {
    const err = await thrown(() => checks.receiptIsSent(shop, mailer as unknown as OutboxMailer));
    assert.ok(err instanceof AssertionError, `an assertion fails, not the harness: ${err.stack}`);
    assert.match(err.message, /no task failed; ran: .*"send_receipt","retried","550 mailbox unavailable".*"send_receipt","failed","550 mailbox unavailable"/);
    assert.equal(mailer.attempts, 4, "drain ran every attempt, without waiting for the backoff");
  });
  // The enqueue itself is not broken: that check still passes.
  await withShop(new RefusingMailer(), checks.receiptIsEnqueued as (s: Shop) => Promise<void>);
});

test("the example checks fail when the expected task was never enqueued", async () => {
  await withShop(new OutboxMailer(), async (shop, mailer) => {
    const err = await thrown(() => checks.receiptIsEnqueued(shop));
    assert.ok(err instanceof AssertionError);
    assert.match(err.message, /^expected 1 task send_receipt with args \[1\] in queue email to be enqueued \(committed\), found 0\. Enqueued: nothing/);
    const err2 = await thrown(() => checks.receiptIsSent(shop, mailer));
    assert.ok(err2 instanceof AssertionError);
  }, neverEnqueues);
});

test("the example checks fail when the task was enqueued in a transaction that rolled back", async () => {
  await withShop(new OutboxMailer(), async (shop) => {
    const err = await thrown(() => checks.receiptIsEnqueued(shop));
    assert.ok(err instanceof AssertionError);
    assert.match(err.message, /found 0\. Enqueued: nothing \(a task enqueued in a transaction exists once that transaction commits: did it roll back, or is it not committed yet\?/);
  }, enqueuesInRolledBackTransaction);
});

test("assertions read the database: committed, still open (seen through its own connection), rolled back", async () => {
  const jobs = await freshJobs();
  const mail = jobs.task("h_mail", (_ctx: TaskContext, to: string) => to, { queue: "h_mail" });

  const open = await db.connect();
  await open.query("begin");
  await mail.applyAsync(["open@example.com"], { db: open });
  await assertEnqueued(jobs, { task: mail, args: ["open@example.com"], db: open });
  const notYet = await thrown(() => assertEnqueued(jobs, { task: mail, args: ["open@example.com"] }));
  assert.match(notYet.message, /found 0.*not committed yet\? Pass \{ db \} to look inside an open transaction/);
  await open.query("commit");
  const [row] = await assertEnqueued(jobs, { task: mail, args: ["open@example.com"], queue: "h_mail", state: "ready", count: 1 });
  assert.equal(row!.name, "h_mail");

  await open.query("begin");
  await mail.applyAsync(["gone@example.com"], { db: open });
  await open.query("rollback");
  await refuteEnqueued(jobs, { task: mail, args: ["gone@example.com"] });
  await assert.rejects(assertEnqueued(jobs, { task: mail, args: ["gone@example.com"] }), AssertionError);

  // Arguments compare as JSON (key order does not matter); a predicate can look deeper.
  await mail.delay({ b: 2, a: 1 } as unknown as string);
  await assertEnqueued(jobs, { task: "h_mail", args: [{ a: 1, b: 2 }] });
  await assertEnqueued(jobs, { task: mail, args: (args) => typeof args[0] === "string" && args[0].endsWith("@example.com"), count: 1 });
  // A wrong count lists what there is.
  const err = await thrown(() => assertEnqueued(jobs, { task: mail, count: 3 }));
  assert.match(err.message, /^expected 3 tasks h_mail to be enqueued \(committed\), found 2\. Enqueued: h_mail \["open@example.com"\] \(queue h_mail, ready, id \d+\); h_mail \[\{"a":1,"b":2\}\]/);
  const refuted = await thrown(() => refuteEnqueued(jobs, { queue: "h_mail" }));
  assert.match(refuted.message, /^expected no task in queue h_mail to be enqueued, found 2: /);
  await resetJobs(jobs);
  assert.deepEqual(await enqueued(jobs), []);
});

test("a fresh schema per test: separate tasks, dropped afterwards", async (t) => {
  const t0 = performance.now();
  const a = await createTestSchema({ connectionString: db.url });
  const ms = performance.now() - t0;
  const b = await createTestSchema({ connectionString: db.url, prefix: "shop_test" });
  t.diagnostic(`creating and migrating a test schema: ${Math.round(ms)} ms`);
  assert.match(a.schema, /^pgjobs_test_[0-9a-f]{10}$/);
  assert.match(b.schema, /^shop_test_[0-9a-f]{10}$/);
  await db.query(`select ${a.schema}.enqueue('x', '[1]')`);
  const count = async (s: string) => (await db.query(`select count(*)::int as n from ${s}.tasks`)).rows[0].n;
  assert.equal(await count(a.schema), 1);
  assert.equal(await count(b.schema), 0);
  await a.drop();
  await a.drop(); // idempotent
  await b.drop();
  const { rows } = await db.query("select nspname from pg_namespace where nspname = any($1)", [[a.schema, b.schema]]);
  assert.deepEqual(rows, []);
});

test("drain() runs what is ready, what that leads to (chain steps in other queues, chord callbacks, subtasks, retries), and returns it", async () => {
  const jobs = await freshJobs();
  const seen: string[] = [];
  const up = jobs.task("d_up", (_ctx: TaskContext, s: string) => (seen.push(`up ${s}`), s.toUpperCase()), { queue: "d_a" });
  const exclaim = jobs.task("d_exclaim", (_ctx: TaskContext, s: string) => (seen.push(`exclaim ${s}`), `${s}!`), { queue: "d_b" });
  const sum = jobs.task("d_sum", (_ctx: TaskContext, xs: number[]) => xs.reduce((a, b) => a + b, 0), { queue: "d_a" });
  const double = jobs.task("d_double", (_ctx: TaskContext, x: number) => x * 2, { queue: "d_a" });
  const parent = jobs.task("d_parent", async (_ctx: TaskContext) => {
    await double.delay(21);
  }, { queue: "d_a" });
  const flaky = jobs.task("d_flaky", (ctx: TaskContext) => {
    if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} fails`);
    return ctx.attempt;
  }, { queue: "d_a", backoff: { delay: 60_000 } });

  const c = await chain(up.s("hi"), exclaim.s()).applyAsync();
  const d = await chord([double.s(1), double.s(2)], sum.s()).applyAsync();
  await parent.delay();
  const f = await flaky.delay();
  const result = await drain(jobs);
  assert.equal(await c.get({ timeout: 1_000 }), "HI!");
  assert.equal(await d.get({ timeout: 1_000 }), 6);
  assert.equal(await f.get({ timeout: 1_000 }), 3, "the retries ran without waiting a minute for the backoff");
  assert.deepEqual(seen, ["up hi", "exclaim HI"]);
  const byName = (n: string) => result.ran.filter((r) => r.name === n);
  assert.deepEqual(byName("d_exclaim").map((r) => [r.queue, r.args, r.outcome, r.result]), [["d_b", ["HI"], "succeeded", "HI!"]]);
  assert.deepEqual(byName("d_double").map((r) => r.args).sort(), [[1], [2], [21]], "chord members and the subtask");
  assert.deepEqual(byName("d_sum").map((r) => [r.args, r.result]), [[[[2, 4]], 6]]);
  assert.deepEqual(byName("d_flaky").map((r) => [r.attempt, r.outcome]), [[1, "retried"], [2, "retried"], [3, "succeeded"]]);
  assert.equal(byName("d_flaky")[0]!.error!.message, "attempt 1 fails");
  assert.deepEqual([result.succeeded, result.failed, result.retried], [8, 0, 2]);
  assert.deepEqual(await enqueued(jobs, { state: ["ready", "running", "retrying", "pending"] }), [], "nothing left");
  // Draining again runs nothing.
  assert.deepEqual((await drain(jobs)).ran, []);
});

test("drain() options: queues, countdowns, retries left waiting, order, and a timeout for runaway work", async () => {
  const jobs = await freshJobs();
  const order: number[] = [];
  const note = jobs.task("o_note", (_ctx: TaskContext, n: number) => void order.push(n), { queue: "o_main" });
  const other = jobs.task("o_other", () => "other", { queue: "o_other" });
  const failing = jobs.task("o_failing", () => {
    throw new Error("nope");
  }, { queue: "o_main", retries: 2, backoff: { delay: 60_000 } });
  await note.applyAsync([1], { priority: 0 });
  await note.applyAsync([2], { priority: 10 });
  await note.applyAsync([3], { countdown: 3600 });
  await other.delay();
  await failing.delay();

  const first = await drain(jobs, { queues: ["o_main"], retries: false });
  assert.deepEqual(order, [2, 1], "priority first, one at a time; the countdown waits");
  assert.deepEqual(first.ran.filter((r) => r.name === "o_failing").map((r) => r.outcome), ["retried"], "with retries: false the retry waits for its backoff");
  await assertEnqueued(jobs, { task: other, state: "ready" });
  await assertEnqueued(jobs, { task: failing, state: "retrying" });

  const second = await drain(jobs, { scheduled: true });
  assert.deepEqual(order, [2, 1, 3], "scheduled: true runs the countdown now");
  assert.deepEqual(second.ran.filter((r) => r.name === "o_failing").map((r) => r.outcome), ["retried", "failed"]);
  await assertEnqueued(jobs, { task: other, state: "succeeded" });

  // A task that enqueues itself forever.
  const forever = jobs.task("o_forever", async (_ctx: TaskContext, n: number): Promise<void> => {
    await forever.delay(n + 1);
  }, { queue: "o_forever" });
  await forever.delay(0);
  const err = await thrown(() => drain(jobs, { queues: ["o_forever"], timeout: "300ms" }));
  assert.ok(err instanceof DrainTimeoutError, err.message);
  assert.match(err.message, /^drain did not finish within 300 ms \(queues o_forever; \d+ attempts ran\)/);
  assert.ok((err as DrainTimeoutError).ran.length > 0);
  await resetJobs(jobs);
});

test("drain() sees only committed tasks: one in an open transaction runs after the commit", async () => {
  const jobs = await freshJobs();
  const ran: string[] = [];
  const t1 = jobs.task("x_tx", (_ctx: TaskContext, s: string) => void ran.push(s), { queue: "x_tx" });
  const client = await db.connect();
  await client.query("begin");
  await t1.applyAsync(["in the transaction"], { db: client });
  assert.deepEqual((await drain(jobs, { queues: ["x_tx"] })).ran, []);
  await client.query("commit");
  assert.deepEqual((await drain(jobs, { queues: ["x_tx"] })).ran.map((r) => r.args), [["in the transaction"]]);
  assert.deepEqual(ran, ["in the transaction"]);
});

test("eager mode runs an enqueue's task, and what it leads to, before the enqueue returns, and nothing else", async () => {
  const jobs = await freshJobs();
  const log: string[] = [];
  const add = jobs.task("e_add", (ctx: TaskContext, a: number, b: number) => (log.push(`add ${a} ${b} ${JSON.stringify(ctx.headers)}`), a + b), { queue: "e" });
  const sum = jobs.task("e_sum", (_ctx: TaskContext, xs: number[]) => xs.reduce((x, y) => x + y, 0), { queue: "e" });
  const later = jobs.task("e_later", () => (log.push("later"), "later"), { queue: "e" });
  const outer = jobs.task("e_outer", async (_ctx: TaskContext, x: number) => {
    const r = await add.delay(x, 1);
    // The subtask already ran: its result is there.
    return (await r.get({ timeout: 1_000 })) * 10;
  }, { queue: "e" });
  const flaky = jobs.task("e_flaky", (ctx: TaskContext) => {
    if (ctx.attempt < 2) throw new Error("first attempt fails");
    return ctx.attempt;
  }, { queue: "e", backoff: { delay: 60_000 } });

  await add.delay(100, 100); // enqueued before eager mode: eager leaves it alone
  const eagerly = eager(jobs);
  try {
    const r = await jobs.context.run({ locale: "de" }, () => add.delay(2, 2));
    assert.deepEqual(log, ['add 2 2 {"locale":"de"}'], "ran inside delay(), with its headers, and only it");
    assert.equal(await r.get({ timeout: 1_000 }), 4);

    assert.equal(await (await outer.delay(4)).get({ timeout: 1_000 }), 50, "a subtask ran inline inside its parent");
    assert.equal(await (await flaky.delay()).get({ timeout: 1_000 }), 2, "the retry ran at once");
    assert.equal(await (await later.applyAsync([], { countdown: 3600 })).get({ timeout: 1_000 }), "later", "a countdown is not waited for");
    const c = await chord([add.s(1, 1), add.s(2, 2)], sum.s()).applyAsync();
    assert.equal(await c.get({ timeout: 1_000 }), 6, "a chord's callback ran before applyAsync() returned");
    const ch = await chain(add.s(1, 2), add.s(3)).applyAsync();
    assert.equal(await ch.get({ timeout: 1_000 }), 6);

    // In a transaction: not run at enqueue (not committed, maybe never); a drain after the commit runs it.
    const client = await db.connect();
    await client.query("begin");
    const tx = await add.applyAsync([7, 7], { db: client });
    await client.query("commit");
    assert.equal((await enqueued(jobs, { args: [7, 7] }))[0]!.state, "ready");
    assert.equal(eagerly.runs.every((run) => run.failed === 0), true);
    await drain(jobs, { queues: ["e"] });
    assert.equal(await tx.get({ timeout: 1_000 }), 14);
    assert.deepEqual((await enqueued(jobs, { args: [100, 100] }))[0]!.state, "succeeded", "the pre-existing task ran in the drain, not before");
  } finally {
    eagerly.stop();
  }
  const normal = await add.delay(5, 5);
  assert.equal((await enqueued(jobs, { args: [5, 5] }))[0]!.state, "ready", "after stop() an enqueue is an enqueue");
  await jobs.cancel([normal.id]);
});

test("eager mode with propagate: the enqueue rejects with the task's failure, after all its attempts", async () => {
  const jobs = await freshJobs();
  let attempts = 0;
  const boom = jobs.task("p_boom", () => {
    attempts++;
    throw Object.assign(new Error("card declined"), { name: "PaymentError" });
  }, { queue: "p", retries: 2, backoff: { delay: 60_000 } });
  const eagerly = eager(jobs, { propagate: true });
  const err = await thrown(() => boom.delay());
  eagerly.stop();
  assert.ok(err instanceof TaskFailedError, err.message);
  assert.match(err.message, /^task p_boom \(id \d+\) failed: PaymentError: card declined$/);
  assert.equal(attempts, 3);
  assert.deepEqual(eagerly.runs.map((r) => [r.retried, r.failed]), [[2, 1]]);
});
