/**
 * Issue 7, hand-off (migration 000016): an idle worker offers its free slots, and an enqueue made
 * outside any transaction hands its task straight to it, already claimed, so the handler starts
 * without a claim round trip. What must hold: the task is claimed by the enqueue's own commit;
 * a worker never runs more than `concurrency` tasks when hand-offs and claims race; a hand-off
 * whose notification is lost is still run once; a stopping worker withdraws its offer; and the
 * enqueue falls back to the ready path whenever a hand-off is not possible.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import { createMetrics, type TaskContext, type Worker } from "../src/index.js";
import { parseProm, total } from "./fixtures/issue10-prom.js";
import { useDatabase } from "./helpers/db.js";
import { gate, openJobs, taskRow, waitFor } from "./fixtures/issue3-util.js";

const db = useDatabase();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface OfferRow {
  worker_id: string;
  free: number;
  taken: number;
  queues: string[];
}

async function offerOf(worker: Worker): Promise<OfferRow | undefined> {
  const { rows } = await db.query<OfferRow>("select worker_id, free, taken, queues from jobs.worker_offers where worker_id = $1", [worker.id]);
  return rows[0];
}

/** Wait until the worker offers its slot (it does once it is idle and its queues came back empty). */
function offering(worker: Worker): Promise<OfferRow> {
  return waitFor(`worker ${worker.id} to offer a slot`, async () => {
    const o = await offerOf(worker);
    return o && o.free === 1 ? o : undefined;
  });
}

/** jobs.enqueue_handoff(<args>) on its own (autocommit), returning the id. */
async function handoff(args: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(`select jobs.enqueue_handoff(${args})::text as id`);
  return rows[0]!.id;
}

function captureLogger(lines: Array<Record<string, unknown>>) {
  return pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
}

test("an idle worker gets a task enqueued outside a transaction from the enqueue itself, claimed in the enqueue's own commit", async () => {
  const jobs = openJobs(db);
  const started = gate<string>();
  const release = gate();
  const job = jobs.task("handoff_hold", async (ctx: TaskContext, x: number) => {
    started.open(ctx.id);
    await release.promise;
    return x + 1;
  }, { queue: "h_basic" });
  const metrics = createMetrics(jobs, { queueStatsTtl: 0 });
  db.onClose(() => metrics.close());
  const events: Array<{ id: string; adopted: boolean }> = [];
  const worker = await jobs.worker({ queues: ["h_basic"], concurrency: 3, pollInterval: "100ms" }).start();
  worker.on("handedOff", (e) => events.push({ id: e.id, adopted: e.adopted }));
  const offer = await offering(worker);
  assert.deepEqual(offer.queues, ["h_basic"]);
  // Polls that find nothing leave the offer standing (no retract and offer again each time).
  const { rows: [before] } = await db.query("select gen from jobs.worker_offers where worker_id = $1", [worker.id]);
  await sleep(500);
  const { rows: [after] } = await db.query("select gen from jobs.worker_offers where worker_id = $1", [worker.id]);
  assert.equal(after?.gen, before?.gen, "the same offer after five idle polls");

  // Through SQL, to see the transaction: the row that delay() would insert is 'running' under
  // the worker's id in the very transaction that inserted it (its xmin), never 'ready'.
  const { rows: [enq] } = await db.query<{ id: string; xid: string }>(
    "select jobs.enqueue_handoff('handoff_hold', '[41]', 'h_basic')::text as id, pg_current_xact_id()::text as xid",
  );
  assert.equal(await started.promise, enq!.id);
  const { rows: [row] } = await db.query("select state, worker_id, attempts, xmin::text as xmin, lease_until > now() as leased from jobs.tasks where id = $1", [enq!.id]);
  assert.deepEqual(row, { state: "running", worker_id: worker.id, attempts: 1, xmin: enq!.xid, leased: true }, "claimed by the inserting transaction itself");
  assert.deepEqual(await offerOf(worker).then((o) => o && [o.free, o.taken]), [0, 1], "its one slot taken");
  release.open();
  const result = await jobs.result(enq!.id).get({ timeout: 10_000 });
  assert.equal(result, 42);

  // The TypeScript client takes the same path: the idle worker offers a slot again, and delay()
  // hands the next task over (running as soon as the notification lands).
  await offering(worker);
  const r = await job.delay(1);
  assert.equal(await r.get({ timeout: 10_000 }), 2);
  const done = await taskRow(db, r.id);
  assert.equal(done.worker_id, worker.id);
  assert.equal(done.attempts, 1);
  // A task enqueued in a caller's transaction takes the ready path (no hand-off there).
  await offering(worker);
  const client = await db.connect();
  await client.query("begin");
  const inTx = await job.applyAsync([5], { db: client });
  const { rows: [inTxRow] } = await client.query("select state from jobs.tasks where id = $1", [inTx.id]);
  await client.query("commit");
  await client.end();
  assert.equal(inTxRow.state, "ready");
  assert.equal(await inTx.get({ timeout: 10_000 }), 6);
  // Two hand-offs, each an event and a count; the transaction's task was claimed.
  assert.deepEqual(events, [{ id: enq!.id, adopted: false }, { id: r.id, adopted: false }]);
  assert.equal(total(parseProm(await metrics.metrics()), "pgjobs_tasks_handed_off_total", { queue: "h_basic" }), 2);
  await jobs.close();
});

