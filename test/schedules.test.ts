/**
 * Periodic schedules (issue 5): exactly once per tick across schedulers and crashes, DST, misfire
 * policies, and code-defined schedules synced by a worker with beat.
 */
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";
import { createJobs, type Jobs } from "../src/index.js";
import { MAX_CATCH_UP, nextFireTimes, type FiredTick } from "../src/scheduler.js";
import { useDatabase } from "./helpers/db.js";
import { BLOCKING_BEAT, killAll, startProcess, waitFor } from "./fixtures/issue5-procs.js";

const db = useDatabase();
/** A hang (a lock never released, a process that never prints) fails the test instead of the run. */
const LIMIT = { timeout: 90_000 };
db.onClose(killAll);

// Each test starts with no schedules: one left behind by an earlier test would be caught up by
// the next test's scheduler.
beforeEach(async () => {
  await db.query("delete from jobs.schedules");
});

function newJobs(): Jobs {
  const jobs = createJobs({ connectionString: db.url, logLevel: "silent", resultPoll: 60_000, poolSize: 4 });
  db.onClose(() => jobs.close());
  return jobs;
}

/** The fire times (ms) of a schedule's tasks, ascending, duplicates kept. */
async function fireTimes(schedule: string): Promise<number[]> {
  const { rows } = await db.query<{ fire_at: string }>("select headers->>'fire_at' as fire_at from jobs.tasks where headers->>'schedule' = $1", [schedule]);
  return rows.map((r) => Date.parse(r.fire_at)).sort((a, b) => a - b);
}

async function schedule(name: string): Promise<{ next_run_at: Date; last_run_at: Date | null; enabled: boolean }> {
  const { rows } = await db.query("select next_run_at, last_run_at, enabled from jobs.schedules where name = $1", [name]);
  assert.equal(rows.length, 1, `schedule ${name} exists`);
  return rows[0];
}

/** from, from + step, ... while < until. */
function range(from: number, until: number, step: number): number[] {
  const out: number[] = [];
  for (let t = from; t < until; t += step) out.push(t);
  return out;
}

const iso = (ms: number[] | Date[]) => ms.map((t) => new Date(t).toISOString());

test("five `pgjobs beat` processes fire two every-second schedules for 20 s: one task per tick, no gaps, no duplicates", LIMIT, async (t) => {
  const jobs = newJobs();
  const report = jobs.task("report", async () => null);
  jobs.schedule("five-cron", { cron: "* * * * * *" }, report.s());
  jobs.schedule("five-every", { every: "1s" }, report.s());

  const beats = Array.from({ length: 5 }, () => startProcess(["beat", "--database-url", db.url], { env: { PGJOBS_LOG_LEVEL: "info" } }));
  await Promise.all(beats.map((b) => b.line(/"msg":"beat started"/)));
  // Written once all five run (they look for new schedules every second), so every tick is contended.
  await jobs.syncSchedules();
  const started = Date.now();
  const first = { cron: (await schedule("five-cron")).next_run_at.getTime(), every: (await schedule("five-every")).next_run_at.getTime() };
  await waitFor(
    "20 ticks of each schedule",
    async () => {
      const { rows } = await db.query<{ n: number }>(
        "select count(*)::int as n from jobs.tasks where headers->>'schedule' in ('five-cron', 'five-every') group by headers->>'schedule'",
      );
      return rows.length === 2 && rows.every((r) => r.n >= 20);
    },
    60_000,
    200,
  );
  const elapsed = Date.now() - started;
  const exits = await Promise.all(beats.map((b) => b.stop()));
  for (const [i, e] of exits.entries()) assert.equal(e.code, 0, `beat ${i} exited 0 on SIGTERM; stderr: ${beats[i]!.stderr()}`);

  // Exactly the ticks from the first next_run_at up to (not including) the one still pending.
  const cronTicks = await fireTimes("five-cron");
  const everyTicks = await fireTimes("five-every");
  assert.deepEqual(iso(cronTicks), iso(range(first.cron, (await schedule("five-cron")).next_run_at.getTime(), 1000)));
  assert.deepEqual(iso(everyTicks), iso(range(first.every, (await schedule("five-every")).next_run_at.getTime(), 1000)));
  assert.ok(cronTicks.length >= 20 && everyTicks.length >= 20);

  // Each committed tick was reported by exactly one process.
  const perProcess = beats.map((b) =>
    b.stdout().split("\n").filter((l) => l.includes('"msg":"fired"')).map((l) => JSON.parse(l) as { schedule: string; fireAt: string }),
  );
  const reported = perProcess.flat().map((f) => `${f.schedule} ${f.fireAt}`).sort();
  const stored = [...iso(cronTicks).map((x) => `five-cron ${x}`), ...iso(everyTicks).map((x) => `five-every ${x}`)].sort();
  assert.deepEqual(reported, stored);
  t.diagnostic(`5 beats, ${Math.round(elapsed / 100) / 10} s: five-cron ${cronTicks.length} ticks, five-every ${everyTicks.length} ticks; ticks fired per process: ${perProcess.map((p) => p.length).join(", ")}`);
});

