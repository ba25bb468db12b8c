// pgjobs' own benchmark: the scenarios of ../shared/peers (so figures line up with the peers'
// harness), plus drains with two worker processes and over a 1,000,000-task backlog, and the SQL
// floor (the same statements with no worker around them). Every scenario run gets a fresh
// database, prints one JSON line, and verifies that every task ran exactly once and nothing is
// left unfinished. Compare ratios within one run: this machine is shared and noisy.
//
//   npm run bench [-- --only drain,latency] [--reps 3] [--backlog-1m] [--out FILE]
//                    [--prefetch N|c|auto] [--vacuum-analyze] [--profile] [--jobs N] [--cpu-prof DIR]
//                    [--no-worker-vacuum] [--worker-node-args "--max-old-space-size=64"] [--seconds S]
//
// Scenarios (default: all but backlog-1m; --only takes names or prefixes, e.g. "drain"):
//   enqueue-single  10,000 noop.delay() calls from 8 concurrent producers (one Jobs, one pool)
//   enqueue-batch   50,000 tasks as 50 jobs.enqueueMany() calls of 1,000
//   drain-10        20,000 no-op tasks pre-filled, one worker process at concurrency 10; timed from
//                   worker.start() until the database shows all of them succeeded
//   drain-50        the same at concurrency 50
//   io-drain        5,000 tasks sleeping 20 ms, concurrency 50 (ideal 2 s)
//   latency         idle worker (c=10) listening for 2 s, then 300 delay() calls 10 ms apart;
//                   handler start minus the moment delay() resolved, p50/p95/p99
//   drain-2proc     20,000 no-op tasks, two worker processes at concurrency 25 each (vs drain-50)
//   chord           chord(group of 1,000 members, callback), in process, worker at c=50, idle and
//                   listening 2 s first; from the applyAsync() call until the callback's handle.get()
//                   resolves; rate = members/s. Also the applyAsync() time and the lag from the last
//                   member's return to the callback's start
//   floor           the SQL floor: task_claim_many + task_finish_many in a tight loop (batch 10
//                   and 50, one and two connections), task_enqueue_many with 1 row x 8 connections
//                   and 1,000 rows x 1 connection
//   backlog-1m      opt-in (--backlog-1m, or --only backlog-1m): 1,000,000 tasks pre-filled, one
//                   worker process at c=50; the rate of every 100,000 slice, dead tuples and
//                   autovacuum along the way, and the worker's RSS
import { fork, type ChildProcess } from "node:child_process";
import { appendFileSync, mkdirSync } from "node:fs";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { chord, createJobs, group } from "../src/index.js";
import { cpuDelta, cpuSnapshot, dist, freshDatabase, median, round, SCHEMA, sleep } from "./common.js";
import { claimFinishCycle, enqueueLoop, prefillSql } from "./floor.js";
import type { Final, Progress, WorkerProcConfig } from "./worker-proc.js";

const { values: opt } = parseArgs({
  options: {
    only: { type: "string" },
    reps: { type: "string", default: "1" },
    "backlog-1m": { type: "boolean", default: false },
    out: { type: "string" },
    prefetch: { type: "string" },
    "vacuum-analyze": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    jobs: { type: "string" },
    "cpu-prof": { type: "string" },
    "no-worker-vacuum": { type: "boolean", default: false },
    "worker-node-args": { type: "string" },
    seconds: { type: "string" },
  },
});

type Line = Record<string, unknown> & { scenario: string };
type Scenario = { name: string; run: () => Promise<Line> };

// --prefetch N, "c" (the same as each scenario's concurrency) or "auto"; not given: the library's
// default (WorkerOptions.prefetch).
const prefetchFor = (concurrency: number): number | "auto" | undefined =>
  opt.prefetch === undefined ? undefined : opt.prefetch === "c" ? concurrency : opt.prefetch === "auto" ? "auto" : Number(opt.prefetch);
const jobsOverride = opt.jobs ? Number(opt.jobs) : null;
const size = (n: number) => jobsOverride ?? n;
// --seconds S: how long each of the SQL floor's loops runs (default 3 s per claim/finish cycle, 4 s
// per enqueue loop); the bench's own smoke test runs them for a fraction of a second.
const loopSeconds = (s: number) => (opt.seconds ? Number(opt.seconds) : s);

// ---- helpers ------------------------------------------------------------------------------------

async function withDatabase<T>(tag: string, fn: (db: { name: string; url: string; harness: pg.Pool }) => Promise<T>): Promise<T> {
  const db = await freshDatabase(tag);
  const harness = new pg.Pool({ connectionString: db.url, max: 2 });
  harness.on("error", () => {});
  try {
    return await fn({ ...db, harness });
  } finally {
    await harness.end().catch(() => {});
    await db.drop().catch((e) => console.error(`drop ${db.name}: ${e?.message ?? e}`));
  }
}

