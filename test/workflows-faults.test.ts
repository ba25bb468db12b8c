/**
 * Workflows under faults: a chord of 1,000 members finished by three worker processes at once,
 * duplicated acknowledgements, kill -9 between chain steps, members that fail for good, and a
 * retried chain step. Worker processes run `node bin/run.js worker --app
 * dist/test/fixtures/issue4-app.js` (test/fixtures/issue4-procs.ts).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { chain, chord, createJobs, TaskFailedError, type AsyncResult, type Jobs } from "../src/index.js";
import { statement } from "../src/sql.js";
import { useDatabase } from "./helpers/db.js";
import { defineIssue4Tasks, ensureRunsTable, type CollectResult, type Issue4Tasks } from "./fixtures/issue4-tasks.js";
import { killAll, startWorkerProcess, waitFor, type WorkerProcess } from "./fixtures/issue4-procs.js";

const db = useDatabase();
let jobs: Jobs;
let t: Issue4Tasks;

/** Worker processes get this application_name, so the test can see their sessions end. */
const WORKER_APP = "issue4-worker";

let ready: Promise<void> | undefined;
/** The file's Jobs and tasks, made by the first test that runs (the database exists from then on). */
function setup(): Promise<void> {
  return (ready ??= (async () => {
    await ensureRunsTable(db.pool);
    jobs = createJobs({ connectionString: db.url, logLevel: "silent" });
    t = defineIssue4Tasks(jobs);
    db.onClose(() => jobs.close());
    db.onClose(killAll); // registered last, runs first: no worker outlives the file
  })());
}

const st = (name: string) => statement("jobs", name);

async function runsOf(label: string): Promise<Array<{ task_id: string; attempt: number; pid: number }>> {
  const { rows } = await db.query("select task_id, attempt, pid from public.issue4_runs where label = $1 order by seq", [label]);
  return rows;
}

async function workersOn(queue: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>("select count(*)::int as n from jobs.workers where $1 = any(queues)", [queue]);
  return rows[0]!.n;
}

async function deadlocks(): Promise<number> {
  const { rows } = await db.query<{ n: string }>("select deadlocks as n from pg_stat_database where datname = current_database()");
  return Number(rows[0]!.n);
}

/** Every task of the canvas is in a final state. */
async function allFinal(ids: string[]): Promise<boolean> {
  const { rows } = await db.query<{ n: number }>(
    "select count(*)::int as n from jobs.tasks where id = any($1::bigint[]) and state in ('succeeded', 'failed', 'cancelled')",
    [ids],
  );
  return rows[0]!.n === ids.length;
}

const N = 1000;
// batchSize = concurrency + prefetch (the worker's default), so the CLI flags choose it.
const configs = [
  { batch: 1, flags: ["--concurrency", "1"] },
  { batch: 7, flags: ["--concurrency", "7"] },
  { batch: 50, flags: ["--concurrency", "10", "--prefetch", "40"] },
];