test("kill -9 of the scheduler that is firing, mid-tick: another scheduler fires that tick once, with no gap", LIMIT, async (t) => {
  const defining = newJobs();
  const tick = defining.task("kill_tick", async () => null);
  defining.schedule("kill-tick", { every: "1s" }, tick.s());
  await defining.syncSchedules();
  const first = (await schedule("kill-tick")).next_run_at.getTime();

  // This scheduler inserts the ticks' tasks, then stops inside the transaction (beforeCommit).
  // It usually holds one tick; more if it started late (a slow machine): all of them are due.
  const victim = startProcess([], { script: BLOCKING_BEAT, env: { DATABASE_URL: db.url } });
  try {
    const blocked = (JSON.parse(await victim.line(/"blocked"/)) as { blocked: Array<{ name: string; fireAt: string; taskId: string }> }).blocked;
    assert.ok(blocked.length >= 1);
    assert.deepEqual(blocked.map((b) => [b.name, b.fireAt]), iso(range(first, first + blocked.length * 1000, 1000)).map((x) => ["kill-tick", x]));
    assert.deepEqual(await fireTimes("kill-tick"), [], "the blocked ticks' tasks are not committed");

    // Another scheduler (own Jobs, own pool, no schedules in code) cannot fire them while they are held.
    const survivor = newJobs();
    const scheduler = survivor.scheduler({ maxSleep: 200 });
    const fired: FiredTick[] = [];
    scheduler.on("fired", (ticks) => fired.push(...ticks));
    assert.equal(await scheduler.fireDue(), 0, "the due row is locked by the blocked scheduler: skipped");
    await scheduler.start();
    db.onClose(() => scheduler.stop());

    const killed = await victim.kill();
    assert.equal(killed.signal, "SIGKILL");
    const lastHeld = Date.parse(blocked[blocked.length - 1]!.fireAt);
    await waitFor("the survivor to fire the held ticks and three more", async () => fired.some((f) => f.fireAt.getTime() >= lastHeld + 3000), 20_000);
    await scheduler.stop();

    const ticks = await fireTimes("kill-tick");
    assert.deepEqual(iso(ticks), iso(range(first, (await schedule("kill-tick")).next_run_at.getTime(), 1000)), "one task per tick, none missing");
    for (const held of blocked) {
      const mine = fired.find((f) => f.fireAt.toISOString() === held.fireAt);
      assert.ok(mine, `the survivor fired the tick the killed scheduler held (${held.fireAt})`);
      const { rows } = await db.query("select id::text from jobs.tasks where headers->>'schedule' = 'kill-tick' and headers->>'fire_at' = $1", [held.fireAt]);
      assert.deepEqual(rows.map((r) => r.id), [mine.taskId], "exactly one task for the held tick: the survivor's");
      assert.notEqual(mine.taskId, held.taskId, "the killed scheduler's insert was rolled back");
    }
    t.diagnostic(`the killed scheduler held ${blocked.length} tick(s); each fired once, by the survivor; ${ticks.length} ticks in all, no gap`);
  } finally {
    await victim.kill(); // if an assertion failed first: its locks would block the next tests
  }
});

