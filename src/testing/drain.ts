import type { Jobs } from "../client.js";
import { toMs, type Duration } from "../duration.js";
import { PgJobsError } from "../errors.js";
import { validateQueue } from "../identifiers.js";
import type { Json } from "../json.js";
import { channels } from "../sql.js";
import type { Worker } from "../worker.js";

export interface DrainOptions {
  /**
   * Queues to run. Default: every queue that has tasks waiting, and the queues of the tasks this
   * process registered, looked up again after each round (a chain step may go to another queue).
   */
  queues?: string[];
  /** Also run now the tasks waiting for a countdown or eta (state pending). Default false. */
  scheduled?: boolean;
  /**
   * Run a failed attempt's retry at once instead of after its backoff. Default true: a task that
   * keeps failing ends `failed` within one drain, after all its attempts.
   */
  retries?: boolean;
  /** Handlers at once. Default 1: tasks run one at a time, in claim order (priority, run_at). */
  concurrency?: number;
  /** Give up (DrainTimeoutError, naming what ran) after this long. Default 30 s. */
  timeout?: Duration;
}

/** One attempt that ran during a drain. */
export interface DrainedTask {
  id: string;
  name: string;
  queue: string;
  args: Json[];
  attempt: number;
  /** What came of this attempt: retried means it failed and will run again. */
  outcome: "succeeded" | "failed" | "retried";
  result?: Json;
  error?: { name: string; message: string; stack?: string };
  durationMs: number;
}

export interface DrainResult {
  /** Every attempt, in the order they finished. */
  ran: DrainedTask[];
  /** Tasks that succeeded, failed for good, and attempts that were retried. */
  succeeded: number;
  failed: number;
  retried: number;
}

export class DrainTimeoutError extends PgJobsError {
  readonly ran: DrainedTask[];
  constructor(message: string, ran: DrainedTask[]) {
    super(message);
    this.name = "DrainTimeoutError";
    this.ran = ran;
  }
}

/**
 * Run everything ready until the queues are idle, in this process, with a real worker (the same
 * claim, handler context, timeouts, retries and acknowledgements as production), and return what
 * ran. Tasks enqueued by the tasks that ran (subtasks, a chain's next step, a chord's callback)
 * run in the same drain. Tasks still in an open transaction are not seen: commit first.
 *
 * ```ts
 * await placeOrder(order);                       // enqueues send_receipt
 * const { ran, failed } = await drain(jobs);
 * assert.equal(failed, 0);
 * assert.deepEqual(ran.map((t) => t.name), ["send_receipt"]);
 * ```
 */
export async function drain(jobs: Jobs, options: DrainOptions = {}): Promise<DrainResult> {
  const timeoutMs = toMs(options.timeout ?? 30_000, "timeout");
  const deadline = performance.now() + timeoutMs;
  const fixed = options.queues?.map((q) => validateQueue(q));
  const retries = options.retries ?? true;
  const promotable = [...(options.scheduled ? ["pending"] : []), ...(retries ? ["retrying"] : [])];
  const ran: DrainedTask[] = [];

  let queues = fixed ?? (await queuesWithWork(jobs, promotable));
  const served = new Set<string>();
  while (queues.length > 0) {
    await round(jobs, queues, promotable, options.concurrency ?? 1, deadline, timeoutMs, ran);
    if (fixed) break;
    for (const q of queues) served.add(q);
    // A round ends when its queues are idle; a task it enqueued into another queue needs one more.
    const after = await queuesWithWork(jobs, promotable);
    if (after.every((q) => served.has(q))) break;
    queues = [...new Set([...served, ...after])].sort();
  }

  // Arguments come from the rows: the events do not carry them.
  if (ran.length > 0) {
    const { rows } = await jobs.pool.query<{ id: string; args: Json[] }>(
      `select id::text, args from ${jobs.schema}.tasks where id = any($1::bigint[])`,
      [[...new Set(ran.map((r) => r.id))]],
    );
    const args = new Map(rows.map((r) => [r.id, r.args]));
    for (const r of ran) r.args = args.get(r.id) ?? [];
  }
  return {
    ran,
    succeeded: ran.filter((r) => r.outcome === "succeeded").length,
    failed: ran.filter((r) => r.outcome === "failed").length,
    retried: ran.filter((r) => r.outcome === "retried").length,
  };
}

/** Queues with tasks ready (or promotable), plus the registered tasks' default queues. */
async function queuesWithWork(jobs: Jobs, promotable: string[]): Promise<string[]> {
  const { rows } = await jobs.pool.query<{ queue: string }>(
    `select distinct queue from ${jobs.schema}.tasks where state = 'ready' or state::text = any($1::text[])`,
    [promotable],
  );
  const set = new Set(rows.map((r) => r.queue));
  for (const name of jobs.taskNames()) set.add(jobs.getTask(name)?.options.queue ?? "default");
  return [...set].sort();
}

