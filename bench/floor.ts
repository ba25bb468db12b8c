// The SQL floor: pgjobs' own claim, finish and enqueue statements (sql/*.sql, :SCHEMA replaced, via
// src/sql.ts) driven from a tight node-postgres loop with no worker around them, so the bench shows
// how close the TypeScript side runs to what Postgres allows with the same SQL on this machine.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { idsOf, toParams, type EnqueuedIds } from "../src/enqueuer.js";
import { statement } from "../src/sql.js";
import { cpuDelta, cpuSnapshot, round, SCHEMA } from "./common.js";

const claimSt = statement(SCHEMA, "task_claim_many");
const finishSt = statement(SCHEMA, "task_finish_many");
const enqueueSt = statement(SCHEMA, "task_enqueue_many");

/** Insert n no-op tasks ({i} payloads from `from`) through jobs.enqueue_many, 50,000 per statement. */
export async function prefillSql(q: pg.Pool | pg.Client, n: number, from = 0): Promise<void> {
  for (let s = 0; s < n; s += 50_000) {
    const k = Math.min(50_000, n - s);
    await q.query(
      `select count(*) from ${SCHEMA}.enqueue_many(
         (select array_agg('noop'::text) from generate_series(1, $2::int)),
         (select array_agg(jsonb_build_array(jsonb_build_object('i', g)) order by g) from generate_series($1::int, $1::int + $2::int - 1) g))`,
      [from + s, k],
    );
  }
}

/** The parameters the client's Enqueuer sends for rows of the no-op task, built by its own code. */
export function enqueueParams(is: number[]): unknown[] {
  return toParams(is.map((i) => ({
    name: "noop", args: JSON.stringify([{ i }]), queue: "default", priority: 0, runAt: null, delayMs: null,
    maxAttempts: 4, key: null, headers: "{}", parentId: null, groupId: null, chordId: null, timeoutMs: null, workflow: null,
  })));
}

async function clients(url: string, k: number): Promise<pg.Client[]> {
  return Promise.all(Array.from({ length: k }, async () => {
    const c = new pg.Client(url);
    await c.connect();
    return c;
  }));
}

export interface CycleResult {
  batch: number;
  connections: number;
  tasks: number;
  seconds: number | null;
  rate: number | null;
  claim_ms_mean: number | null;
  finish_ms_mean: number | null;
  cpu: ReturnType<typeof cpuDelta>;
  pg_cpu_us_per_task: number | null;
  node_cpu_us_per_task: number | null;
}

/**
 * Claim `batch` with task_claim_many, finish them with task_finish_many, repeat, on `connections`
 * connections at once, for `seconds` or until the queue is empty. The table is whatever the
 * caller left in it (fresh, analyzed, or behind a wall of dead tuples).
 */
export async function claimFinishCycle(url: string, db: string, harness: pg.Pool, opts: { batch: number; connections: number; seconds: number; workerId?: string }): Promise<CycleResult> {
  const cs = await clients(url, opts.connections);
  let tasks = 0, claimMs = 0, claims = 0, finishMs = 0, finishes = 0;
  const c0 = process.cpuUsage();
  const s0 = await cpuSnapshot(harness, db);
  const t0 = performance.now();
  const deadline = t0 + opts.seconds * 1000;
  await Promise.all(cs.map(async (c) => {
    // One worker id per connection unless given: a worker process uses one id on all of them.
    const wid = opts.workerId ?? randomUUID();
    while (performance.now() < deadline) {
      let t = performance.now();
      const { rows } = await c.query<{ id: string; attempts: number }>({ name: claimSt.name, text: claimSt.text, values: ["default", opts.batch, wid, 15_000] });
      claimMs += performance.now() - t;
      claims++;
      if (rows.length === 0) break;
      t = performance.now();
      const ids = rows.map((r) => r.id);
      const { rows: [done] } = await c.query<{ ids: string[] }>({
        name: finishSt.name, text: finishSt.text, values: [ids, rows.map((r) => r.attempts), rows.map(() => "null"), wid],
      });
      finishMs += performance.now() - t;
      finishes++;
      if (done!.ids.length !== ids.length) throw new Error(`floor: finish applied ${done!.ids.length} of ${ids.length}`);
      tasks += ids.length;
    }
  }));
  const t1 = performance.now();
  const s1 = await cpuSnapshot(harness, db);
  const c1 = process.cpuUsage(c0);
  await Promise.all(cs.map((c) => c.end()));
  const cpu = cpuDelta(s0, s1, (c1.user + c1.system) / 1e6);
  const seconds = (t1 - t0) / 1000;
  return {
    batch: opts.batch, connections: opts.connections, tasks, seconds: round(seconds), rate: round(tasks / seconds, 1),
    claim_ms_mean: round(claimMs / claims), finish_ms_mean: round(finishMs / Math.max(1, finishes)), cpu,
    pg_cpu_us_per_task: round((1e6 * (cpu.pg_backends_cpu_s ?? 0)) / tasks, 1), node_cpu_us_per_task: round((1e6 * (cpu.node_cpu_s ?? 0)) / tasks, 1),
  };
}

/** task_enqueue_many with `rows` rows per statement on `connections` connections, for `seconds`. */
export async function enqueueLoop(url: string, db: string, harness: pg.Pool, opts: { rows: number; connections: number; seconds: number }) {
  const cs = await clients(url, opts.connections);
  let tasks = 0, next = 0;
  const c0 = process.cpuUsage();
  const s0 = await cpuSnapshot(harness, db);
  const t0 = performance.now();
  const deadline = t0 + opts.seconds * 1000;
  await Promise.all(cs.map(async (c) => {
    while (performance.now() < deadline) {
      const is = Array.from({ length: opts.rows }, () => next++);
      const { rows } = await c.query<EnqueuedIds>({ name: enqueueSt.name, text: enqueueSt.text, values: enqueueParams(is) });
      tasks += idsOf(rows).length;
    }
  }));
  const t1 = performance.now();
  const s1 = await cpuSnapshot(harness, db);
  const c1 = process.cpuUsage(c0);
  await Promise.all(cs.map((c) => c.end()));
  const seconds = (t1 - t0) / 1000;
  const cpu = cpuDelta(s0, s1, (c1.user + c1.system) / 1e6);
  return { rows_per_statement: opts.rows, connections: opts.connections, tasks, seconds: round(seconds), rate: round(tasks / seconds, 1), cpu,
    pg_cpu_us_per_task: round((1e6 * (cpu.pg_backends_cpu_s ?? 0)) / tasks, 1) };
}
