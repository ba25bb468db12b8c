import type pg from "pg";
import { reconnectDelay } from "./backoff.js";
import { runPrepared } from "./db.js";
import type { Logger } from "./logger.js";
import { statement } from "./sql.js";

export interface SuccessAck {
  id: string;
  attempt: number;
  result: string; // JSON text
  onDone: (applied: boolean) => void;
}

export interface FailureAck {
  id: string;
  attempt: number;
  error: string; // JSON text
  /** null: fail for good. */
  retryDelayMs: number | null;
  onDone: (applied: boolean, finalFailure: boolean) => void;
}

/**
 * Acknowledges attempts in batches: everything that finished while the previous statement was in
 * flight goes in the next one, so a busy worker writes one statement per batch, not per task.
 * Acknowledgements cannot be lost (STYLE.md 12): a failed statement is retried with capped,
 * jittered backoff until it lands; the statements are idempotent because each row states what
 * it expects (running, this worker, this attempt).
 */
export class Finisher {
  private successes: SuccessAck[] = [];
  private failures: FailureAck[] = [];
  private flushing: Promise<void> | null = null;
  private scheduled = false;
  private nextRetryListener: ((at: Date) => void) | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly workerId: string,
    private readonly log: Logger,
  ) {}

  /** Told the earliest run_at of tasks this flush put back to 'retrying'. */
  onRetryScheduled(fn: (at: Date) => void): void {
    this.nextRetryListener = fn;
  }

  succeed(ack: SuccessAck): void {
    this.successes.push(ack);
    this.schedule();
  }

  fail(ack: FailureAck): void {
    this.failures.push(ack);
    this.schedule();
  }

  get pending(): number {
    return this.successes.length + this.failures.length;
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flushing = this.flushLoop().finally(() => {
        this.flushing = null;
        if (this.pending > 0) this.schedule();
      });
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.pending > 0) {
      const ok = this.successes;
      const bad = this.failures;
      this.successes = [];
      this.failures = [];
      await Promise.all([ok.length > 0 ? this.flushSuccesses(ok) : null, bad.length > 0 ? this.flushFailures(bad) : null]);
    }
  }

  private async flushSuccesses(acks: SuccessAck[]): Promise<void> {
    let rows: Array<{ ids: string[] }>;
    try {
      rows = await this.untilLanded("finish", () =>
        runPrepared<{ ids: string[] }>(this.pool, statement(this.schema, "task_finish_many"), [
          acks.map((a) => a.id),
          acks.map((a) => a.attempt),
          acks.map((a) => a.result),
          this.workerId,
        ]),
      );
    } catch (err) {
      // The database refused this batch for good (not a lost connection): find the culprit by
      // halves, and record a refused success as a failure that says why.
      if (acks.length > 1) {
        const half = Math.ceil(acks.length / 2);
        await this.flushSuccesses(acks.slice(0, half));
        await this.flushSuccesses(acks.slice(half));
        return;
      }
      const a = acks[0]!;
      const error = { name: "AcknowledgementRefused", message: `the database refused this task's result: ${oneLine(err)}` };
      await this.flushFailures([{ id: a.id, attempt: a.attempt, error: JSON.stringify(error), retryDelayMs: null, onDone: () => a.onDone(false) }]);
      return;
    }
    const applied = new Set(rows[0]?.ids ?? []);
    for (const a of acks) a.onDone(applied.has(a.id));
  }

  private async flushFailures(acks: FailureAck[], sanitized = false): Promise<void> {
    let rows: Array<{ ids: string[]; failed: string[]; next_retry_at: Date | null }>;
    try {
      rows = await this.untilLanded("fail", () =>
        runPrepared<{ ids: string[]; failed: string[]; next_retry_at: Date | null }>(this.pool, statement(this.schema, "task_fail_many"), [
          acks.map((a) => a.id),
          acks.map((a) => a.attempt),
          acks.map((a) => a.error),
          acks.map((a) => a.retryDelayMs),
          this.workerId,
        ]),
      );
    } catch (err) {
      if (acks.length > 1) {
        const half = Math.ceil(acks.length / 2);
        await this.flushFailures(acks.slice(0, half), sanitized);
        await this.flushFailures(acks.slice(half), sanitized);
        return;
      }
      const a = acks[0]!;
      if (sanitized) {
        // Refused even with a plain error: give up on this one rather than block the others;
        // its lease lapses and the rescuer deals with it.
        this.log.error({ taskId: a.id, err: oneLine(err) }, "the database refused this task's acknowledgement; it will be rescued after its lease");
        a.onDone(false, false);
        return;
      }
      const error = { name: "AcknowledgementRefused", message: `the database refused this task's error record: ${oneLine(err)}` };
      await this.flushFailures([{ ...a, error: JSON.stringify(error) }], true);
      return;
    }
    const applied = new Set(rows[0]?.ids ?? []);
    const failed = new Set(rows[0]?.failed ?? []);
    const next = rows[0]?.next_retry_at;
    if (next && this.nextRetryListener) this.nextRetryListener(next);
    for (const a of acks) a.onDone(applied.has(a.id), failed.has(a.id));
  }

  /**
   * Run until it lands, retrying transient failures (a lost connection, a serialization failure
   * or deadlock, the server shutting down or out of resources) with capped, jittered backoff.
   * Anything else — the database refusing the data — is thrown: retrying it would block every
   * later acknowledgement behind it forever.
   */
  private async untilLanded<T>(what: string, run: () => Promise<T>): Promise<T> {
    for (let failures = 1; ; failures++) {
      try {
        return await run();
      } catch (err) {
        if (!isTransient(err)) throw err;
        const delay = reconnectDelay(failures, 100, 5_000);
        this.log.warn({ err: (err as Error).message, retryInMs: delay, attempt: failures }, `acknowledgement (${what}) failed; retrying`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Resolves when every acknowledgement handed in so far has landed. */
  async drain(): Promise<void> {
    while (this.flushing || this.pending > 0 || this.scheduled) {
      if (this.flushing) await this.flushing;
      else await new Promise((r) => setImmediate(r));
    }
  }
}

/** SQLSTATE classes worth retrying: connection (08), transaction rollback (40: serialization,
 * deadlock), insufficient resources (53), object in use (55), operator intervention (57: admin
 * shutdown, query canceled), system error (58). No SQLSTATE at all: a network error. */
const TRANSIENT_CLASSES = new Set(["08", "40", "53", "55", "57", "58"]);

export function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return TRANSIENT_CLASSES.has(code.slice(0, 2));
}

function oneLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split("\n")[0]!;
}