// Expected instants written out by hand (UTC), from the zones' rules:
// Europe/Berlin: CET (UTC+1) -> CEST (UTC+2) at 2026-03-29 01:00 UTC; back at 2026-10-25 01:00 UTC.
// America/New_York: EST (UTC-5) -> EDT (UTC-4) at 2026-03-08 07:00 UTC; back at 2026-11-01 06:00 UTC.
const DST_CASES: Array<{ what: string; cron: string; tz: string; after: string; want: string[] }> = [
  {
    what: "Berlin daily 02:30, spring forward: 02:30 does not exist on Mar 29 and fires at 03:30 CEST",
    cron: "30 2 * * *", tz: "Europe/Berlin", after: "2026-03-27T12:00:00Z",
    want: ["2026-03-28T01:30:00.000Z", "2026-03-29T01:30:00.000Z", "2026-03-30T00:30:00.000Z", "2026-03-31T00:30:00.000Z"],
  },
  {
    what: "Berlin daily 02:30, fall back: 02:30 happens twice on Oct 25 and fires once, at the first (CEST)",
    cron: "30 2 * * *", tz: "Europe/Berlin", after: "2026-10-23T12:00:00Z",
    want: ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z", "2026-10-27T01:30:00.000Z"],
  },
  {
    what: "Berlin hourly, spring forward: 01:00 CET then 03:00 CEST, one hour apart (23 ticks that day)",
    cron: "0 * * * *", tz: "Europe/Berlin", after: "2026-03-28T22:30:00Z",
    want: ["2026-03-28T23:00:00.000Z", "2026-03-29T00:00:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-29T02:00:00.000Z", "2026-03-29T03:00:00.000Z"],
  },
  {
    what: "Berlin hourly, fall back: 02:00 CEST and 02:00 CET both fire (25 ticks that day)",
    cron: "0 * * * *", tz: "Europe/Berlin", after: "2026-10-24T22:30:00Z",
    want: ["2026-10-24T23:00:00.000Z", "2026-10-25T00:00:00.000Z", "2026-10-25T01:00:00.000Z", "2026-10-25T02:00:00.000Z", "2026-10-25T03:00:00.000Z"],
  },
  {
    what: "New York daily 02:30, spring forward: fires at 03:30 EDT on Mar 8",
    cron: "30 2 * * *", tz: "America/New_York", after: "2026-03-06T12:00:00Z",
    want: ["2026-03-07T07:30:00.000Z", "2026-03-08T07:30:00.000Z", "2026-03-09T06:30:00.000Z"],
  },
  {
    what: "New York daily 01:30, fall back: 01:30 happens twice on Nov 1 and fires once, at 01:30 EDT",
    cron: "30 1 * * *", tz: "America/New_York", after: "2026-10-31T00:00:00Z",
    want: ["2026-10-31T05:30:00.000Z", "2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"],
  },
  {
    what: "New York hourly across both changes",
    cron: "0 * * * *", tz: "America/New_York", after: "2026-03-08T05:30:00Z",
    want: ["2026-03-08T06:00:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-08T08:00:00.000Z"],
  },
  {
    what: "New York hourly, fall back: 01:00 EDT, 01:00 EST, 02:00 EST",
    cron: "0 * * * *", tz: "America/New_York", after: "2026-11-01T04:30:00Z",
    want: ["2026-11-01T05:00:00.000Z", "2026-11-01T06:00:00.000Z", "2026-11-01T07:00:00.000Z"],
  },
];

test("nextFireTimes across spring-forward and fall-back in Europe/Berlin and America/New_York", LIMIT, () => {
  for (const c of DST_CASES) {
    const got = nextFireTimes({ cron: c.cron, everyMs: null, timezone: c.tz }, new Date(c.after), c.want.length);
    assert.deepEqual(iso(got), c.want, c.what);
  }
  // Counted over the whole change day: 23, 25, 23 and 25 hourly ticks; one 02:30 each day.
  const count = (cron: string, tz: string, from: string, to: string) =>
    nextFireTimes({ cron, everyMs: null, timezone: tz }, new Date(from), 30).filter((d) => d.getTime() < Date.parse(to)).length;
  assert.equal(count("0 * * * *", "Europe/Berlin", "2026-03-28T22:59:59Z", "2026-03-29T22:00:00Z"), 23);
  assert.equal(count("0 * * * *", "Europe/Berlin", "2026-10-24T21:59:59Z", "2026-10-25T23:00:00Z"), 25);
  assert.equal(count("0 * * * *", "America/New_York", "2026-03-08T04:59:59Z", "2026-03-09T04:00:00Z"), 23);
  assert.equal(count("0 * * * *", "America/New_York", "2026-11-01T03:59:59Z", "2026-11-02T05:00:00Z"), 25);
  // Fixed intervals are absolute time: DST does not move them.
  const every = nextFireTimes({ cron: null, everyMs: 3_600_000, timezone: "Europe/Berlin", anchor: new Date("2026-03-29T00:00:00Z") }, new Date("2026-03-29T00:00:00Z"), 3);
  assert.deepEqual(iso(every), ["2026-03-29T01:00:00.000Z", "2026-03-29T02:00:00.000Z", "2026-03-29T03:00:00.000Z"]);
});