for (const cfg of configs) {
  test(`a chord of 1,000 members on three worker processes, claim batches of ${cfg.batch}: the callback runs once, in member order, the counter never goes below zero, no deadlock`, async () => {
    await setup();
    const queue = `issue4-chord-b${cfg.batch}`;
    const tag = `chord-1000-b${cfg.batch}`;
    const deadlocksBefore = await deadlocks();

    const spawned = performance.now();
    const procs: WorkerProcess[] = [];
    for (let i = 0; i < 3; i++) {
      procs.push(
        startWorkerProcess({
          databaseUrl: db.url,
          args: ["--queues", queue, "--lease", "3s", "--shutdown-grace", "5s", ...cfg.flags],
          env: { PGAPPNAME: WORKER_APP },
        }),
      );
    }
    await waitFor("three worker processes to register", async () => (await workersOn(queue)) === 3 || undefined);

    const startupMs = performance.now() - spawned;
    const header = Array.from({ length: N }, (_, i) => t.member.signature([i], { queue }));
    const started = performance.now();
    const result = await chord(header, t.collect.signature([tag], { queue })).applyAsync();
    const appliedMs = performance.now() - started;
    const callbackId = (result as AsyncResult).id!;
    const { rows: chordRows } = await db.query<{ id: string }>("select chord_id as id from jobs.tasks where id = (select min(id) from jobs.tasks where queue = $1 and name = 'issue4.member')", [queue]);
    const chordId = chordRows[0]!.id;

    // Sample the counter on a session of its own while the members finish.
    const sampler = await db.connect();
    const samples: number[] = [];
    let sampling = true;
    const sampled = (async () => {
      while (sampling) {
        const { rows } = await sampler.query<{ remaining: number }>("select remaining from jobs.chords where id = $1", [chordId]);
        samples.push(rows[0]!.remaining);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    let value: CollectResult;
    try {
      value = await result.get({ timeout: 60_000 });
    } finally {
      sampling = false;
      await sampled;
    }
    const totalMs = performance.now() - started;
    const stopping = performance.now();
    const exits = await Promise.all(procs.map((p) => p.stop()));
    const stopMs = performance.now() - stopping;
    // Their sessions are gone (a backend reports its statistics, deadlocks included, before it leaves).
    await waitFor("the worker processes' sessions to end", async () => {
      const { rows } = await db.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = $1 and datname = current_database()", [WORKER_APP]);
      return rows[0]!.n === 0 || undefined;
    });

    assert.deepEqual(value, { n: N, sum: (N * (N - 1)) / 2, inOrder: true });
    const runs = await runsOf(tag);
    assert.equal(runs.length, 1, `the callback ran ${runs.length} times`);
    assert.equal(runs[0]!.task_id, callbackId);

    const { rows: chordState } = await db.query("select total, remaining, failed, state, callback_id::text from jobs.chords where id = $1", [chordId]);
    assert.deepEqual(chordState, [{ total: N, remaining: 0, failed: 0, state: "fired", callback_id: callbackId }]);
    const { rows: cb } = await db.query("select args->0 as results, attempts from jobs.tasks where name = 'issue4.collect' and args->>1 = $1", [tag]);
    assert.equal(cb.length, 1, "one callback task");
    assert.deepEqual(cb[0].results, Array.from({ length: N }, (_, i) => i));
    assert.equal(cb[0].attempts, 1);

    const { rows: members } = await db.query<{ succeeded: number; workers: number }>(
      "select count(*) filter (where state = 'succeeded')::int as succeeded, count(distinct worker_id)::int as workers from jobs.tasks where queue = $1 and name = 'issue4.member'",
      [queue],
    );
    assert.equal(members[0]!.succeeded, N);
    assert.ok(members[0]!.workers >= 2, `members were finished by ${members[0]!.workers} worker process(es): the test needs them to race`);

    // The counter only went down, and never below zero (the check constraint would also refuse it).
    assert.ok(samples.length > 0);
    for (let i = 0; i < samples.length; i++) {
      assert.ok(samples[i]! >= 0, `remaining was ${samples[i]}`);
      if (i > 0) assert.ok(samples[i]! <= samples[i - 1]!, `remaining went up from ${samples[i - 1]} to ${samples[i]}`);
    }
    const { rows: check } = await db.query<{ def: string }>(
      "select pg_get_constraintdef(oid) as def from pg_constraint where conname = 'chords_remaining_check' and conrelid = 'jobs.chords'::regclass",
    );
    assert.match(check[0]!.def, /remaining >= 0/);
    await assert.rejects(db.query("update jobs.chords set remaining = remaining - 1 where id = $1", [chordId]), { code: "23514" }, "one more decrement would be refused");

    for (const [i, p] of procs.entries()) {
      const out = p.output();
      assert.doesNotMatch(out, /deadlock/i, `worker process ${i} reported a deadlock:\n${out}`);
      assert.doesNotMatch(out, /acknowledgement \(\w+\) failed|violates check constraint/, `worker process ${i}:\n${out}`);
      assert.equal(exits[i]!.code, 0, `worker process ${i} exited with ${exits[i]!.code}:\n${out}`);
    }
    assert.equal((await deadlocks()) - deadlocksBefore, 0, "pg_stat_database.deadlocks went up");

    process.stderr.write(
      `# chord of ${N}, batch ${cfg.batch}: workers up in ${startupMs.toFixed(0)} ms, applied in ${appliedMs.toFixed(0)} ms, callback result after ${totalMs.toFixed(0)} ms, workers stopped in ${stopMs.toFixed(0)} ms, ${samples.length} counter samples\n`,
    );
  });
}

test("a chord member's acknowledgement replayed, raced or late never decrements the counter twice", async () => {
  await setup();
  const queue = "issue4-acks";
  const w1 = randomUUID();
  const w2 = randomUUID();
  const result = await chord([0, 1, 2].map((i) => t.member.signature([i], { queue })), t.collect.signature(["acks"], { queue })).applyAsync();
  const claimed = await db.query<{ id: string; attempts: number; args: [number] }>(st("task_claim_many").text, [queue, 3, w1, 60_000]);
  assert.equal(claimed.rows.length, 3);
  const byArg = new Map<number, { id: string; attempts: number }>(claimed.rows.map((r) => [r.args[0], r]));
  const chordId = (await db.query("select chord_id from jobs.tasks where id = $1", [claimed.rows[0]!.id])).rows[0].chord_id;
  const remaining = async () => (await db.query<{ remaining: number }>("select remaining from jobs.chords where id = $1", [chordId])).rows[0]!.remaining;
  const finish = (client: { query: typeof db.query }, i: number, worker: string, value: number) => {
    const m = byArg.get(i)!;
    return client.query<{ ids: string[] }>(st("task_finish_many").text, [[m.id], [m.attempts], [JSON.stringify(value)], worker]);
  };

  // 1. Replayed after it succeeded: the second statement changes nothing.
  assert.deepEqual((await finish(db, 0, w1, 0)).rows[0]!.ids, [byArg.get(0)!.id]);
  assert.equal(await remaining(), 2);
  assert.deepEqual((await finish(db, 0, w1, 0)).rows[0]!.ids, []);
  assert.equal(await remaining(), 2);

  // 2. Two sessions send the same acknowledgement at once: the second waits for the first's row
  // lock, then finds the row no longer running and changes nothing.
  const a = await db.connect();
  const b = await db.connect();
  await a.query("begin");
  await b.query("begin");
  assert.deepEqual((await finish(a, 1, w1, 1)).rows[0]!.ids, [byArg.get(1)!.id]);
  const bPid = (await b.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;
  const second = finish(b, 1, w1, 111);
  await waitFor("the second acknowledgement to wait on the first's lock", async () => {
    const { rows } = await db.query("select wait_event_type from pg_stat_activity where pid = $1", [bPid]);
    return rows[0]?.wait_event_type === "Lock" || undefined;
  });
  await a.query("commit");
  assert.deepEqual((await second).rows[0]!.ids, []);
  await b.query("commit");
  assert.equal(await remaining(), 1);
  assert.equal((await db.query("select result from jobs.tasks where id = $1", [byArg.get(1)!.id])).rows[0].result, 1, "the first acknowledgement's result stands");

  // 3. A late acknowledgement from a worker whose task was rescued and run again elsewhere.
  await db.query("update jobs.tasks set lease_until = now() - interval '1 second' where id = $1", [byArg.get(2)!.id]);
  const rescued = await db.query<{ ids: string[] }>(st("task_rescue_expired").text, [100]);
  assert.deepEqual(rescued.rows[0]!.ids, [byArg.get(2)!.id]);
  const reclaimed = await db.query<{ id: string; attempts: number }>(st("task_claim_many").text, [queue, 3, w2, 60_000]);
  assert.deepEqual(reclaimed.rows.map((r) => [r.id, r.attempts]), [[byArg.get(2)!.id, 2]]);
  assert.deepEqual((await finish(db, 2, w1, 2)).rows[0]!.ids, [], "the rescued attempt's acknowledgement is stale");
  assert.equal(await remaining(), 1);
  byArg.set(2, reclaimed.rows[0]!);
  assert.deepEqual((await finish(db, 2, w2, 2)).rows[0]!.ids, [byArg.get(2)!.id]);
  assert.deepEqual((await finish(db, 2, w2, 2)).rows[0]!.ids, []);

  const { rows } = await db.query("select remaining, state, callback_id::text from jobs.chords where id = $1", [chordId]);
  assert.deepEqual(rows, [{ remaining: 0, state: "fired", callback_id: (result as AsyncResult).id }]);
  const { rows: callbacks } = await db.query("select id::text, args, state from jobs.tasks where chord_id is null and name = 'issue4.collect' and args->>1 = 'acks'");
  assert.deepEqual(callbacks, [{ id: (result as AsyncResult).id, args: [[0, 1, 2], "acks"], state: "ready" }]);
});

const steps = (prefix: string, queue: string, slow: string) =>
  chain(
    t.step.signature([[], `${prefix}-s1`, 0], { queue }),
    ...[2, 3, 4, 5].map((i) => t.step.signature([`${prefix}-s${i}`, `${prefix}-s${i}` === slow ? 1500 : 0], { queue })),
  );

/** A second worker, in this process, with a short lease and a quick rescuer. */
async function rescuer(queue: string) {
  const w = jobs.worker({ queues: [queue], concurrency: 4, lease: "1s", heartbeatInterval: 250, rescueInterval: 200, pollInterval: 200 });
  db.onClose(() => w.stop());
  return w.start();
}

async function assertEveryStepRan(prefix: string, killedPid: number): Promise<Map<string, Array<{ attempt: number; pid: number }>>> {
  const byLabel = new Map<string, Array<{ attempt: number; pid: number }>>();
  for (let i = 1; i <= 5; i++) {
    const runs = await runsOf(`${prefix}-s${i}`);
    assert.ok(runs.length >= 1, `step ${prefix}-s${i} never ran`);
    byLabel.set(`${prefix}-s${i}`, runs);
  }
  const { rows } = await db.query<{ n: number; ok: number }>(
    "select count(*)::int as n, count(*) filter (where state = 'succeeded')::int as ok from jobs.tasks where name = 'issue4.step' and args->>1 like $1",
    [`${prefix}-%`],
  );
  assert.deepEqual(rows[0], { n: 5, ok: 5 }, "one task per step, each succeeded once");
  assert.ok([...byLabel.values()].flat().some((r) => r.pid === killedPid), "the killed process ran part of the chain");
  return byLabel;
}

test("kill -9 of a worker while a later chain step runs: the rescued step runs again and the chain completes", async () => {
  await setup();
  const queue = "issue4-kill-running";
  const a = startWorkerProcess({ databaseUrl: db.url, args: ["--queues", queue, "--lease", "1s", "--concurrency", "4"] });
  await waitFor("worker A to register", async () => (await workersOn(queue)) === 1 || undefined);
  const result = await steps("kr", queue, "kr-s3").applyAsync();

  // Step 3 has started on A (it sleeps 1.5 s): kill A mid-step.
  await waitFor("step 3 to start on worker A", async () => (await runsOf("kr-s3")).some((r) => r.pid === a.pid) || undefined);
  const exit = await a.kill();
  assert.equal(exit.signal, "SIGKILL");
  const { rows: mid } = await db.query("select state from jobs.tasks where name = 'issue4.step' and args->>1 = 'kr-s3'");
  assert.deepEqual(mid, [{ state: "running" }], "step 3 is left running on the dead worker");

  await rescuer(queue);
  assert.deepEqual(await result.get({ timeout: 20_000 }), ["kr-s1", "kr-s2", "kr-s3", "kr-s4", "kr-s5"]);
  const runs = await assertEveryStepRan("kr", a.pid);
  assert.deepEqual(runs.get("kr-s3")!.map((r) => [r.attempt, r.pid]), [[1, a.pid], [2, process.pid]], "step 3 ran on A, then again (attempt 2) after its lease lapsed");
  for (const s of ["kr-s1", "kr-s2"]) assert.equal(runs.get(s)!.length, 1, `${s} finished before the kill and ran once`);
});

test("kill -9 of a worker right after a chain step's success: the next step was handed over in the same commit", async () => {
  await setup();
  const queue = "issue4-kill-after";
  const a = startWorkerProcess({
    databaseUrl: db.url,
    args: ["--queues", queue, "--lease", "1s", "--concurrency", "4"],
    env: { ISSUE4_KILL_AFTER_SUCCESS: "ka-s2" },
  });
  await waitFor("worker A to register", async () => (await workersOn(queue)) === 1 || undefined);
  const result = await steps("ka", queue, "none").applyAsync();
  const exit = await a.closed;
  assert.equal(exit.signal, "SIGKILL", `worker A should have killed itself after ka-s2:\n${a.output()}`);

  const { rows } = await db.query<{ label: string; state: string }>(
    "select args->>1 as label, state::text from jobs.tasks where name = 'issue4.step' and args->>1 like 'ka-%' order by id",
  );
  assert.deepEqual(rows.slice(0, 2), [{ label: "ka-s1", state: "succeeded" }, { label: "ka-s2", state: "succeeded" }]);
  assert.equal(rows.length, 3, "the step after the last success exists: its hand-over committed with that success");
  assert.equal(rows[2]!.label, "ka-s3");
  assert.ok(["ready", "running"].includes(rows[2]!.state), `ka-s3 is ${rows[2]!.state}`);

  await rescuer(queue);
  assert.deepEqual(await result.get({ timeout: 20_000 }), ["ka-s1", "ka-s2", "ka-s3", "ka-s4", "ka-s5"]);
  const runs = await assertEveryStepRan("ka", a.pid);
  for (const s of ["ka-s1", "ka-s2"]) assert.deepEqual(runs.get(s)!.map((r) => r.pid), [a.pid], `${s} ran once, on A`);
});

test("a chord member fails for good: the callback never runs, the chord reports the member once, its error callback runs once", async () => {
  await setup();
  const queue = "issue4-member-fails";
  const w = await jobs.worker({ queues: [queue], concurrency: 5, pollInterval: 200 }).start();
  db.onClose(() => w.stop());
  const header = [0, 1, 2, 3, 4].map((i) => (i % 2 === 1 ? t.boom.signature([i], { queue }) : t.member.signature([i], { queue })));
  const c = chord(header, t.collect.signature(["fails-callback"], { queue })).onError(t.onError.signature(["fails-errback"], { queue }));
  const result = await c.applyAsync();
  const callbackId = (result as AsyncResult).id!;

  const err = await result.get({ timeout: 10_000 }).then(
    () => assert.fail("the chord's result resolved although members failed"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof TaskFailedError, String(err));
  assert.equal(err.cause.name, "ChordMemberFailed");
  const failed = (await db.query<{ id: string }>("select id::text from jobs.tasks where name = 'issue4.boom' and queue = $1 order by id", [queue])).rows.map((r) => r.id);
  assert.equal(failed.length, 2);
  assert.ok(failed.includes(String(err.cause.member_id)), `the error names a failed member: ${err.message}`);
  assert.match(err.message, new RegExp(`member issue4\\.boom \\(id (${failed.join("|")})\\) failed: Error: boom`));

  // Wait until every member and the error callback finished, then count.
  const members = (await db.query<{ id: string }>("select id::text from jobs.tasks where queue = $1 and name in ('issue4.boom', 'issue4.member')", [queue])).rows.map((r) => r.id);
  await waitFor("every member to finish", () => allFinal(members));
  await waitFor("the error callback to finish", async () => {
    const { rows } = await db.query("select 1 from jobs.tasks where name = 'issue4.on_error' and args->>1 = 'fails-errback' and state = 'succeeded'");
    return rows.length > 0 || undefined;
  });
  const { rows: errbacks } = await db.query("select state::text, result from jobs.tasks where name = 'issue4.on_error' and args->>1 = 'fails-errback'");
  assert.equal(errbacks.length, 1, "one error callback for the chord, though two members failed");
  assert.equal(errbacks[0].state, "succeeded");
  assert.ok(failed.includes(errbacks[0].result.failedId));
  assert.equal((await runsOf("fails-errback")).length, 1);

  assert.deepEqual(await runsOf("fails-callback"), [], "the callback never ran");
  const { rows: cb } = await db.query("select state::text, attempts from jobs.tasks where id = $1", [callbackId]);
  assert.deepEqual(cb, [{ state: "cancelled", attempts: 0 }]);
  const { rows: progress } = await db.query("select total, failed, state from jobs.chord_progress where callback_id is null and chord_id = (select chord_id from jobs.tasks where id = $1::bigint)", [members[0]]);
  assert.deepEqual(progress, [{ total: 5, failed: 2, state: "failed" }]);
});

test("retrying a chain step that failed for good resumes the chain, and the worker keeps acknowledging", async () => {
  await setup();
  const queue = "issue4-retry-step";
  const p = startWorkerProcess({ databaseUrl: db.url, args: ["--queues", queue, "--concurrency", "4"] });
  await waitFor("the worker to register", async () => (await workersOn(queue)) === 1 || undefined);
  const result = await chain(t.flaky.signature([1], { queue }), t.ping.signature([], { queue })).applyAsync();
  await assert.rejects(result.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskFailedError && e.cause.name === "UpstreamFailed");
  const { rows } = await db.query<{ id: string }>("select id::text from jobs.tasks where name = 'issue4.flaky' and queue = $1", [queue]);
  assert.deepEqual(await jobs.retry([rows[0]!.id]), [rows[0]!.id]);
  await waitFor("the retried step to run again", async () => (await runsOf("flaky-1")).length === 2 || undefined);

  // The retried step succeeds; its hand-over meets the 'cancelled' placeholder the failure left
  // for the next step. Whatever the chain does then, the worker must go on acknowledging.
  const ping = await t.ping.applyAsync([7], { queue });
  const after = await ping.get({ timeout: 5_000 }).catch((e: unknown) => e);
  assert.equal(after, 7, `the worker stopped acknowledging after the retried step: ${String(after)}\n${p.output().split("\n").filter((l) => /failed; retrying/.test(l)).slice(0, 2).join("\n")}`);
  assert.equal(await (result as AsyncResult<number>).get({ timeout: 10_000 }), 2, "the chain's last step ran with the retried step's result");
});
