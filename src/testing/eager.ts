import type { Jobs } from "../client.js";
import { toMs, type Duration } from "../duration.js";
import { TaskFailedError } from "../errors.js";
import type { JobsHook } from "../hooks.js";
import type { DrainResult } from "./drain.js";
import { runLineage } from "./runner.js";

export interface EagerOptions {
  /**
   * Make the enqueue call reject with the TaskFailedError of a task it enqueued that failed for
   * good (Celery's task_eager_propagates). Default false: the enqueue resolves, and the result
   * handle's get() rejects.
   */
  propagate?: boolean;
  /** Run a retry at once instead of after its backoff. Default true (Celery runs it inline). */
  retries?: boolean;
  /** Run a task with a countdown or eta at once. Default true (Celery ignores the countdown). */
  scheduled?: boolean;
  /** Give up on one enqueue's work after this long. Default 30 s. */
  timeout?: Duration;
}

export interface Eager {
  /** What each eager enqueue ran, in order. */
  readonly runs: DrainResult[];
  /** Back to normal enqueues. Idempotent. */
  stop(): void;
}

/**
 * Eager mode, Celery's `task_always_eager`: an enqueue runs its task, and everything that task
 * leads to (its retries without their backoff, its countdown, a chain's next steps, a chord's
 * callback, the subtasks it enqueues), before the enqueue call returns. `get()` on the result
 * then answers at once. Other tasks waiting in the same queues are left alone.
 *
 * The tasks run through the database, in this process (src/testing/runner.ts): a task's
 * arguments are checked as JSON, its headers travel, its hooks and events fire, and the rows it
 * leaves are the rows a worker would leave.
 *
 * Transactions: a task enqueued inside a transaction that has not committed does not run at
 * enqueue — no other connection can see it yet, and it must not run if the transaction rolls
 * back. Run it after the commit with `drain(jobs)`, as a worker would; a rolled-back one never
 * existed.
 *
 * ```ts
 * const eagerly = eager(jobs);
 * const r = await add.delay(2, 2);      // add has run when delay() resolves
 * assert.equal(await r.get(), 4);
 * eagerly.stop();
 * ```
 */
export function eager(jobs: Jobs, options: EagerOptions = {}): Eager {
  const { propagate = false, retries = true, scheduled = true } = options;
  const timeoutMs = toMs(options.timeout ?? 30_000, "timeout");
  const runs: DrainResult[] = [];
  const hook: JobsHook = {
    async afterEnqueue(tasks, { inTransaction }) {
      if (inTransaction || tasks.length === 0) return;
      const ids = tasks.map((t) => t.id);
      const ran = await runLineage(jobs, ids, { retries, scheduled, deadline: performance.now() + timeoutMs });
      runs.push({
        ran,
        succeeded: ran.filter((r) => r.outcome === "succeeded").length,
        failed: ran.filter((r) => r.outcome === "failed").length,
        retried: ran.filter((r) => r.outcome === "retried").length,
      });
      if (!propagate) return;
      // The tasks this enqueue created (a canvas's later steps included), not their subtasks.
      const mine = new Set(ids);
      const failure = ran.find((r) => r.outcome === "failed" && mine.has(r.id));
      if (failure) throw new TaskFailedError(failure.name, failure.id, failure.error!);
    },
  };
  const remove = jobs.addHook(hook);
  return { runs, stop: remove };
}
