import { AsyncLocalStorage } from "node:async_hooks";
import type { Json } from "./json.js";
import { checkJson } from "./json.js";

export type Headers = Record<string, Json>;

const headersStore = new AsyncLocalStorage<Headers>();

/** The task whose handler is running in this async context: enqueues made here are its children. */
export interface CurrentTask {
  id: string;
  name: string;
}
export const currentTask = new AsyncLocalStorage<CurrentTask>();

/**
 * Context propagation (Celery's headers): values set with `run()` travel in the `headers` of every
 * task enqueued inside `fn`, arrive in the handler as `ctx.headers`, and flow on to the tasks that
 * handler enqueues.
 *
 * ```ts
 * await jobs.context.run({ locale: "de", requestId }, () => sendReceipt.delay(order.id));
 * ```
 */
export const context = {
  run<T>(values: Headers, fn: () => T): T {
    checkJson(values, "context", "context values");
    return headersStore.run({ ...(headersStore.getStore() ?? {}), ...values }, fn);
  },
  /** The values in effect here (an empty object outside any `run`). */
  get(): Readonly<Headers> {
    return headersStore.getStore() ?? {};
  },
};

/** Run `fn` with exactly these headers in effect (the worker does this around each handler). */
export function withHeaders<T>(headers: Headers, task: CurrentTask, fn: () => T): T {
  return headersStore.run(headers, () => currentTask.run(task, fn));
}