test("the next tick is the same from any starting point near a DST change (what a scheduler computes after an outage)", LIMIT, () => {
  for (const c of DST_CASES) {
    // One uninterrupted walk from a day before is the reference; every 13 minutes from 2 hours
    // before the first expected tick to the last is a starting point (cron-parser takes about
    // 1 ms per start, so not finer).
    const walk = nextFireTimes({ cron: c.cron, everyMs: null, timezone: c.tz }, new Date(Date.parse(c.after) - 86_400_000), 80).map((d) => d.getTime());
    const end = Date.parse(c.want[c.want.length - 1]!);
    for (let at = Date.parse(c.want[0]!) - 2 * 3_600_000; at < end; at += 13 * 60_000) {
      const [next] = nextFireTimes({ cron: c.cron, everyMs: null, timezone: c.tz }, new Date(at), 1);
      assert.equal(next!.toISOString(), new Date(walk.find((w) => w > at)!).toISOString(), `${c.cron} ${c.tz} from ${new Date(at).toISOString()}`);
    }
  }
});

test("a scheduler fires a Berlin daily 02:30 and an hourly schedule at the right instants across both DST changes", LIMIT, async () => {
  const jobs = newJobs();
  const task = jobs.task("dst_task", async () => null);
  jobs.schedule("dst-daily", { cron: "30 2 * * *", timezone: "Europe/Berlin", misfireGrace: "1h" }, task.s());
  jobs.schedule("dst-hourly", { cron: "0 * * * *", timezone: "Europe/Berlin", misfireGrace: "1h" }, task.s());
  await jobs.syncSchedules();
  const scheduler = jobs.scheduler();
  // A clock that walks through each change in 10-minute steps (the database's clock is
  // replaced through fireDue's test parameter).
  for (const [from, to, daily, hourly] of [
    ["2026-03-28T12:00:00Z", "2026-03-30T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-28T13:00:00Z"],
    ["2026-10-24T12:00:00Z", "2026-10-26T02:00:00Z", "2026-10-24T00:30:00Z", "2026-10-24T13:00:00Z"],
  ] as const) {
    await db.query("delete from jobs.tasks");
    await db.query("update jobs.schedules set next_run_at = $1 where name = 'dst-daily'", [daily]);
    await db.query("update jobs.schedules set next_run_at = $1 where name = 'dst-hourly'", [hourly]);
    for (let now = Date.parse(from); now <= Date.parse(to); now += 10 * 60_000) await scheduler.fireDue(100, new Date(now));
    const got = { daily: iso(await fireTimes("dst-daily")), hourly: iso(await fireTimes("dst-hourly")) };
    const want = {
      daily: nextFireTimes({ cron: "30 2 * * *", everyMs: null, timezone: "Europe/Berlin" }, new Date(Date.parse(daily) - 1), 5).filter((d) => d.getTime() <= Date.parse(to)),
      hourly: nextFireTimes({ cron: "0 * * * *", everyMs: null, timezone: "Europe/Berlin" }, new Date(Date.parse(hourly) - 1), 60).filter((d) => d.getTime() <= Date.parse(to)),
    };
    assert.deepEqual(got.daily, iso(want.daily));
    assert.deepEqual(got.hourly, iso(want.hourly));
    if (from.startsWith("2026-03")) {
      // 02:30 does not exist on Mar 29: it fires at 03:30 CEST. The local day has 23 hourly ticks.
      assert.deepEqual(got.daily, ["2026-03-29T01:30:00.000Z", "2026-03-30T00:30:00.000Z"]);
      assert.equal(got.hourly.filter((x) => x >= "2026-03-28T23:00" && x < "2026-03-29T22:00").length, 23);
    } else {
      // 02:30 happens twice on Oct 25: one tick, at 02:30 CEST. The local day has 25 hourly
      // ticks, 02:00 CEST and 02:00 CET among them.
      assert.deepEqual(got.daily, ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]);
      assert.equal(got.hourly.filter((x) => x >= "2026-10-24T22:00" && x < "2026-10-25T23:00").length, 25);
      assert.ok(got.hourly.includes("2026-10-25T00:00:00.000Z") && got.hourly.includes("2026-10-25T01:00:00.000Z"));
    }
    assert.equal(new Set(got.hourly).size, got.hourly.length, "no hourly tick twice");
  }
});