test("hooks see when a task was due and when its attempt was claimed, from a claim and from a hand-off", async () => {
  const jobs = openJobs(db);
  const seen = new Map<string, { runAt: Date; claimedAt: Date }>();
  jobs.addHook({
    aroundAttempt: async (info, _headers, run) => {
      seen.set(info.id, { runAt: info.runAt, claimedAt: info.claimedAt });
      return run();
    },
  });
  const job = jobs.task("handoff_times", async () => null, { queue: "h_times" });
  const times = async (id: string) =>
    (await db.query<{ run_at: Date; started_at: Date }>("select run_at, started_at from jobs.tasks where id = $1", [id])).rows[0]!;
  // Claimed: due five seconds ago (an eta in the past), before any worker runs.
  const due = new Date(Date.now() - 5_000);
  const claimed = await job.applyAsync([], { eta: due });
  const worker = await jobs.worker({ queues: ["h_times"], concurrency: 1, pollInterval: "100ms" }).start();
  const handedOff: string[] = [];
  worker.on("handedOff", (e) => handedOff.push(e.id));
  await claimed.get({ timeout: 10_000 });
  // Handed off: enqueued while the idle worker offers its slot.
  await offering(worker);
  const handed = await job.delay();
  await handed.get({ timeout: 10_000 });
  assert.deepEqual(handedOff, [handed.id], "the second task came by hand-off");
  for (const r of [claimed, handed]) {
    const db_ = await times(r.id);
    assert.deepEqual(
      { runAt: seen.get(r.id)?.runAt.getTime(), claimedAt: seen.get(r.id)?.claimedAt.getTime() },
      { runAt: db_.run_at.getTime(), claimedAt: db_.started_at.getTime() },
      `task ${r.id}: the hook's times are the row's`,
    );
  }
  assert.equal(seen.get(claimed.id)!.runAt.getTime(), due.getTime());
  await jobs.close();
});

