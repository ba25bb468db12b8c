/**
 * The operator's functions behind `pgjobs status`, `pgjobs task show|retry|cancel`, `pgjobs purge`
 * and `pgjobs enqueue`. Each takes a pool or a single client and the schema, so the CLI can run
 * them on its one session and an app (or a dashboard) on its Jobs instance:
 *
 * ```ts
 * const s = await status(jobs);                                   // a Jobs instance fits
 * const s2 = await status({ pool: pgClient, schema: "jobs" });    // so does a pg.Client
 * ```
 */
import type pg from "pg";
import { runPrepared } from "./db.js";
import { toMs, type Duration } from "./duration.js";
import { InvalidInputError } from "./errors.js";
import { validateQueue, validateTaskId, validateSchema, validateTaskName } from "./identifiers.js";
import { checkJson, toJsonText, type Json } from "./json.js";
import { statement } from "./sql.js";

/** Where the admin functions run: a pool or one session, and the schema. A Jobs instance fits. */
export interface AdminTarget {
  readonly pool: pg.Pool | pg.ClientBase;
  readonly schema: string;
}

/** What `pgjobs status` shows: the queues and the live workers. */
export interface Status {
  queues: Array<{ queue: string; ready: number; scheduled: number; running: number; failed: number; succeeded: number; cancelled: number; oldest_ready_s: number | null }>;
  workers: Array<{
    id: string;
    name: string;
    hostname: string;
    pid: number;
    queues: string[];
    concurrency: number;
    started_at: Date;
    heartbeat_at: Date;
    heartbeat_age_s: number;
    running: number;
    /** The task names the worker's app registered. */
    tasks: string[];
  }>;
}

/**
 * Per-queue counts and the live workers. Reads the whole tasks table once (a sequential scan on
 * a big table): for an operator's look and for metrics scraped every few seconds, not per request.
 */
export async function status(target: AdminTarget): Promise<Status> {
  const schema = validateSchema(target.schema);
  // One after the other: `target.pool` may be a single session, which runs one query at a time.
  const queues = await runPrepared<Status["queues"][number]>(target.pool, statement(schema, "queue_status"), []);
  const workers = await runPrepared<Status["workers"][number]>(target.pool, statement(schema, "worker_list"), []);
  return { queues, workers };
}

/** A task id as an operator types it: a whole number, as in jobs.tasks.id (leading zeros dropped). */
export function parseTaskId(id: string | number | bigint): string {
  return validateTaskId(id).replace(/^0+(?=\d)/, "");
}

/** Every column of one task (`pgjobs task show ID`). */
export interface TaskDetails {
  id: string;
  name: string;
  queue: string;
  state: string;
  args: Json[];
  result: Json | null;
  error: { name: string; message: string; stack?: string; [k: string]: unknown } | null;
  priority: number;
  run_at: Date;
  attempts: number;
  max_attempts: number;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  parent_id: string | null;
  group_id: string | null;
  chord_id: string | null;
  headers: Record<string, Json>;
  progress: Json | null;
  key: string | null;
  worker_id: string | null;
  lease_until: Date | null;
  timeout_ms: number | null;
  workflow: Json | null;
  /** The name of the worker that runs (or last ran) it, while that worker is registered. */
  worker_name: string | null;
}

export async function showTask(target: AdminTarget, id: string | number | bigint): Promise<TaskDetails> {
  const tid = parseTaskId(id);
  const [row] = await runPrepared<TaskDetails>(target.pool, statement(validateSchema(target.schema), "task_show"), [tid]);
  if (!row) throw new InvalidInputError(`no task with id ${tid} in schema ${target.schema}: it was never enqueued, or it was purged or pruned`);
  return row;
}

/**
 * Run a failed or cancelled task again, from a fresh attempt count (`pgjobs task retry ID`).
 * Refuses, naming the state, a task in any other state: a running or queued task is already
 * going to run, a succeeded one is done.
 */
export async function retryTask(target: AdminTarget, id: string | number | bigint): Promise<{ id: string; state: "ready" }> {
  const tid = parseTaskId(id);
  const rows = await runPrepared<{ id: string }>(target.pool, statement(validateSchema(target.schema), "task_retry_many"), [[tid]]);
  if (rows.length === 1) return { id: tid, state: "ready" };
  const task = await showTask(target, tid);
  throw new InvalidInputError(`task ${task.name} (id ${tid}) is ${task.state}: only failed or cancelled tasks can be retried`);
}