test("after an outage of several ticks each misfire policy does what it promises, then fires on time again", LIMIT, async () => {
  const jobs = newJobs();
  const task = jobs.task("misfire_task", async (_ctx, _policy: string) => null);
  for (const policy of ["once", "all", "skip"] as const) {
    jobs.schedule(`outage-${policy}`, { every: "10s", misfire: policy, misfireGrace: "3s" }, task.s(policy));
  }
  await jobs.syncSchedules();
  // The outage: no scheduler ran while six ticks came due (55, 45, ... 5 s ago; all later than the 3 s grace).
  const { rows } = await db.query<{ t0: Date }>(
    "update jobs.schedules set next_run_at = date_trunc('milliseconds', now() - interval '55 s') where name like 'outage-%' returning next_run_at as t0",
  );
  const start = rows[0]!.t0.getTime();
  const missed = range(start, start + 60_000, 10_000);

  const scheduler = jobs.scheduler({ maxSleep: 200 });
  assert.equal(await scheduler.fireDue(), 3, "a scheduler coming back finds the three schedules due");
  assert.deepEqual(iso(await fireTimes("outage-all")), iso(missed), "all: every missed tick runs");
  assert.deepEqual(iso(await fireTimes("outage-once")), iso([missed[5]!]), "once: one catch-up run, for the latest missed tick");
  assert.deepEqual(await fireTimes("outage-skip"), [], "skip: none");
  for (const policy of ["once", "all", "skip"]) {
    const s = await schedule(`outage-${policy}`);
    assert.equal(s.next_run_at.toISOString(), new Date(start + 60_000).toISOString(), `${policy}: next tick is the first after now, on the same grid`);
    assert.equal(s.last_run_at?.toISOString() ?? null, policy === "skip" ? null : new Date(missed[5]!).toISOString());
  }
  // Back to normal: the next tick (about 5 s away) fires on time under every policy.
  await scheduler.start();
  db.onClose(() => scheduler.stop());
  await waitFor("the first tick after the outage", async () => (await fireTimes("outage-skip")).length === 1, 20_000);
  await scheduler.stop();
  assert.deepEqual(iso(await fireTimes("outage-skip")), iso([start + 60_000]));
  assert.deepEqual(iso(await fireTimes("outage-once")), iso([missed[5]!, start + 60_000]));
  assert.deepEqual(iso(await fireTimes("outage-all")), iso([...missed, start + 60_000]));
});

test("a long outage of an every-second cron: all is bounded to the latest 1,000 missed ticks, once to one; on-time ticks always run", LIMIT, async (t) => {
  const jobs = newJobs();
  const task = jobs.task("long_outage", async () => null);
  jobs.schedule("long-all", { cron: "* * * * * *", timezone: "Europe/Berlin", misfire: "all", misfireGrace: "30s" }, task.s());
  jobs.schedule("long-once", { cron: "* * * * * *", timezone: "Europe/Berlin", misfire: "once", misfireGrace: "30s" }, task.s());
  jobs.schedule("long-skip", { cron: "* * * * * *", timezone: "Europe/Berlin", misfire: "skip", misfireGrace: "30s" }, task.s());
  await jobs.syncSchedules();
  // Three hours (10,800 ticks) without a scheduler, seen from a clock passed to fireDue.
  const t0 = Date.parse("2026-06-01T00:00:00Z");
  const now = t0 + 3 * 3_600_000;
  await db.query("update jobs.schedules set next_run_at = $1 where name like 'long-%'", [new Date(t0)]);
  const scheduler = jobs.scheduler();
  const began = Date.now();
  assert.equal(await scheduler.fireDue(100, new Date(now)), 3);
  const tookMs = Date.now() - began;
  const onTime = range(now - 30_000, now + 1, 1000); // 31 ticks at most 30 s late
  assert.deepEqual(iso(await fireTimes("long-all")), iso([...range(now - 30_000 - MAX_CATCH_UP * 1000, now - 30_000, 1000), ...onTime]));
  assert.deepEqual(iso(await fireTimes("long-once")), iso([now - 31_000, ...onTime]));
  assert.deepEqual(iso(await fireTimes("long-skip")), iso(onTime));
  for (const n of ["long-all", "long-once", "long-skip"]) assert.equal((await schedule(n)).next_run_at.toISOString(), new Date(now + 1000).toISOString());
  t.diagnostic(`catching up 3 schedules after 10,800 missed ticks each took ${tookMs} ms (${MAX_CATCH_UP + 31 + 32 + 31} tasks)`);
});