test("hand-offs racing with claims never run more than `concurrency` tasks at once, and every task runs once", async () => {
  const producer = openJobs(db);
  const jobs = openJobs(db);
  let running = 0;
  let most = 0;
  const runs = new Map<number, number>();
  const handler = async (_ctx: TaskContext, i: number) => {
    running++;
    most = Math.max(most, running);
    runs.set(i, (runs.get(i) ?? 0) + 1);
    await sleep(i % 3 === 0 ? 15 : 2);
    running--;
    return null;
  };
  jobs.task("handoff_race", handler, { queue: "h_race" });
  const job = producer.task("handoff_race", handler, { queue: "h_race" });
  const worker = await jobs.worker({ queues: ["h_race"], concurrency: 2, pollInterval: "200ms" }).start();
  // Count the hand-offs on the worker's own channel, to know the race was run.
  const listener = await db.connect();
  let handedOff = 0;
  listener.on("notification", () => handedOff++);
  await listener.query(`listen "jobs.handoff.${worker.id.replace(/-/g, "").slice(0, 12)}"`);
  let n = 0;
  for (let round = 0; round < 30; round++) {
    await offering(worker);
    // delay() calls one after another (each its own statement: hand-offs while slots are
    // offered) and, among them, a batch (the ready path: the worker takes its offer back to
    // claim it, while the next delay() calls look for an offer).
    const singles = (async () => {
      for (let k = 0; k < 10; k++) {
        await job.delay(n++);
        await sleep(k % 4);
      }
    })();
    await sleep(3);
    await Promise.all([singles, producer.enqueueMany(Array.from({ length: 10 }, () => job.s(n++)))]);
    await waitFor(`round ${round} to finish`, () => runs.size === n && running === 0, 20_000);
  }
  assert.equal(n, 600);
  assert.deepEqual([...runs.values()].filter((c) => c !== 1), [], "every task ran exactly once");
  assert.ok(most <= 2, `at most 2 at once, saw ${most}`);
  assert.ok(handedOff >= 30 && handedOff <= 300, `some delay() calls were handed off, no batch: ${handedOff} of 600`);
  await listener.end();
  // Acknowledgements land after the handlers return.
  const states = await waitFor("every acknowledgement to land", async () => {
    const { rows: [r] } = await db.query("select count(*) filter (where state = 'succeeded')::int as ok, count(*) filter (where attempts <> 1)::int as reattempted from jobs.tasks where queue = 'h_race'");
    return r.ok === 600 ? r : undefined;
  });
  assert.deepEqual(states, { ok: 600, reattempted: 0 });
  await jobs.close();
  await producer.close();
});

test("a worker with a task running offers no slot (a blocked event loop holds up only its own task): the next task goes to an idle worker", async () => {
  const jobs = openJobs(db);
  const begun = gate();
  const release = gate();
  const ranOn: string[] = [];
  jobs.task("handoff_busy", async (ctx: TaskContext, hold: boolean) => {
    ranOn.push(ctx.id);
    if (hold) {
      begun.open();
      await release.promise;
    }
    return null;
  }, { queue: "h_busy" });
  const busy = await jobs.worker({ queues: ["h_busy"], concurrency: 4 }).start();
  await offering(busy);
  const held = await handoff("'handoff_busy', '[true]', 'h_busy'");
  await begun.promise;
  const idle = await jobs.worker({ queues: ["h_busy"], concurrency: 4 }).start();
  await offering(idle);
  await sleep(200);
  assert.equal((await offerOf(busy))?.free ?? 0, 0, "three free slots, none offered while a task runs");
  const next = await handoff("'handoff_busy', '[false]', 'h_busy'");
  assert.equal((await taskRow(db, next)).worker_id, idle.id, "handed to the idle worker");
  await waitFor("the second task to run", () => ranOn.includes(next));
  assert.equal((await taskRow(db, held)).worker_id, busy.id);
  release.open();
  await jobs.close();
});

test("a hand-off whose notification was lost with the LISTEN connection runs once after the worker reconnects", async () => {
  const lines: Array<Record<string, unknown>> = [];
  const jobs = openJobs(db, { logger: captureLogger(lines) });
  const ran: string[] = [];
  jobs.task("handoff_lost", async (ctx: TaskContext) => {
    ran.push(ctx.id);
    return "ok";
  }, { queue: "h_lost" });
  const worker = await jobs.worker({ queues: ["h_lost"], concurrency: 2 }).start();
  const adopted: string[] = [];
  worker.on("handedOff", (e) => e.adopted && adopted.push(e.id));
  await offering(worker);
  // In one transaction: hand a task to the worker, then end its LISTEN connection before the
  // commit delivers the notification. The reconnected listener was not listening then.
  const { rows } = await db.query<{ id: string }>(
    `select jobs.enqueue_handoff('handoff_lost', '[]', 'h_lost')::text as id,
            (select count(pg_terminate_backend(pid)) from pg_stat_activity
              where datname = current_database() and query ilike 'listen %handoff%') as killed`,
  );
  const id = rows[0]!.id;
  assert.equal((await taskRow(db, id)).worker_id, worker.id, "handed to the worker");
  await waitFor("the lost hand-off to run", () => ran.length > 0, 15_000);
  const row = await waitFor("the task to succeed", async () => {
    const r = await taskRow(db, id);
    return r.state === "succeeded" ? r : undefined;
  });
  assert.equal(row.attempts, 1);
  await sleep(300);
  assert.deepEqual(ran, [id], "run once");
  assert.ok(lines.some((l) => l.msg === "found tasks handed to this worker whose notification was lost" && l.tasks === 1), "the adoption is logged");
  assert.deepEqual(adopted, [id], "and emitted as an adopted hand-off");
  await jobs.close();
});

