import { AssertionError } from "node:assert";
import type { Jobs } from "../client.js";
import { runOn, type DbLike } from "../db.js";
import { validateQueue } from "../identifiers.js";
import type { Json } from "../json.js";
import type { TaskState } from "../result.js";

export interface EnqueuedQuery {
  /** The task: its handle (`sendReceipt`) or its name. */
  task?: string | { readonly name: string };
  /** Exactly these arguments (compared as JSON), or a predicate over them. */
  args?: readonly unknown[] | ((args: Json[]) => boolean);
  queue?: string;
  /** Only tasks in this state (or these). Default: any state — enqueued means the row exists. */
  state?: TaskState | TaskState[];
  /**
   * Look through this connection: a pg client or Kysely transaction that is still open sees the
   * tasks it enqueued before they are committed; any other connection sees only committed ones.
   * Default: the Jobs' pool (committed tasks).
   */
  db?: DbLike;
}

/** A row of the tasks table, as the assertions see it. */
export interface EnqueuedTask {
  id: string;
  name: string;
  queue: string;
  args: Json[];
  state: TaskState;
  priority: number;
  runAt: Date;
  attempts: number;
  maxAttempts: number;
  headers: Record<string, Json>;
  parentId: string | null;
  key: string | null;
  result: Json | null;
  error: Json | null;
  createdAt: Date;
}

interface Row {
  id: string;
  name: string;
  queue: string;
  args: Json[];
  state: TaskState;
  priority: number;
  run_at: Date;
  attempts: number;
  max_attempts: number;
  headers: Record<string, Json>;
  parent_id: string | null;
  key: string | null;
  result: Json | null;
  error: Json | null;
  created_at: Date;
}

const taskName = (t: EnqueuedQuery["task"]) => (t === undefined ? undefined : typeof t === "string" ? t : t.name);

/**
 * The tasks that exist (were enqueued and committed — or, with `db`, written by that open
 * transaction), matching `query`, oldest first. The database is the truth: a task enqueued in a
 * transaction that rolled back does not exist.
 *
 * ```ts
 * const receipts = await enqueued(jobs, { task: sendReceipt });
 * assert.deepEqual(receipts.map((t) => t.args), [[order.id]]);
 * ```
 */
export async function enqueued(jobs: Jobs, query: EnqueuedQuery = {}): Promise<EnqueuedTask[]> {
  const name = taskName(query.task);
  const queue = query.queue === undefined ? null : validateQueue(query.queue);
  const states = query.state === undefined ? null : Array.isArray(query.state) ? query.state : [query.state];
  const exactArgs = Array.isArray(query.args) ? JSON.stringify(query.args) : null;
  const text = `select id::text, name, queue, args, state::text, priority, run_at, attempts, max_attempts, headers,
                       parent_id::text, key, result, error, created_at
                  from ${jobs.schema}.tasks
                 where ($1::text is null or name = $1)
                   and ($2::text is null or queue = $2)
                   and ($3::text[] is null or state::text = any($3))
                   and ($4::jsonb is null or args = $4::jsonb)
                 order by id`;
  const values = [name ?? null, queue, states, exactArgs];
  const rows = query.db
    ? await runOn<Row>(query.db, { name: "", text }, values)
    : (await jobs.pool.query<Row>(text, values)).rows;
  const pred = typeof query.args === "function" ? query.args : null;
  return rows
    .filter((r) => !pred || pred(r.args))
    .map((r) => ({
      id: r.id,
      name: r.name,
      queue: r.queue,
      args: r.args,
      state: r.state,
      priority: r.priority,
      runAt: r.run_at,
      attempts: r.attempts,
      maxAttempts: r.max_attempts,
      headers: r.headers,
      parentId: r.parent_id,
      key: r.key,
      result: r.result,
      error: r.error,
      createdAt: r.created_at,
    }));
}

/**
 * Assert that a matching task exists (`count`: exactly that many), and return the matches. The
 * failure message lists what was enqueued instead.
 *
 * ```ts
 * await placeOrder(db, order);
 * await assertEnqueued(jobs, { task: sendReceipt, args: [order.id], queue: "email" });
 * ```
 */
export async function assertEnqueued(jobs: Jobs, query: EnqueuedQuery & { count?: number }): Promise<EnqueuedTask[]> {
  const found = await enqueued(jobs, query);
  const ok = query.count === undefined ? found.length > 0 : found.length === query.count;
  if (ok) return found;
  const all = await enqueued(jobs, query.db ? { db: query.db } : {});
  const want = query.count === undefined ? "a task" : `${query.count} task${query.count === 1 ? "" : "s"}`;
  const where = query.db ? "visible in the given transaction" : "committed";
  const hint =
    found.length === 0 && !query.db
      ? " (a task enqueued in a transaction exists once that transaction commits: did it roll back, or is it not committed yet? Pass { db } to look inside an open transaction)"
      : "";
  throw new AssertionError({
    message: `expected ${want} ${describe(query)} to be enqueued (${where}), found ${found.length}. Enqueued: ${list(all)}${hint}`,
    actual: found.map(brief),
    expected: query,
    operator: "assertEnqueued",
  });
}

/**
 * Assert that no matching task exists.
 *
 * ```ts
 * await assert.rejects(placeOrder(db, { total: -1 }));
 * await refuteEnqueued(jobs, { task: sendReceipt });
 * ```
 */
export async function refuteEnqueued(jobs: Jobs, query: EnqueuedQuery = {}): Promise<void> {
  const found = await enqueued(jobs, query);
  if (found.length === 0) return;
  throw new AssertionError({
    message: `expected no task ${describe(query)} to be enqueued, found ${found.length}: ${list(found)}`,
    actual: found.map(brief),
    expected: [],
    operator: "refuteEnqueued",
  });
}

/**
 * Delete every task, chord and result waiter of the schema (schedules and workers stay), for
 * tests that share one schema. Fast: TRUNCATE.
 */
export async function resetJobs(jobs: Jobs): Promise<void> {
  await jobs.pool.query(`truncate ${jobs.schema}.tasks, ${jobs.schema}.chords, ${jobs.schema}.result_waiters`);
}

function describe(q: EnqueuedQuery): string {
  const parts: string[] = [];
  const name = taskName(q.task);
  if (name) parts.push(name);
  if (Array.isArray(q.args)) parts.push(`with args ${JSON.stringify(q.args)}`);
  else if (typeof q.args === "function") parts.push("with args matching the predicate");
  if (q.queue) parts.push(`in queue ${q.queue}`);
  if (q.state) parts.push(`in state ${[q.state].flat().join("|")}`);
  return parts.join(" ") || "(any)";
}

function brief(t: EnqueuedTask) {
  return { id: t.id, name: t.name, args: t.args, queue: t.queue, state: t.state };
}

function list(ts: EnqueuedTask[]): string {
  if (ts.length === 0) return "nothing";
  const shown = ts.slice(0, 20).map((t) => `${t.name} ${JSON.stringify(t.args)} (queue ${t.queue}, ${t.state}, id ${t.id})`);
  return shown.join("; ") + (ts.length > 20 ? `; and ${ts.length - 20} more` : "");
}
