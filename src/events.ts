import type { Json } from "./json.js";

export interface TaskEventInfo {
  id: string;
  name: string;
  queue: string;
}

export interface AttemptInfo extends TaskEventInfo {
  attempt: number;
  maxAttempts: number;
  workerId: string;
}

/**
 * Lifecycle events. `enqueued` fires in the process that enqueued; the others in the worker's.
 *
 * ```ts
 * jobs.on("failed", ({ name, id, error }) => mailAdmins(`task ${name} ${id} failed: ${error.message}`));
 * ```
 */
export interface JobsEvents {
  enqueued: [TaskEventInfo];
  started: [AttemptInfo];
  succeeded: [AttemptInfo & { result: Json; durationMs: number }];
  /** Failed for good: no attempts left, or not retryable. */
  failed: [AttemptInfo & { error: { name: string; message: string; stack?: string }; durationMs: number }];
  /** An attempt failed and the task will run again after `delayMs`. */
  retrying: [AttemptInfo & { error: { name: string; message: string; stack?: string }; delayMs: number; durationMs: number }];
}