test("a worker with beat writes the code's schedules, fires them, and runs the tasks with the tick in their headers", LIMIT, async () => {
  const jobs = newJobs();
  const seen: Array<{ schedule: unknown; fire_at: unknown; day: string }> = [];
  const report = jobs.task("beat_report", async (ctx, day: string) => {
    seen.push({ schedule: ctx.headers.schedule, fire_at: ctx.headers.fire_at, day });
    return day;
  });
  jobs.schedule("beat-report", { every: "1s" }, report.s("today"));
  const enqueued: string[] = [];
  jobs.on("enqueued", (info) => enqueued.push(`${info.name} ${info.queue} ${info.id}`));
  const worker = await jobs.worker({ concurrency: 2, beat: true, pollInterval: 200 }).start();
  db.onClose(() => worker.stop());
  await waitFor("two scheduled runs", async () => seen.length >= 2, 20_000);
  await worker.stop();
  const first = seen[0]!;
  assert.equal(first.schedule, "beat-report");
  assert.equal(first.day, "today");
  assert.ok((await fireTimes("beat-report")).map((t) => new Date(t).toISOString()).includes(first.fire_at as string));
  const { rows } = await db.query("select state, count(*)::int as n from jobs.tasks where headers->>'schedule' = 'beat-report' and state = 'succeeded' group by 1");
  assert.ok(rows[0].n >= 2);
  // Each tick's task was announced like any enqueue ('enqueued' event, afterEnqueue hooks).
  const ids = (await db.query("select id::text from jobs.tasks where headers->>'schedule' = 'beat-report' order by id")).rows.map((r) => `beat_report default ${r.id}`);
  assert.deepEqual(enqueued, ids);
});

test("syncing code schedules keeps the next tick and a pause when nothing changed, and re-times a changed schedule", LIMIT, async () => {
  const a = newJobs();
  const t1 = a.task("sync_task", async (_ctx, _n: number) => null);
  a.schedule("sync-me", { cron: "0 3 * * *", timezone: "Europe/Berlin" }, t1.s(1));
  await a.syncSchedules();
  await db.query("update jobs.schedules set next_run_at = '2030-01-01T02:00:00Z', enabled = false where name = 'sync-me'");
  const before = await db.query("select *, xmin::text from jobs.schedules where name = 'sync-me'");

  // A second process with the same definition: nothing is written (not even a new row version).
  const b = newJobs();
  b.schedule("sync-me", { cron: "0 3 * * *", timezone: "Europe/Berlin" }, b.task("sync_task", async (_ctx, _n: number) => null).s(1));
  await b.syncSchedules();
  assert.deepEqual((await db.query("select *, xmin::text from jobs.schedules where name = 'sync-me'")).rows, before.rows);

  // Changed arguments: updated, timing and pause kept. Changed timing: next tick recomputed.
  const c = newJobs();
  const t3 = c.task("sync_task", async (_ctx, _n: number) => null);
  c.schedule("sync-me", { cron: "0 3 * * *", timezone: "Europe/Berlin" }, t3.s(2));
  await c.syncSchedules();
  let row = (await db.query("select args, next_run_at, enabled from jobs.schedules where name = 'sync-me'")).rows[0];
  assert.deepEqual(row.args, [2]);
  assert.equal(row.next_run_at.toISOString(), "2030-01-01T02:00:00.000Z");
  assert.equal(row.enabled, false, "a schedule paused with pgjobs schedule disable stays paused across worker restarts");
  const d = newJobs();
  d.schedule("sync-me", { cron: "0 4 * * *", timezone: "Europe/Berlin" }, d.task("sync_task", async (_ctx, _n: number) => null).s(2));
  await d.syncSchedules();
  row = (await db.query("select next_run_at, now() as now from jobs.schedules where name = 'sync-me'")).rows[0];
  const [want] = nextFireTimes({ cron: "0 4 * * *", everyMs: null, timezone: "Europe/Berlin" }, row.now, 1);
  assert.equal(row.next_run_at.toISOString(), want!.toISOString());
});