async function round(jobs: Jobs, queues: string[], promotable: string[], concurrency: number, deadline: number, timeoutMs: number, ran: DrainedTask[]): Promise<void> {
  const worker: Worker = jobs.worker({
    queues,
    concurrency,
    name: "pgjobs-testing-drain",
    // A fallback only: NOTIFY wakes the worker when a task becomes ready.
    pollInterval: 100,
    lease: "60s",
    rescueInterval: "1h",
    retention: false,
    // A test's drain leaves the table's upkeep to the test (and to autovacuum).
    vacuum: false,
    shutdownGrace: "5s",
  });
  const mine = (e: { workerId: string }) => e.workerId === worker.id;
  type Ev = { id: string; name: string; queue: string; attempt: number; workerId: string; durationMs?: number };
  const starts = new Map<string, number>();
  const took = (e: Ev) => {
    const t0 = starts.get(`${e.id}:${e.attempt}`);
    return e.durationMs ?? (t0 === undefined ? 0 : performance.now() - t0);
  };
  const base = (e: Ev) => ({ id: e.id, name: e.name, queue: e.queue, args: [] as Json[], attempt: e.attempt });
  const onStarted = (e: Ev) => mine(e) && starts.set(`${e.id}:${e.attempt}`, performance.now());
  const onSucceeded = (e: Ev & { result: Json }) => mine(e) && ran.push({ ...base(e), outcome: "succeeded", result: e.result, durationMs: took(e) });
  const onFailed = (e: Ev & { error: DrainedTask["error"] }) => mine(e) && ran.push({ ...base(e), outcome: "failed", error: e.error!, durationMs: took(e) });
  const onRetrying = (e: Ev & { error: DrainedTask["error"] }) => mine(e) && ran.push({ ...base(e), outcome: "retried", error: e.error!, durationMs: took(e) });
  jobs.on("started", onStarted);
  jobs.on("succeeded", onSucceeded);
  jobs.on("failed", onFailed);
  jobs.on("retrying", onRetrying);
  let idle: (() => void) | null = null;
  const onIdle = () => idle?.();
  worker.on("idle", onIdle);
  try {
    await worker.start();
    for (;;) {
      // Wake on the worker's idle event, or look again shortly: idle fires before the
      // acknowledgement of the last task lands, and a chain's next step is inserted by it.
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          idle = null;
          resolve();
        }, 20);
        idle = () => {
          clearTimeout(t);
          idle = null;
          resolve();
        };
      });
      if (promotable.length > 0) await promote(jobs, queues, promotable);
      const s = worker.stats();
      if (s.running === 0 && s.buffered === 0 && s.pendingAcks === 0) {
        // The database is the judge: nothing ready (or to be promoted) in these queues, nothing
        // held by this worker (a task whose acknowledgement is in flight is still 'running'; one
        // whose failure landed since the promotion above is 'retrying', promoted next time round).
        const { rows } = await jobs.pool.query<{ waiting: number; held: number }>(
          `select count(*) filter (where state <> 'running')::int as waiting,
                  count(*) filter (where state = 'running')::int as held
             from ${jobs.schema}.tasks
            where ((state = 'ready' or state::text = any($3::text[])) and queue = any($1::text[]))
               or (state = 'running' and worker_id = $2)`,
          [queues, worker.id, promotable],
        );
        if (rows[0]!.waiting === 0 && rows[0]!.held === 0) break;
      }
      if (performance.now() > deadline) {
        throw new DrainTimeoutError(
          `drain did not finish within ${timeoutMs} ms (queues ${queues.join(",")}; ${ran.length} attempts ran): a task that keeps enqueuing work, or one that hangs? Pass a longer timeout, or look at what ran (error.ran)`,
          ran,
        );
      }
    }
  } finally {
    await worker.stop();
    worker.off("idle", onIdle);
    jobs.off("started", onStarted);
    jobs.off("succeeded", onSucceeded);
    jobs.off("failed", onFailed);
    jobs.off("retrying", onRetrying);
  }
}

/** Make waiting tasks (retries in backoff, countdowns) of these queues ready now, and wake the worker. */
async function promote(jobs: Jobs, queues: string[], states: string[]): Promise<number> {
  const { rows } = await jobs.pool.query<{ n: number }>(
    `with p as (
       update ${jobs.schema}.tasks t set state = 'ready'
        where t.state::text = any($2::text[]) and t.queue = any($1::text[])
       returning t.queue
     )
     select coalesce(sum(g.n), 0)::int as n
       from (select queue, count(*) as n, pg_notify($3, queue) from p group by queue) g`,
    [queues, states, channels(jobs.schema).ready],
  );
  return rows[0]!.n;
}
