/**
 * The in-process runner behind eager mode: runs given tasks, and the tasks they lead to, one
 * attempt at a time in this process, without a worker loop.
 *
 * "Leads to" is read from the rows: the tasks whose parent_id chain reaches one of the given ids
 * (subtasks, a chain's next step, error callbacks), plus the ids themselves, which for a canvas
 * include the ids assigned up front to its later steps and to a chord's callback. Other ready
 * tasks in the same queues are left alone, as Celery's eager mode leaves them.
 *
 * An attempt runs as a worker runs it (src/worker.ts): the row is claimed (running, attempt + 1,
 * a lease), the handler gets the same context, headers and hooks, a timeout aborts its signal,
 * the outcome is written by the same statements (task_finish_many / task_fail_many, so chains
 * and chords move on in the database) and the same events are emitted, with this runner's id as
 * workerId.
 */
import { randomUUID } from "node:crypto";
import { retryDelay } from "../backoff.js";
import type { Jobs } from "../client.js";
import { withHeaders, type Headers } from "../context.js";
import { runPrepared } from "../db.js";
import { toMs } from "../duration.js";
import { PgJobsError, serializeError, TimeoutError } from "../errors.js";
import { aroundAttempt } from "../hooks.js";
import { toJsonText, type Json } from "../json.js";
import { statement } from "../sql.js";
import type { DrainedTask } from "./drain.js";
import { taskContext } from "../worker.js";

interface Claimed {
  id: string;
  name: string;
  queue: string;
  args: Json[];
  attempts: number;
  max_attempts: number;
  timeout_ms: number | null;
  headers: Headers;
  run_at: Date;
  started_at: Date;
}

export interface RunOptions {
  /** Run countdown/eta tasks of the lineage now. */
  scheduled: boolean;
  /** Run retries now instead of after their backoff. */
  retries: boolean;
  /** performance.now() after which to give up. */
  deadline: number;
}

/** Run `ids` and what they lead to until none of them is ready; return every attempt. */
export async function runLineage(jobs: Jobs, ids: string[], options: RunOptions): Promise<DrainedTask[]> {
  const runnerId = randomUUID();
  const s = jobs.schema;
  const promotable = [...(options.scheduled ? ["pending"] : []), ...(options.retries ? ["retrying"] : [])];
  const ran: DrainedTask[] = [];
  const lineage = `with recursive lineage(id) as (
      select unnest($1::bigint[])
      union
      select t.id from ${s}.tasks t join lineage l on t.parent_id = l.id
    )`;
  for (;;) {
    if (promotable.length > 0) {
      await jobs.pool.query(
        `${lineage}
         update ${s}.tasks t set state = 'ready' from lineage l
          where t.id = l.id and t.state::text = any($2::text[])`,
        [ids, promotable],
      );
    }
    const { rows } = await jobs.pool.query<Claimed>(
      `${lineage}, next as materialized (
         select t.id from ${s}.tasks t join lineage l on t.id = l.id
          where t.state = 'ready'
          order by t.priority desc, t.run_at, t.id
          limit 1
            for update of t skip locked
       )
       update ${s}.tasks t
          set state = 'running', worker_id = $2, attempts = t.attempts + 1, started_at = now(),
              lease_until = now() + interval '10 minutes'
         from next where t.id = next.id
       returning t.id::text, t.name, t.queue, t.args, t.attempts, t.max_attempts, t.timeout_ms, t.headers, t.run_at, t.started_at`,
      [ids, runnerId],
    );
    const row = rows[0];
    if (!row) return ran;
    if (performance.now() > options.deadline) {
      await jobs.pool.query(`update ${s}.tasks set state = 'ready', attempts = attempts - 1, lease_until = null where id = $1 and worker_id = $2 and state = 'running'`, [row.id, runnerId]);
      throw Object.assign(new PgJobsError(`eager mode gave up after ${ran.length} attempts: a task that keeps enqueuing work? Pass a longer timeout to eager()`), { ran });
    }
    ran.push(await attempt(jobs, row, runnerId));
  }
}

async function attempt(jobs: Jobs, row: Claimed, runnerId: string): Promise<DrainedTask> {
  const info = { id: row.id, name: row.name, queue: row.queue, attempt: row.attempts, maxAttempts: row.max_attempts, workerId: runnerId };
  const base = { id: row.id, name: row.name, queue: row.queue, args: row.args, attempt: row.attempts };
  const task = jobs.getTask(row.name);
  const controller = new AbortController();
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    if (!task) {
      throw Object.assign(new PgJobsError(`no handler for task ${row.name} in this process: register it with jobs.task(${JSON.stringify(row.name)}, ...)`), {
        name: "UnknownTask",
        permanent: true,
      });
    }
    jobs.emit("started", info);
    const timeoutMs = row.timeout_ms ?? (task.options.timeout !== undefined ? toMs(task.options.timeout, "timeout") : null);
    const aborted = new Promise<never>((_, reject) => controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true }));
    aborted.catch(() => {});
    if (timeoutMs !== null) {
      timer = setTimeout(() => controller.abort(new TimeoutError(`task ${row.name} (id ${row.id}) timed out after ${timeoutMs} ms (attempt ${row.attempts})`)), timeoutMs);
    }
    const ctx = taskContext(jobs, row, runnerId, controller);
    const call = () => withHeaders(row.headers, { id: row.id, name: row.name }, async () => (await task.handler(ctx, ...row.args)) as Json);
    const result = await Promise.race([
      jobs.hooks.length > 0 ? aroundAttempt(jobs.hooks, { ...info, runAt: row.run_at, claimedAt: row.started_at }, row.headers, call) : call(),
      aborted,
    ]);
    let text: string;
    try {
      text = toJsonText(result ?? null, row.name, "the result", jobs.maxPayloadBytes);
    } catch (err) {
      throw Object.assign(err as Error, { permanent: true });
    }
    clearTimeout(timer);
    const durationMs = performance.now() - t0;
    await runPrepared(jobs.pool, statement(jobs.schema, "task_finish_many"), [[row.id], [row.attempts], [text], runnerId]);
    const value = JSON.parse(text) as Json;
    jobs.emit("succeeded", { ...info, result: value, durationMs });
    return { ...base, outcome: "succeeded", result: value, durationMs };
  } catch (err) {
    clearTimeout(timer);
    const error = serializeError(err);
    const permanent = (err as { permanent?: boolean }).permanent === true;
    const retry = !permanent && row.attempts < row.max_attempts;
    const delay = retry ? retryDelay(task?.options.backoff, row.attempts) : null;
    const durationMs = performance.now() - t0;
    await runPrepared(jobs.pool, statement(jobs.schema, "task_fail_many"), [[row.id], [row.attempts], [JSON.stringify(error)], [delay], runnerId]);
    if (retry) jobs.emit("retrying", { ...info, error, delayMs: delay ?? 0, durationMs });
    else jobs.emit("failed", { ...info, error, durationMs });
    return { ...base, outcome: retry ? "retried" : "failed", error, durationMs };
  }
}