test("a stopping worker withdraws its offer; a worker with handoff: false never offers; lapsed offers and paused queues take the ready path", async () => {
  const jobs = openJobs(db);
  jobs.task("handoff_misc", async () => "done", { queue: "h_misc" });
  const worker = await jobs.worker({ queues: ["h_misc"], concurrency: 2 }).start();
  await offering(worker);
  await worker.stop();
  assert.equal(await offerOf(worker), undefined, "the offer is gone with the worker");
  assert.equal((await taskRow(db, await handoff("'handoff_misc', '[]', 'h_misc'"))).state, "ready", "no worker offers: the ready path");

  const plain = await jobs.worker({ queues: ["h_misc"], concurrency: 2, handoff: false }).start();
  await waitFor("the ready task to run", async () => (await db.query("select count(*)::int as n from jobs.tasks where queue = 'h_misc' and state = 'succeeded'")).rows[0].n === 1);
  await sleep(300);
  assert.equal(await offerOf(plain), undefined, "handoff: false makes no offer");
  await plain.stop();

  // An offer past its time (a worker that died without withdrawing it) is not taken, nor is one
  // for a paused queue; the task is enqueued ready either way.
  await db.query(`insert into jobs.worker_offers (worker_id, gen, queues, channel, lease_ms, free, until)
                  values (gen_random_uuid(), 1, '{h_dead}', 'jobs.handoff.dead', 15000, 5, now() - interval '1 second'),
                         (gen_random_uuid(), 1, '{h_paused}', 'jobs.handoff.paused', 15000, 5, now() + interval '1 minute')`);
  await db.query("select jobs.pause_queue('h_paused')");
  for (const queue of ["h_dead", "h_paused"]) {
    const row = await taskRow(db, await handoff(`'x', '[]', '${queue}'`));
    assert.deepEqual([row.state, row.worker_id], ["ready", null], queue);
  }
  const { rows: untouched } = await db.query("select free, taken from jobs.worker_offers where queues && '{h_dead,h_paused}' order by queues");
  assert.deepEqual(untouched, [{ free: 5, taken: 0 }, { free: 5, taken: 0 }]);
  await jobs.close();
});

test("hand-off falls back to the ready path for a payload too large for a notification, a countdown, or a bad value (with enqueue_many's message)", async () => {
  const jobs = openJobs(db);
  const sizes: number[] = [];
  const job = jobs.task("handoff_big", async (_ctx: TaskContext, s: string) => {
    sizes.push(s.length);
    return s.length;
  }, { queue: "h_big" });
  const worker = await jobs.worker({ queues: ["h_big"], concurrency: 2 }).start();
  await offering(worker);
  const big = "x".repeat(20_000);
  const r = await job.delay(big);
  assert.equal(await r.get({ timeout: 10_000 }), 20_000);
  const row = await taskRow(db, r.id);
  assert.equal(row.attempts, 1);
  assert.deepEqual(await offerOf(worker).then((o) => o?.taken ?? 0), 0, "not handed off: claimed from the ready path");
  await offering(worker);
  assert.equal((await taskRow(db, await handoff(`'handoff_big', '["a"]', 'h_big', delay_ms => 60000`))).state, "pending");
  await assert.rejects(db.query("select jobs.enqueue_handoff('handoff_big', '[\"a\"]', 'h_big', priority => 500)"), /priority 500 is out of range: use -100 to 100/);
  await assert.rejects(db.query("select jobs.enqueue_handoff('handoff_big', '{}', 'h_big')"), /args must be a JSON array, got object/);
  assert.deepEqual(await offerOf(worker).then((o) => o && [o.free, o.taken]), [1, 0], "nothing taken by the refused or pending ones");
  await jobs.close();
});