/**
 * Cancel (revoke) a task that has not finished (`pgjobs task cancel ID`). A queued task never
 * runs; a running one has its ctx.signal aborted by its worker. A finished task is refused,
 * naming its state.
 */
export async function cancelTask(target: AdminTarget, id: string | number | bigint): Promise<{ id: string; state: "cancelled"; was: string }> {
  const tid = parseTaskId(id);
  const before = await showTask(target, tid);
  const rows = await runPrepared<{ id: string }>(target.pool, statement(validateSchema(target.schema), "task_cancel_many"), [[tid]]);
  if (rows.length === 1) return { id: tid, state: "cancelled", was: before.state };
  const now = await showTask(target, tid);
  throw new InvalidInputError(`task ${now.name} (id ${tid}) already ${now.state}: only unfinished tasks can be cancelled`);
}

const PURGEABLE = ["succeeded", "failed", "cancelled"] as const;
export type PurgeableState = (typeof PURGEABLE)[number];

export function checkPurgeState(state: string): PurgeableState {
  if (!(PURGEABLE as readonly string[]).includes(state)) {
    throw new InvalidInputError(`state ${JSON.stringify(state)} cannot be purged: only finished tasks can be: use succeeded, failed or cancelled`);
  }
  return state as PurgeableState;
}

export interface PurgeOptions {
  /** Only this queue; all queues when left out. */
  queue?: string;
  state: string;
  /** Only tasks that finished longer ago than this ("7d", "12h", or milliseconds). */
  olderThan: Duration;
  /** Rows per DELETE. Default 5000. */
  batch?: number;
  /** Count what would go, delete nothing. */
  dryRun?: boolean;
  /** Called after each batch with the rows deleted so far and the total expected. */
  onProgress?: (deleted: number, total: number) => void;
}

/**
 * Delete finished tasks in batches, calling `onProgress` after each, so a purge of millions of
 * rows holds few locks at a time, lets autovacuum keep up, and shows how far it got. Succeeded
 * members of a chord that is still waiting are kept: the chord's callback reads their results
 * when the last member finishes.
 *
 * ```ts
 * await purge(jobs, { queue: "email", state: "failed", olderThan: "7d", onProgress: (n, total) => console.error(`${n}/${total}`) });
 * ```
 */
export async function purge(target: AdminTarget, opts: PurgeOptions): Promise<{ deleted: number; matched: number; dryRun: boolean }> {
  const schema = validateSchema(target.schema);
  checkPurgeState(opts.state);
  const queue = opts.queue === undefined ? null : validateQueue(opts.queue);
  const olderThanS = toMs(opts.olderThan, "older-than") / 1000;
  const batch = opts.batch ?? 5_000;
  if (!Number.isInteger(batch) || batch < 1 || batch > 100_000) {
    throw new InvalidInputError(`batch size must be a whole number from 1 to 100000, got ${batch}`);
  }
  const [counted] = await runPrepared<{ n: number }>(target.pool, statement(schema, "task_purge_count"), [queue, opts.state, olderThanS]);
  const matched = counted?.n ?? 0;
  if (opts.dryRun) return { deleted: 0, matched, dryRun: true };
  let deleted = 0;
  opts.onProgress?.(0, matched);
  for (;;) {
    const st = statement(schema, "task_purge_batch");
    const res = await target.pool.query({ name: st.name, text: st.text, values: [queue, opts.state, olderThanS, batch] });
    const n = res.rowCount ?? 0;
    deleted += n;
    // Tasks may finish (and so match) while the purge runs: the total grows with them.
    if (n > 0) opts.onProgress?.(deleted, Math.max(matched, deleted));
    if (n < batch) break;
  }
  return { deleted, matched, dryRun: false };
}

export interface EnqueueOptions {
  /** The handler's arguments, as a JSON array (text or value). Default []. */
  args?: string | Json[];
  queue?: string;
  /** -100 to 100, higher runs first. */
  priority?: number;
  /** Run no sooner than this: seconds as a number, or a duration string ("90s", "5m"). On the database's clock. */
  countdown?: number | Duration;
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /** Dedup key: while an unfinished task holds it, its id is returned and nothing is inserted. */
  key?: string;
  /** Largest JSON for the arguments. Default 1 MiB, as createJobs. */
  maxPayloadBytes?: number;
}

