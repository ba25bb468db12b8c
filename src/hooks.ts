import type { Headers } from "./context.js";
import type { AttemptInfo, TaskEventInfo } from "./events.js";
import type { Json } from "./json.js";

/**
 * Extension points for integrations (OpenTelemetry, metrics, test helpers). Hooks run in the
 * order they were added; a hook that throws fails the enqueue or the attempt it was part of.
 *
 * ```ts
 * jobs.addHook({
 *   beforeEnqueue: ({ headers }) => ({ ...headers, traceparent: currentTraceparent() }),
 *   aroundAttempt: (info, headers, run) => tracer.startActiveSpan(info.name, () => run()),
 * });
 * ```
 */
export interface JobsHook {
  /**
   * Called before tasks are written, with their names and queues: once per delay() or
   * applyAsync(), once per task of an enqueueMany, once per canvas. Return headers to replace them.
   */
  beforeEnqueue?(info: { names: string[]; queues: string[]; headers: Headers }): Headers | void;
  /**
   * Called after the enqueue committed (or, inside a caller's transaction, was written). For a
   * canvas: every task it will create, including later steps not enqueued yet (their ids exist).
   */
  afterEnqueue?(tasks: TaskEventInfo[], options: { inTransaction: boolean }): Promise<void> | void;
  /** Wraps each attempt's handler call in a worker: call `run()` and return what it returns. */
  aroundAttempt?(info: AttemptInfo & { runAt: Date; claimedAt: Date }, headers: Headers, run: () => Promise<Json>): Promise<Json>;
}

/** Apply the hooks' beforeEnqueue in order. */
export function enqueueHeaders(hooks: readonly JobsHook[], names: string[], queues: string[], headers: Headers): Headers {
  let h = headers;
  for (const hook of hooks) {
    if (hook.beforeEnqueue) h = hook.beforeEnqueue({ names, queues, headers: h }) ?? h;
  }
  return h;
}

/** Nest the hooks' aroundAttempt around `run`, the first added outermost. */
export function aroundAttempt(
  hooks: readonly JobsHook[],
  info: AttemptInfo & { runAt: Date; claimedAt: Date },
  headers: Headers,
  run: () => Promise<Json>,
): Promise<Json> {
  let next = run;
  for (let i = hooks.length - 1; i >= 0; i--) {
    const hook = hooks[i]!;
    if (!hook.aroundAttempt) continue;
    const inner = next;
    next = () => hook.aroundAttempt!(info, headers, inner);
  }
  return next();
}