test("bad schedule definitions in code are refused with one-line errors", LIMIT, () => {
  const jobs = createJobs({ connectionString: "postgres://nobody@127.0.0.1:1/none", logLevel: "silent" });
  const t = jobs.task("known", async () => null);
  const refuse = (fn: () => unknown, re: RegExp) => assert.throws(fn, (err: Error) => re.test(err.message) && !err.message.includes("\n"));
  refuse(() => jobs.schedule("bad-cron", { cron: "61 * * * *" }, t.s()), /invalid cron expression "61 \* \* \* \*"/);
  refuse(() => jobs.schedule("bad-fields", { cron: "* * *" }, t.s()), /it has 3 fields; use 5/);
  refuse(() => jobs.schedule("hashed", { cron: "H * * * *" }, t.s()), /hashed fields \(H\) are not supported/);
  refuse(() => jobs.schedule("bad-tz", { cron: "0 0 * * *", timezone: "Europe/Atlantis" }, t.s()), /unknown timezone "Europe\/Atlantis"/);
  refuse(() => jobs.schedule("both", { cron: "0 0 * * *", every: "1m" }, t.s()), /exactly one of cron/);
  refuse(() => jobs.schedule("fast", { every: "500ms" }, t.s()), /at least 1s/);
  refuse(() => jobs.schedule("bad-misfire", { every: "1m", misfire: "later" as never }, t.s()), /misfire must be "once", "all" or "skip"/);
  refuse(() => jobs.schedule("unknown", { every: "1m" }, { task: "nobody", args: [], options: {} } as never), /unknown task "nobody"/);
  refuse(() => jobs.schedule("bad name!", { every: "1m" }, t.s()), /invalid schedule name/);
  jobs.schedule("dup", { every: "1m" }, t.s());
  refuse(() => jobs.schedule("dup", { every: "1m" }, t.s()), /schedule dup is defined twice/);
  return jobs.close();
});

test("rows written with SQL: one without next_run_at gets its first tick; one with an invalid cron is paused, and the others still fire", LIMIT, async () => {
  const jobs = newJobs();
  jobs.task("fine_task", async () => null);
  await db.query(`insert into jobs.schedules (name, cron, task, next_run_at) values
    ('broken', '99 * * * *', 'fine_task', now() - interval '1 s'), ('fine', '* * * * * *', 'fine_task', now() - interval '1 s'),
    ('from-sql', '0 * * * *', 'fine_task', null)`);
  const scheduler = jobs.scheduler();
  assert.equal(await scheduler.fireDue(), 3);
  assert.equal((await schedule("broken")).enabled, false);
  assert.equal((await fireTimes("broken")).length, 0);
  assert.ok((await fireTimes("fine")).length > 0);
  const { rows } = await db.query("select next_run_at, (date_trunc('hour', now() at time zone 'UTC') + interval '1 hour') at time zone 'UTC' as want from jobs.schedules where name = 'from-sql'");
  assert.deepEqual(rows[0].next_run_at, rows[0].want, "the first whole hour after now");
  assert.deepEqual(await fireTimes("from-sql"), []);
  // At the same instant as the first pass (given, not the clock: the every-second schedule would
  // be due again once a second boundary passed between the two calls).
  const { rows: [at] } = await db.query<{ now: Date }>("select max(next_run_at) - interval '1 s' as now from jobs.schedules where name = 'fine'");
  assert.equal(await scheduler.fireDue(100, at!.now), 0, "nothing left due: the broken row does not spin the loop");
});