async function migrated(url: string) {
  const jobs = createJobs({ connectionString: url, logLevel: "warn" });
  await jobs.migrate();
  const noop = jobs.task("noop", async (_ctx, _p: { i: number }) => null);
  return { jobs, noop };
}

/** Counts by state, and tasks that were attempted other than exactly once. */
async function dbVerify(harness: pg.Pool) {
  const { rows } = await harness.query<{ state: string; n: number; not_once: number }>(
    `select state::text, count(*)::int as n, count(*) filter (where attempts <> 1)::int as not_once from ${SCHEMA}.tasks group by 1`);
  const states = Object.fromEntries(rows.map((r) => [r.state, r.n]));
  return { states, attempts_not_1: rows.reduce((a, r) => a + r.not_once, 0) };
}

async function succeededCount(harness: pg.Pool): Promise<number> {
  const { rows } = await harness.query<{ n: number }>(`select count(*)::int as n from ${SCHEMA}.tasks where state = 'succeeded'`);
  return rows[0]!.n;
}

async function tableStats(harness: pg.Pool) {
  const { rows } = await harness.query(
    `select n_live_tup::int as live, n_dead_tup::int as dead, vacuum_count::int as vacuums, autovacuum_count::int as autovacuums, autoanalyze_count::int as autoanalyzes,
            coalesce(pg_relation_size(to_regclass('${SCHEMA}.tasks_ready_idx')), 0)::bigint / 8192 as ready_idx_pages
       from pg_stat_user_tables where relid = '${SCHEMA}.tasks'::regclass`);
  return rows[0] as Record<string, number>;
}

// ---- enqueue ------------------------------------------------------------------------------------

function enqueueScenario(kind: "single" | "batch"): Scenario {
  return {
    name: `enqueue-${kind}`,
    run: () => withDatabase(`enq_${kind}`, async ({ name, url, harness }) => {
      const n = size(kind === "single" ? 10_000 : 50_000);
      const { jobs, noop } = await migrated(url);
      const ids: string[] = new Array(n);
      const c0 = process.cpuUsage();
      const s0 = await cpuSnapshot(harness, name);
      const t0 = performance.now();
      if (kind === "single") {
        let next = 0;
        await Promise.all(Array.from({ length: 8 }, async () => {
          for (let i = next++; i < n; i = next++) ids[i] = (await noop.delay({ i })).id;
        }));
      } else {
        for (let s = 0; s < n; s += 1000) {
          const rs = await jobs.enqueueMany(Array.from({ length: Math.min(1000, n - s) }, (_, k) => noop.s({ i: s + k })));
          rs.forEach((r, k) => (ids[s + k] = r.id));
        }
      }
      const t1 = performance.now();
      const s1 = await cpuSnapshot(harness, name);
      const c1 = process.cpuUsage(c0);
      // Coalesced enqueues must hand each caller the id of its own row.
      const { rows: [v] } = await harness.query<{ in_db: number; ready: number; distinct_i: number; id_matches: number }>(
        `select (select count(*)::int from ${SCHEMA}.tasks) as in_db,
                (select count(*)::int from ${SCHEMA}.tasks where state = 'ready') as ready,
                (select count(distinct args->0->>'i')::int from ${SCHEMA}.tasks) as distinct_i,
                (select count(*)::int from ${SCHEMA}.tasks t join unnest($1::bigint[]) with ordinality u(id, k) on t.id = u.id
                  where (t.args->0->>'i')::int = u.k - 1) as id_matches`, [ids]);
      await jobs.close();
      const seconds = (t1 - t0) / 1000;
      return {
        scenario: `enqueue-${kind}`, jobs: n, ...(kind === "single" ? { producers: 8 } : { batch: 1000 }),
        seconds: round(seconds), rate: round(n / seconds, 1),
        cpu: cpuDelta(s0, s1, (c1.user + c1.system) / 1e6),
        verify: { ...v!, ok: v!.in_db === n && v!.ready === n && v!.distinct_i === n && v!.id_matches === n },
      };
    }),
  };
}

// ---- drains (worker in child processes) ---------------------------------------------------------

interface DrainSpec {
  name: string;
  n: number;
  procs: number;
  concurrency: number;
  workMs: number;
  capS: number;
  sliceEvery?: number;
  sqlPrefill?: boolean;
}

