import type { Jobs } from "./client.js";
import { runPrepared } from "./db.js";
import { toMs, type Duration } from "./duration.js";
import { InvalidInputError } from "./errors.js";
import { validateQueue } from "./identifiers.js";
import { statement } from "./sql.js";

/** What `pgjobs status` shows: the queues and the live workers. */
export interface Status {
  queues: Array<{ queue: string; ready: number; scheduled: number; running: number; failed: number; succeeded: number; cancelled: number; oldest_ready_s: number | null }>;
  workers: Array<{ id: string; name: string; hostname: string; pid: number; queues: string[]; concurrency: number; started_at: Date; heartbeat_at: Date; heartbeat_age_s: number; running: number }>;
}

export async function status(jobs: Jobs): Promise<Status> {
  const [queues, workers] = await Promise.all([
    runPrepared<Status["queues"][number]>(jobs.pool, statement(jobs.schema, "queue_status"), []),
    runPrepared<Status["workers"][number]>(jobs.pool, statement(jobs.schema, "worker_list"), []),
  ]);
  return { queues, workers };
}

export function parseTaskId(id: string): string {
  if (!/^\d{1,19}$/.test(id)) throw new InvalidInputError(`invalid task id ${JSON.stringify(id)}: a task id is a whole number, as in jobs.tasks.id`);
  return id;
}

export async function showTask(jobs: Jobs, id: string): Promise<Record<string, unknown>> {
  const [row] = await runPrepared<Record<string, unknown>>(jobs.pool, statement(jobs.schema, "task_show"), [parseTaskId(id)]);
  if (!row) throw new InvalidInputError(`no task with id ${id} in schema ${jobs.schema}: it was never enqueued or was pruned`);
  return row;
}

const PURGEABLE = new Set(["succeeded", "failed", "cancelled"]);

/**
 * Delete finished tasks in batches of `batch`, calling `onProgress` after each, so a purge of
 * millions of rows holds few locks at a time and shows how far it got.
 */
export async function purge(
  jobs: Jobs,
  opts: { queue?: string; state: string; olderThan: Duration; batch?: number; onProgress?: (deleted: number, total: number) => void },
): Promise<{ deleted: number }> {
  if (!PURGEABLE.has(opts.state)) {
    throw new InvalidInputError(`--state ${opts.state}: only finished tasks can be purged: use succeeded, failed or cancelled`);
  }
  const queue = opts.queue === undefined ? null : validateQueue(opts.queue);
  const olderThanS = toMs(opts.olderThan, "--older-than") / 1000;
  const batch = opts.batch ?? 5_000;
  const [{ n: total }] = (await runPrepared<{ n: number }>(jobs.pool, statement(jobs.schema, "task_purge_count"), [queue, opts.state, olderThanS])) as [{ n: number }];
  let deleted = 0;
  for (;;) {
    const res = await jobs.pool.query({ ...statement(jobs.schema, "task_purge_batch"), values: [queue, opts.state, olderThanS, batch] });
    deleted += res.rowCount ?? 0;
    opts.onProgress?.(deleted, Math.max(total, deleted));
    if ((res.rowCount ?? 0) < batch) break;
  }
  return { deleted };
}
