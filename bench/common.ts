// Shared by the bench runner, the worker child process and the SQL floor: databases, CPU
// accounting (the same method as ../shared/peers/bench.mjs, so figures compare), statistics.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import pg from "pg";

export const BASE = (process.env.BENCH_PG ?? "postgres://postgres@127.0.0.1:5432").replace(/\/+$/, "");
export const SCHEMA = "jobs";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const round = (x: number | null | undefined, d = 3): number | null =>
  x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d;

let dbCounter = 0;

/** A fresh database for one scenario run: bench_pgjobs_<pid>_<k>. drop() forces it away. */
export async function freshDatabase(tag: string): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `bench_pgjobs_${process.pid}_${++dbCounter}_${tag.replace(/\W/g, "_")}`.toLowerCase().slice(0, 63);
  const admin = new pg.Client(`${BASE}/postgres`);
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  return {
    name,
    url: `${BASE}/${name}`,
    async drop() {
      const a = new pg.Client(`${BASE}/postgres`);
      await a.connect();
      try {
        await a.query(`drop database if exists ${name} with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}

// ---- CPU accounting ---------------------------------------------------------------------------
const HZ = 100; // USER_HZ

export function machineCpu(): { busy: number; iowait: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { busy: (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0)) / HZ, iowait: f[4]! / HZ };
}

export function procCpu(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / HZ;
  } catch {
    return null;
  }
}

export interface CpuSnapshot {
  t: number;
  machine: { busy: number; iowait: number };
  pg: Map<number, number>;
}

/** CPU of the Postgres backends connected to `db` (a backend that exits in between is missed). */
export async function cpuSnapshot(q: pg.Pool | pg.Client, db: string): Promise<CpuSnapshot> {
  const { rows } = await q.query<{ pid: number }>("select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()", [db]);
  const pgc = new Map<number, number>();
  for (const { pid } of rows) {
    const c = procCpu(pid);
    if (c != null) pgc.set(pid, c);
  }
  return { t: performance.now(), machine: machineCpu(), pg: pgc };
}

export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot, nodeCpuS: number) {
  let pgs = 0;
  for (const [pid, c] of b.pg) pgs += c - (a.pg.get(pid) ?? 0);
  const machine = b.machine.busy - a.machine.busy;
  return {
    node_cpu_s: round(nodeCpuS),
    pg_backends_cpu_s: round(pgs),
    machine_busy_cpu_s: round(machine),
    machine_other_cpu_s: round(machine - nodeCpuS - pgs),
    machine_iowait_s: round(b.machine.iowait - a.machine.iowait),
    window_s: round((b.t - a.t) / 1000),
  };
}

// ---- statistics -------------------------------------------------------------------------------
const quantile = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!; // nearest rank

export function dist(xs: ArrayLike<number>) {
  const s = Array.from(xs).filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (!s.length) return null;
  return {
    n: s.length,
    p50_ms: round(quantile(s, 0.5)),
    p95_ms: round(quantile(s, 0.95)),
    p99_ms: round(quantile(s, 0.99)),
    min_ms: round(s[0]),
    max_ms: round(s.at(-1)),
    mean_ms: round(s.reduce((x, y) => x + y, 0) / s.length),
  };
}

export function median(xs: Array<number | null | undefined>): number | null {
  const s = xs.filter((x): x is number => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Per-statement timings, by prepared-statement name, of everything a pool runs (profiling only). */
export type StatementStats = Map<string, { calls: number; ms: number; rows: number; batch: number; maxBatch: number; maxMs: number }>;

/** Wrap a pool's query(): per statement name, calls, time, rows returned and input array length
 * (the batch of a finish). Client-side time, so it includes the wait for a pool connection. */
export function instrumentPool(pool: pg.Pool): StatementStats {
  const stats: StatementStats = new Map();
  const orig = pool.query.bind(pool) as (...a: unknown[]) => Promise<pg.QueryResult>;
  (pool as unknown as { query: unknown }).query = (config: unknown, values?: unknown) => {
    const c = config as { name?: string; values?: unknown[] };
    // Named statements by their name; unnamed ones by the "-- noun_verb:" header of their sql/ file.
    const text = typeof c === "string" ? c : (c as { text?: string })?.text ?? "";
    const name = typeof c === "object" && c?.name ? c.name.replace(/^pgjobs_\w+?_(?=\w+$)/, "") : /^--\s*(\w+):/.exec(text)?.[1] ?? "adhoc";
    const first = (values as unknown[] | undefined)?.[0] ?? c?.values?.[0];
    const t = performance.now();
    return orig(config, values).then((res) => {
      const s = stats.get(name) ?? { calls: 0, ms: 0, rows: 0, batch: 0, maxBatch: 0, maxMs: 0 };
      const ms = performance.now() - t;
      s.calls++;
      s.batch += Array.isArray(first) ? first.length : 0;
      s.maxBatch = Math.max(s.maxBatch, Array.isArray(first) ? first.length : 0);
      s.maxMs = Math.max(s.maxMs, ms);
      s.ms += ms;
      s.rows += res.rowCount ?? 0;
      stats.set(name, s);
      return res;
    });
  };
  return stats;
}

export function statsObject(stats: StatementStats) {
  return Object.fromEntries(
    [...stats].map(([k, v]) => [
      k,
      { calls: v.calls, mean_ms: round(v.ms / v.calls), rows_per_call: round(v.rows / v.calls, 1), array_len_per_call: round(v.batch / v.calls, 1), max_array_len: v.maxBatch, max_ms: round(v.maxMs, 1), total_ms: round(v.ms, 0) },
    ]),
  );
}