function startChild(cfg: WorkerProcConfig): { child: ChildProcess; loaded: Promise<void>; final: Promise<Final>; latest: () => Progress | null; onProgress(fn: (p: Progress) => void): void } {
  // --cpu-prof DIR: a V8 CPU profile of each worker process (written when it exits).
  // --worker-node-args "...": extra Node flags for the worker processes (e.g. --max-old-space-size=64).
  const execArgv = [
    ...(opt["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${opt["cpu-prof"]}`] : []),
    ...(opt["worker-node-args"]?.split(/\s+/).filter(Boolean) ?? []),
  ];
  const child = fork(fileURLToPath(new URL("./worker-proc.js", import.meta.url)), [JSON.stringify(cfg)], { stdio: ["ignore", 2, 2, "ipc"], execArgv }); // worker logs go to our stderr: stdout is JSON lines
  let latest: Progress | null = null;
  const listeners: Array<(p: Progress) => void> = [];
  let loadedResolve!: () => void;
  let finalResolve!: (f: Final) => void;
  const loaded = new Promise<void>((r) => (loadedResolve = r));
  const final = new Promise<Final>((resolve, reject) => {
    finalResolve = resolve;
    // Messages still in flight are delivered after "exit": give them a moment.
    child.on("exit", (code) => setTimeout(() => reject(new Error(`worker process exited (${code}) before reporting`)), 2_000));
  });
  final.catch(() => {});
  child.on("message", (m: { t: string }) => {
    if (m.t === "loaded") loadedResolve();
    else if (m.t === "progress") {
      latest = m as Progress;
      for (const fn of listeners) fn(latest);
    } else if (m.t === "final") finalResolve(m as Final);
  });
  return { child, loaded, final, latest: () => latest, onProgress: (fn) => listeners.push(fn) };
}

function drainScenario(spec: DrainSpec): Scenario {
  return {
    name: spec.name,
    run: () => withDatabase(spec.name, async ({ name, url, harness }) => {
      const n = spec.sqlPrefill ? spec.n : size(spec.n);
      const { jobs, noop } = await migrated(url);
      const tp = performance.now();
      if (spec.sqlPrefill) await prefillSql(harness, n);
      else for (let s = 0; s < n; s += 1000) await jobs.enqueueMany(Array.from({ length: Math.min(1000, n - s) }, (_, k) => noop.s({ i: s + k })));
      const prefillS = (performance.now() - tp) / 1000;
      await jobs.close();
      if (opt["vacuum-analyze"]) await harness.query(`vacuum analyze ${SCHEMA}.tasks`);
      const tableBefore = await tableStats(harness);

      const cfg: WorkerProcConfig = {
        url, n, concurrency: spec.concurrency, prefetch: prefetchFor(spec.concurrency), workMs: spec.workMs, progressMs: n > 100_000 ? 100 : 20,
        poolSize: Math.max(10, spec.concurrency + 2), profile: opt.profile, vacuum: !opt["no-worker-vacuum"],
      };
      const kids = Array.from({ length: spec.procs }, () => startChild(cfg));
      await Promise.all(kids.map((k) => k.loaded));
      const total = () => kids.reduce((a, k) => a + (k.latest()?.finished ?? 0), 0);

      // Progress series: (seconds since start, tasks finished by handlers) for the slice rates.
      const series: Array<[number, number]> = [];
      const tableSeries: Array<Record<string, number>> = [];
      let allDone!: () => void;
      const done = new Promise<void>((r) => (allDone = r));
      let t0 = 0;
      for (const k of kids) k.onProgress(() => {
        const f = total();
        series.push([(performance.now() - t0) / 1000, f]);
        if (f >= n) allDone();
      });
      const s0 = await cpuSnapshot(harness, name);
      t0 = performance.now();
      for (const k of kids) k.child.send({ t: "start" });
      let sampler: NodeJS.Timeout | undefined;
      if (spec.sliceEvery) {
        sampler = setInterval(() => {
          const w = kids[0]!.latest();
          tableStats(harness)
            .then((s) => tableSeries.push({ t_s: round((performance.now() - t0) / 1000, 1)!, finished: total(), ...s, worker_rss_mb: w?.rss_mb ?? NaN, worker_heap_mb: w?.heap_mb ?? NaN, pending_acks: w?.pending_acks ?? NaN }))
            .catch(() => {});
        }, 5_000);
      }
      const capped = await Promise.race([done.then(() => false), sleep(spec.capS * 1000).then(() => true)]);
      const tHandlers = performance.now();
      clearInterval(sampler);
      let completed = await succeededCount(harness);
      while (!capped && completed < n && performance.now() - tHandlers < 10_000) {
        await sleep(n > 100_000 ? 50 : 10);
        completed = await succeededCount(harness);
      }
      const tDb = performance.now();
      const s1 = await cpuSnapshot(harness, name);
      const nodeCpu = kids.reduce((a, k) => a + (k.latest()?.cpu_s ?? 0), 0);
      const tableAfter = await tableStats(harness);
      for (const k of kids) k.child.send({ t: "stop" });
      const finals = await Promise.all(kids.map((k) => k.final));

      // Exactly once across processes: merge the started bitmaps.
      const merged = new Uint8Array(n);
      for (const f of finals) {
        const b = Buffer.from(f.started_b64, "base64");
        for (let i = 0; i < n; i++) merged[i] += b[i]!;
      }
      let crossDuplicates = 0, neverRan = 0;
      for (let i = 0; i < n; i++) {
        if (merged[i]! > 1) crossDuplicates++;
        if (merged[i] === 0) neverRan++;
      }
      const v = await dbVerify(harness);
      const seconds = (tDb - t0) / 1000;
      const succeeded = v.states["succeeded"] ?? 0;
      const verify = {
        invocations: finals.reduce((a, f) => a + f.invocations, 0),
        handlers_finished: finals.reduce((a, f) => a + f.finished, 0),
        duplicates: crossDuplicates,
        never_ran: neverRan,
        out_of_range: finals.reduce((a, f) => a + f.out_of_range, 0),
        db_states: v.states,
        attempts_not_1: v.attempts_not_1,
        stale_acks: finals.reduce((a, f) => a + f.events.stale, 0),
        ok: !capped && succeeded === n && Object.keys(v.states).length === 1 && crossDuplicates === 0 && neverRan === 0 && v.attempts_not_1 === 0,
      };

      const line: Line = {
        scenario: spec.name, jobs: n, concurrency: spec.concurrency, procs: spec.procs, prefetch: prefetchFor(spec.concurrency) ?? "library default",
        ...(opt["no-worker-vacuum"] ? { worker_vacuum: false } : {}),
        ...(opt["vacuum-analyze"] ? { after_prefill: "vacuum analyze" } : {}),
        finished: !capped, seconds: round(seconds), rate: round(completed / seconds, 1),
        handlers_done_s: round((tHandlers - t0) / 1000), db_lag_s: round((tDb - tHandlers) / 1000), prefill_s: round(prefillS, 1),
        cpu: cpuDelta(s0, s1, nodeCpu),
        node_cpu_us_per_task: round((1e6 * nodeCpu) / completed, 1),
        pg_cpu_us_per_task: round((1e6 * (cpuDelta(s0, s1, nodeCpu).pg_backends_cpu_s ?? 0)) / completed, 1),
        claims: finals.map((f) => ({ calls: f.events.claimed_calls, rows_per_claim: round(f.events.claimed_rows / Math.max(1, f.events.claimed_calls), 1) })),
        worker_rss_max_mb: Math.max(...finals.map((f) => f.rss_max_mb)),
        worker_heap_max_mb: Math.max(...finals.map((f) => f.heap_max_mb)),
        pending_acks_max: Math.max(...finals.map((f) => f.pending_acks_max)),
        table_before: tableBefore, table_after: tableAfter,
        verify,
      };
      if (spec.workMs) Object.assign(line, { work_ms: spec.workMs, ideal_s: round((n * spec.workMs) / 1000 / (spec.concurrency * spec.procs)), efficiency: round((n * spec.workMs) / 1000 / (spec.concurrency * spec.procs) / seconds) });
      if (spec.sliceEvery) {
        // When did the handlers cross each multiple of sliceEvery? (linear between samples)
        const crossings: number[] = [0];
        for (let target = spec.sliceEvery, j = 1; target <= n && j < series.length; target += spec.sliceEvery) {
          while (j < series.length && series[j]![1] < target) j++;
          if (j >= series.length) break;
          const [ta, fa] = series[j - 1]!, [tb, fb] = series[j]!;
          crossings.push(ta + ((target - fa) / Math.max(1, fb - fa)) * (tb - ta));
        }
        line.slices = crossings.slice(1).map((t, k) => ({ upto: (k + 1) * spec.sliceEvery!, rate: round(spec.sliceEvery! / (t - crossings[k]!), 0) }));
        line.table_series = tableSeries;
      }
      if (opt.profile) line.statements = finals.map((f) => f.statements);
      return line;
    }),
  };
}

// ---- latency (in process, like the peers' harness) ----------------------------------------------

const latencyScenario: Scenario = {
  name: "latency",
  run: () => withDatabase("latency", async ({ name, url, harness }) => {
    const n = 300;
    const { jobs: producer, noop } = await migrated(url);
    const tHandler = new Float64Array(n).fill(NaN), tCall = new Float64Array(n).fill(NaN), tResolved = new Float64Array(n).fill(NaN);
    let received = 0, duplicates = 0, allDone!: () => void;
    const all = new Promise<void>((r) => (allDone = r));
    const wjobs = createJobs({ connectionString: url, logLevel: "warn", poolSize: 12 });
    wjobs.task("noop", async (_ctx, p: { i: number }) => {
      const now = performance.now();
      if (!Number.isNaN(tHandler[p.i]!)) duplicates++;
      else {
        tHandler[p.i] = now;
        if (++received === n) allDone();
      }
      return null;
    });
    const pf = prefetchFor(10);
    const w = wjobs.worker({ queues: ["default"], concurrency: 10, ...(pf !== undefined ? { prefetch: pf } : {}) });
    await w.start();
    await sleep(2_000);
    const c0 = process.cpuUsage();
    const s0 = await cpuSnapshot(harness, name);
    for (let i = 0; i < n; i++) {
      tCall[i] = performance.now();
      await noop.delay({ i });
      tResolved[i] = performance.now();
      await sleep(10);
    }
    const timedOut = await Promise.race([all.then(() => false), sleep(30_000).then(() => true)]);
    const s1 = await cpuSnapshot(harness, name);
    const c1 = process.cpuUsage(c0);
    await w.stop();
    await wjobs.close();
    await producer.close();
    const v = await dbVerify(harness);
    const lat = Array.from(tHandler, (t, i) => t - tResolved[i]!);
    const latency = dist(lat);
    return {
      scenario: "latency", jobs: n, concurrency: 10, gap_ms: 10,
      latency, latency_from_call: dist(Array.from(tHandler, (t, i) => t - tCall[i]!)), enqueue_call: dist(Array.from(tResolved, (t, i) => t - tCall[i]!)),
      handler_before_enqueue_resolved: lat.filter((x) => x < 0).length,
      p50_ms: latency?.p50_ms, p95_ms: latency?.p95_ms, p99_ms: latency?.p99_ms,
      cpu: cpuDelta(s0, s1, (c1.user + c1.system) / 1e6),
      verify: { received, duplicates, db_states: v.states, attempts_not_1: v.attempts_not_1,
        ok: !timedOut && received === n && duplicates === 0 && v.states["succeeded"] === n && Object.keys(v.states).length === 1 && v.attempts_not_1 === 0 },
    };
  }),
};

// ---- chord (in process: the members, the callback and get() share one clock) --------------------

const chordScenario: Scenario = {
  name: "chord",
  run: () => withDatabase("chord", async ({ name, url, harness }) => {
    const n = size(1_000), concurrency = 50;
    const { jobs: producer } = await migrated(url);
    // Which member ran, and when its handler started and returned (performance.now()).
    const ran = new Uint8Array(n), memberEnd = new Float64Array(n).fill(NaN);
    let memberInvocations = 0, outOfRange = 0;
    let callbackInvocations = 0, callbackStart = NaN, callbackEnd = NaN;
    let callbackSaw: { n: number; in_order: number } | null = null;
    const member = async (_ctx: unknown, i: number) => {
      memberInvocations++;
      if (!(Number.isInteger(i) && i >= 0 && i < n)) outOfRange++;
      else {
        ran[i]!++;
        memberEnd[i] = performance.now();
      }
      return i;
    };
    const callback = async (_ctx: unknown, results: number[]) => {
      callbackStart = performance.now();
      callbackInvocations++;
      // Member order: member i returned i, so results[i] must be i.
      const inOrder = Array.isArray(results) ? results.filter((r, i) => r === i).length : 0;
      callbackSaw = { n: Array.isArray(results) ? results.length : -1, in_order: inOrder };
      callbackEnd = performance.now();
      return callbackSaw;
    };
    // The producer builds the signatures (a canvas needs its tasks registered); only the worker's
    // Jobs runs them.
    const pMember = producer.task("bench.chord_member", member);
    const pCallback = producer.task("bench.chord_callback", callback);
    // Pool: concurrency + 2, as the drains' worker processes.
    const wjobs = createJobs({ connectionString: url, logLevel: "warn", poolSize: concurrency + 2 });
    wjobs.task("bench.chord_member", member);
    wjobs.task("bench.chord_callback", callback);
    const pf = prefetchFor(concurrency);
    const w = wjobs.worker({ queues: ["default"], concurrency, ...(pf !== undefined ? { prefetch: pf } : {}) });
    await w.start();
    // Idle and listening before the timed window, as in latency: the enqueue's NOTIFY wakes it.
    await sleep(2_000);
    const canvas = chord(group(Array.from({ length: n }, (_, i) => pMember.s(i))), pCallback.s());

    const c0 = process.cpuUsage();
    const s0 = await cpuSnapshot(harness, name);
    const t0 = performance.now();
    const handle = await canvas.applyAsync();
    const tEnq = performance.now();
    let got: unknown = null, getError: string | null = null;
    try {
      got = await handle.get({ timeout: 60_000 });
    } catch (e) {
      getError = String((e as Error)?.message ?? e).slice(0, 500);
    }
    const t1 = performance.now();
    const s1 = await cpuSnapshot(harness, name);
    const c1 = process.cpuUsage(c0);
    // Stop the worker before counting, so a member run twice after the callback is still seen.
    await w.stop();
    await wjobs.close();
    await producer.close();

    let duplicates = 0, neverRan = 0;
    for (let i = 0; i < n; i++) {
      if (ran[i]! > 1) duplicates++;
      if (ran[i] === 0) neverRan++;
    }
    const lastMemberEnd = Math.max(...memberEnd.filter((x) => Number.isFinite(x)));
    const v = await dbVerify(harness);
    const callbackId = (handle as { id?: string }).id ?? null;
    const { rows: chords } = await harness.query<{ total: number; completed: number; remaining: number; failed: number; state: string; callback_id: string | null; members: number; fire_to_callback_start_ms: number | null; open_ms: number | null }>(
      `select p.total, p.completed, p.remaining, p.failed, p.state, p.callback_id::text,
              (select count(*)::int from ${SCHEMA}.tasks t where t.chord_id = p.chord_id and t.state = 'succeeded') as members,
              (extract(epoch from (p.finished_at - p.created_at)) * 1000)::float8 as open_ms,
              (select (extract(epoch from (t.started_at - p.finished_at)) * 1000)::float8 from ${SCHEMA}.tasks t where t.id = p.callback_id) as fire_to_callback_start_ms
         from ${SCHEMA}.chord_progress p`);
    const ch = chords[0];
    const seen = callbackSaw as { n: number; in_order: number } | null;
    const gotV = got as { n?: number; in_order?: number } | null;
    const seconds = (t1 - t0) / 1000;
    const cpu = cpuDelta(s0, s1, (c1.user + c1.system) / 1e6);
    const tasks = n + 1; // the members and the callback
    const verify = {
      member_invocations: memberInvocations, duplicates, never_ran: neverRan, out_of_range: outOfRange,
      callback_invocations: callbackInvocations, callback_results: seen?.n ?? null, callback_results_in_order: seen?.in_order ?? null,
      get_result_ok: gotV?.n === n && gotV?.in_order === n, get_error: getError,
      db_states: v.states, attempts_not_1: v.attempts_not_1,
      chords: chords.length, chord: ch ? { total: ch.total, completed: ch.completed, remaining: ch.remaining, failed: ch.failed, state: ch.state, members_succeeded: ch.members, callback_id_matches: ch.callback_id === callbackId } : null,
      ok: getError === null && memberInvocations === n && duplicates === 0 && neverRan === 0 && outOfRange === 0
        && callbackInvocations === 1 && seen?.n === n && seen?.in_order === n && gotV?.n === n && gotV?.in_order === n
        && v.states["succeeded"] === tasks && Object.keys(v.states).length === 1 && v.attempts_not_1 === 0
        && chords.length === 1 && ch!.total === n && ch!.completed === n && ch!.remaining === 0 && ch!.failed === 0
        && ch!.state === "fired" && ch!.members === n && ch!.callback_id === callbackId,
    };
    return {
      scenario: "chord", members: n, concurrency, prefetch: pf ?? "library default",
      seconds: round(seconds), rate: round(n / seconds, 1),
      enqueue_ms: round(tEnq - t0, 1),
      // t0 -> the last member's handler returned; that -> the callback's handler started; the
      // callback's handler returned -> get() resolved. Together with the callback's own run
      // they make up `seconds`.
      members_done_ms: round(lastMemberEnd - t0, 1),
      callback_lag_ms: round(callbackStart - lastMemberEnd, 1),
      callback_to_get_ms: round(t1 - callbackEnd, 1),
      // In the database: chord applied -> fired (the acknowledgement that took remaining to 0),
      // and fired -> the callback's claim (started_at). Postgres' now() is the transaction start.
      db: { chord_open_ms: round(ch?.open_ms, 1), fire_to_callback_start_ms: round(ch?.fire_to_callback_start_ms, 1) },
      cpu,
      // Producer, worker and waiter share this process: node CPU is all three.
      node_cpu_us_per_task: round((1e6 * (cpu.node_cpu_s ?? 0)) / tasks, 1),
      pg_cpu_us_per_task: round((1e6 * (cpu.pg_backends_cpu_s ?? 0)) / tasks, 1),
      verify,
    };
  }),
};

// ---- the SQL floor ------------------------------------------------------------------------------

const floorScenario: Scenario = {
  name: "floor",
  run: () => withDatabase("floor", async ({ name, url, harness }) => {
    const { jobs } = await migrated(url);
    await jobs.close();
    const cycles = [];
    for (const [batch, connections] of [[10, 1], [10, 2], [50, 1], [50, 2]] as const) {
      for (const analyzed of [false, true]) {
        await harness.query(`truncate ${SCHEMA}.tasks`);
        await prefillSql(harness, size(100_000));
        if (analyzed) await harness.query(`analyze ${SCHEMA}.tasks`);
        const r = await claimFinishCycle(url, name, harness, { batch, connections, seconds: loopSeconds(3) });
        cycles.push({ ...r, tables: analyzed ? "analyzed" : "fresh" });
      }
    }
    await harness.query(`truncate ${SCHEMA}.tasks`);
    const enq1 = await enqueueLoop(url, name, harness, { rows: 1, connections: 8, seconds: loopSeconds(4) });
    await harness.query(`truncate ${SCHEMA}.tasks`);
    const enq1000 = await enqueueLoop(url, name, harness, { rows: 1000, connections: 1, seconds: loopSeconds(4) });
    const v = await harness.query<{ n: number }>(`select count(*)::int as n from ${SCHEMA}.tasks`);
    return {
      scenario: "floor",
      cycles,
      enqueue: [enq1, enq1000],
      verify: { ok: cycles.every((c) => c.tasks > 0) && v.rows[0]!.n === enq1000.tasks },
    };
  }),
};

// ---- plan ---------------------------------------------------------------------------------------

const ALL: Scenario[] = [
  enqueueScenario("single"),
  enqueueScenario("batch"),
  drainScenario({ name: "drain-10", n: 20_000, procs: 1, concurrency: 10, workMs: 0, capS: 60 }),
  drainScenario({ name: "drain-50", n: 20_000, procs: 1, concurrency: 50, workMs: 0, capS: 60 }),
  drainScenario({ name: "io-drain", n: 5_000, procs: 1, concurrency: 50, workMs: 20, capS: 60 }),
  latencyScenario,
  drainScenario({ name: "drain-2proc", n: 20_000, procs: 2, concurrency: 25, workMs: 0, capS: 60 }),
  chordScenario,
  floorScenario,
  drainScenario({ name: "backlog-1m", n: 1_000_000, procs: 1, concurrency: 50, workMs: 0, capS: 1_200, sliceEvery: 100_000, sqlPrefill: true }),
];

const only = opt.only?.split(",").map((s) => s.trim()).filter(Boolean);
const selected = ALL.filter((s) =>
  only ? only.some((o) => s.name === o || s.name.startsWith(`${o}-`)) : s.name !== "backlog-1m" || opt["backlog-1m"]);
if (opt["backlog-1m"] && !selected.some((s) => s.name === "backlog-1m")) selected.push(ALL.at(-1)!);
if (selected.length === 0) {
  console.error(`no scenario matches --only ${opt.only}; scenarios: ${ALL.map((s) => s.name).join(", ")}`);
  process.exit(2);
}

const resultsDir = fileURLToPath(new URL("../../bench/results/", import.meta.url));
mkdirSync(resultsDir, { recursive: true });
const stamp = new Date().toISOString().replace(/:\d\d\.\d+Z$/, "").replace(":", "");
const outFile = opt.out ?? `${resultsDir}runs-${stamp}.jsonl`;
const reps = Number(opt.reps);
const lines: Line[] = [];
const tSuite = performance.now();
console.error(`pgjobs bench: ${selected.map((s) => s.name).join(", ")} x ${reps} -> ${outFile}`);
for (let rep = 1; rep <= reps; rep++) {
  for (const s of selected) {
    const t = performance.now();
    const la = loadavg().map((x) => round(x, 2));
    let line: Line;
    try {
      line = { ...(await s.run()) };
    } catch (e) {
      line = { scenario: s.name, error: String((e as Error)?.stack ?? e).slice(0, 2000) };
    }
    line = { rep, ...line, node: process.version, at: new Date().toISOString(), loadavg_before: la, wall_s: round((performance.now() - t) / 1000, 1) };
    lines.push(line);
    console.log(JSON.stringify(line));
    appendFileSync(outFile, JSON.stringify(line) + "\n");
  }
}

// ---- summary: medians per scenario, and the targets that can be judged from this run alone ---------

const by = new Map<string, Line[]>();
for (const l of lines) (by.get(l.scenario) ?? by.set(l.scenario, []).get(l.scenario)!).push(l);
const fmt = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? "—" : x >= 100 ? Math.round(x).toLocaleString("en-US") : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const ok = (ls: Line[]) => `${ls.filter((l) => (l.verify as { ok?: boolean } | undefined)?.ok).length}/${ls.length}`;
const med = (ls: Line[], f: (l: Line) => unknown) => median(ls.map((l) => f(l) as number));
const out: string[] = [];
out.push("", `pgjobs bench, ${reps} rep(s), medians (node ${process.version}; ${round((performance.now() - tSuite) / 1000, 0)} s)`, "");
out.push("| scenario | runs | jobs/s | s | p50 / p95 / p99 ms | node µs/task | PG µs/task | worker RSS MB | exactly once |");
out.push("|---|---|---|---|---|---|---|---|---|");
for (const [sc, ls] of by) {
  if (sc === "floor") continue;
  const lat = sc === "latency" ? `${fmt(med(ls, (l) => l.p50_ms))} / ${fmt(med(ls, (l) => l.p95_ms))} / ${fmt(med(ls, (l) => l.p99_ms))}` : "—";
  out.push(`| ${sc} | ${ls.length} | ${fmt(med(ls, (l) => l.rate))} | ${fmt(med(ls, (l) => l.seconds))} | ${lat} | ${fmt(med(ls, (l) => l.node_cpu_us_per_task))} | ${fmt(med(ls, (l) => l.pg_cpu_us_per_task))} | ${fmt(med(ls, (l) => l.worker_rss_max_mb))} | ${ok(ls)} |`);
}
const floor = by.get("floor");
if (floor) {
  out.push("", "SQL floor (task_claim_many + task_finish_many loop; task_enqueue_many), medians:", "");
  out.push("| what | tables | jobs/s | claim ms | finish ms | PG µs/task |", "|---|---|---|---|---|---|");
  type Cyc = { batch: number; connections: number; tables: string; rate: number; claim_ms_mean: number; finish_ms_mean: number; pg_cpu_us_per_task: number };
  const cyc = floor.flatMap((l) => (l.cycles as Cyc[]) ?? []);
  const keys = [...new Set(cyc.map((c) => `${c.batch}|${c.connections}|${c.tables}`))];
  for (const k of keys) {
    const cs = cyc.filter((c) => `${c.batch}|${c.connections}|${c.tables}` === k);
    const [b, cn, tb] = k.split("|");
    out.push(`| claim+finish b=${b}, ${cn} conn | ${tb} | ${fmt(median(cs.map((c) => c.rate)))} | ${fmt(median(cs.map((c) => c.claim_ms_mean)))} | ${fmt(median(cs.map((c) => c.finish_ms_mean)))} | ${fmt(median(cs.map((c) => c.pg_cpu_us_per_task)))} |`);
  }
  type Enq = { rows_per_statement: number; connections: number; rate: number; pg_cpu_us_per_task: number };
  const enq = floor.flatMap((l) => (l.enqueue as Enq[]) ?? []);
  for (const r of [1, 1000]) {
    const es = enq.filter((e) => e.rows_per_statement === r);
    if (es.length) out.push(`| enqueue_many ${r} row(s) x ${es[0]!.connections} conn | — | ${fmt(median(es.map((e) => e.rate)))} | — | — | ${fmt(median(es.map((e) => e.pg_cpu_us_per_task)))} |`);
  }
}
const r = (a: string, b: string) => {
  const x = by.get(a), y = by.get(b);
  return x && y ? (med(x, (l) => l.rate) ?? NaN) / (med(y, (l) => l.rate) ?? NaN) : null;
};
const targets: string[] = [];
const latL = by.get("latency");
if (latL) targets.push(`latency p50 ${fmt(med(latL, (l) => l.p50_ms))} ms (target ≤ 1), p99 ${fmt(med(latL, (l) => l.p99_ms))} ms (target ≤ 3)`);
const io = by.get("io-drain");
if (io) targets.push(`io-drain ${fmt(med(io, (l) => l.seconds))} s = ${fmt(1 / (med(io, (l) => l.efficiency) ?? NaN))}x the ideal ${io[0]!.ideal_s} s (target ≤ 1.1x)`);
const bl = by.get("backlog-1m");
if (bl) {
  targets.push(`backlog-1m rate / drain-50 rate = ${fmt(r("backlog-1m", "drain-50"))} (target ≥ 0.8); worker RSS max ${fmt(med(bl, (l) => l.worker_rss_max_mb))} MB (target < 150)`);
  type Slice = { upto: number; rate: number };
  const slices = (bl[0]!.slices as Slice[] | undefined) ?? [];
  if (slices.length) targets.push(`backlog-1m slices (run 1): ${slices.map((s) => `${s.upto / 1000}k ${fmt(s.rate)}/s`).join(", ")}`);
}
if (by.get("drain-2proc")) targets.push(`drain-2proc (2 x c=25) / drain-50 (1 x c=50) = ${fmt(r("drain-2proc", "drain-50"))}`);
if (targets.length) out.push("", "Targets judged from this run alone (peer ratios come from the peers suite):", ...targets.map((t) => `- ${t}`));
out.push("", `raw lines: ${outFile}`);
console.error(out.join("\n"));
const bad = lines.filter((l) => l.error || (l.verify && !(l.verify as { ok?: boolean }).ok));
process.exit(bad.length ? 1 : 0);
