import { toMs } from "./duration.js";
import type { Backoff } from "./task.js";

/** Capped exponential backoff with jitter, for reconnects and retried acknowledgements: 100 ms, 200 ms, ... up to `capMs`. */
export function reconnectDelay(failures: number, baseMs = 100, capMs = 5_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(failures, 1) - 1, 16));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * Delay before the next attempt of a task whose attempt `attempt` (1-based) failed.
 * Exponential: delay × 2^(attempt-1), with "equal jitter" (a random point in the upper half), so
 * retries of many tasks that failed together spread out while each task's delays still grow:
 * attempt 1 waits 0.5-1 × delay, attempt 2 1-2 ×, attempt 3 2-4 ×. Fixed: delay ± 25 %.
 */
export function retryDelay(backoff: Backoff | undefined, attempt: number): number {
  const spec = typeof backoff === "string" || backoff === undefined ? { type: backoff ?? "exponential" } : backoff;
  const base = toMs(spec.delay ?? 1_000, "backoff.delay");
  const max = toMs(spec.maxDelay ?? 3_600_000, "backoff.maxDelay");
  if (spec.type === "fixed") return Math.round(Math.min(max, base * (0.75 + Math.random() * 0.5)));
  const d = Math.min(max, base * 2 ** Math.min(attempt - 1, 30));
  return Math.round(d / 2 + Math.random() * (d / 2));
}