interface EnqueueParams {
  name: string;
  queue: string;
  argsText: string;
  priority: number;
  countdownMs: number | null;
  maxAttempts: number;
  key: string | null;
}

/**
 * Check what `enqueueByName` would send, without sending anything: the CLI calls it before it
 * connects, so bad input fails fast and changes nothing.
 */
export function checkEnqueue(name: string, opts: EnqueueOptions = {}): EnqueueParams {
  validateTaskName(name);
  const queue = validateQueue(opts.queue ?? "default", name);
  let args: unknown = opts.args ?? [];
  if (typeof args === "string") {
    try {
      args = JSON.parse(args);
    } catch (err) {
      throw new InvalidInputError(`task ${name}: --args is not JSON (${(err as Error).message}): pass a JSON array, e.g. --args '[2, 2]'`);
    }
  }
  if (!Array.isArray(args)) {
    throw new InvalidInputError(`task ${name}: args must be a JSON array of the handler's arguments, e.g. '[2, 2]', got ${JSON.stringify(args)?.slice(0, 80)}`);
  }
  checkJson(args, name, "args");
  const argsText = toJsonText(args, name, "args", opts.maxPayloadBytes ?? 1024 * 1024);
  const priority = opts.priority ?? 0;
  if (!Number.isInteger(priority) || priority < -100 || priority > 100) {
    throw new InvalidInputError(`task ${name}: priority ${priority} is out of range: use a whole number from -100 to 100 (higher runs first)`);
  }
  const retries = opts.retries ?? 3;
  if (!Number.isInteger(retries) || retries < 0 || retries > 999) {
    throw new InvalidInputError(`task ${name}: retries must be a whole number from 0 to 999, got ${retries}`);
  }
  let countdownMs: number | null = null;
  if (opts.countdown !== undefined) {
    const c = opts.countdown;
    // A bare number is seconds, as in applyAsync({ countdown }); "90s", "5m" are durations.
    const asNumber = typeof c === "string" && /^\s*\d+(\.\d+)?\s*$/.test(c) ? Number(c) : c;
    countdownMs = typeof asNumber === "number" ? (Number.isFinite(asNumber) && asNumber >= 0 ? asNumber * 1000 : NaN) : toMs(asNumber, `task ${name}: countdown`);
    if (Number.isNaN(countdownMs)) throw new InvalidInputError(`task ${name}: countdown must be 0 or more seconds, got ${String(c)}`);
  }
  if (opts.key !== undefined && opts.key.length === 0) throw new InvalidInputError(`task ${name}: key must be a non-empty string`);
  return { name, queue, argsText, priority, countdownMs, maxAttempts: retries + 1, key: opts.key ?? null };
}

/**
 * Enqueue a task by name through the SQL write API (`jobs.enqueue_many`), as any language would
 * (`pgjobs enqueue NAME --args '[...]'`). The caller has no registry to check the name against:
 * `knownBy` tells how many live workers of the queue registered that task name, so a typo can be
 * flagged (a worker that does not know a task fails it for good, with UnknownTask).
 *
 * ```ts
 * const { id } = await enqueueByName(jobs, "add", { args: [2, 2], queue: "math", countdown: 30 });
 * ```
 */
export async function enqueueByName(
  target: AdminTarget,
  name: string,
  opts: EnqueueOptions = {},
): Promise<{ id: string; name: string; queue: string; state: string; run_at: Date; workers: number; knownBy: number }> {
  const schema = validateSchema(target.schema);
  const p = checkEnqueue(name, opts);
  const [row] = await runPrepared<{ id: string }>(target.pool, statement(schema, "task_enqueue_cli"), [
    p.name, p.argsText, p.queue, p.priority, p.countdownMs, p.maxAttempts, p.key,
  ]);
  // Read back in a statement of its own: rows the function inserted are not visible to the
  // statement that called it. For a dedup key, this is the task that holds the key.
  const task = await showTask(target, row!.id);
  const workers = (await runPrepared<Status["workers"][number]>(target.pool, statement(schema, "worker_list"), [])).filter((w) => w.queues.includes(p.queue));
  return {
    id: task.id,
    name: task.name,
    queue: task.queue,
    state: task.state,
    run_at: task.run_at,
    workers: workers.length,
    knownBy: workers.filter((w) => w.tasks.includes(p.name)).length,
  };
}
