import { randomUUID } from "node:crypto";
import type pg from "pg";
import { PgJobsError, TaskFailedError, TimeoutError } from "./errors.js";
import type { Listener } from "./listener.js";
import type { Logger } from "./logger.js";
import { reconnectDelay } from "./backoff.js";
import { runPrepared } from "./db.js";
import { channels, statement } from "./sql.js";
import type { Json } from "./json.js";

export type TaskState = "pending" | "ready" | "running" | "succeeded" | "failed" | "retrying" | "cancelled";
export const FINAL_STATES: ReadonlySet<TaskState> = new Set(["succeeded", "failed", "cancelled"]);

export interface TaskRecord {
  id: string;
  name: string;
  state: TaskState;
  result: Json | null;
  error: { name: string; message: string; stack?: string } | null;
  progress: { value: Json; meta?: Json } | null;
  attempts: number;
  max_attempts: number;
  queue: string;
}

interface Waiter {
  resolve: (rec: TaskRecord) => void;
  reject: (err: unknown) => void;
  /** A missing row is "not enqueued yet", not an error. */
  mayNotExistYet: boolean;
}

/**
 * Resolves AsyncResult.get() calls. One LISTEN channel (<schema>.done) serves every waiter in the
 * process; a waiter registers its ids in result_waiters so finishing statements notify only
 * where someone waits. The order is: LISTEN, register, then read the row — so a task finishing at
 * any moment is seen either by the read or by the notification. A slow poll covers lost
 * notifications and refreshes the registration.
 */
export class ResultWaiters {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly token = randomUUID();
  private subscribed: Promise<void> | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private checking = false;
  private recheck = new Set<string>();
  private failedChecks = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly listener: () => Listener,
    private readonly log: Logger,
    private readonly pollMs: number,
  ) {}

  /**
   * Resolve with the tasks' rows once all are in a final state (in the order of `ids`); reject
   * with `timeoutError()` after `timeoutMs`. With `mayNotExistYet`, a missing row means "not
   * enqueued yet" (a chain's later step, a chord's callback), not an error.
   */
  async wait(ids: string[], opts: { timeoutMs?: number; timeoutError?: () => Error; mayNotExistYet?: boolean } = {}): Promise<TaskRecord[]> {
    const mine: Array<[string, Waiter]> = [];
    const settled = Promise.all(
      ids.map(
        (id) =>
          new Promise<TaskRecord>((resolve, reject) => {
            const waiter = { resolve, reject, mayNotExistYet: opts.mayNotExistYet === true };
            let set = this.waiters.get(id);
            if (!set) {
              set = new Set();
              this.waiters.set(id, set);
            }
            set.add(waiter);
            mine.push([id, waiter]);
          }),
      ),
    );
    // The timeout bounds the waiting, not the first read: a task that already finished is
    // returned even with { timeout: 1 }. If that first read itself hangs (the database is
    // unreachable), the timeout still fires, one second late at most.
    let timer: NodeJS.Timeout | undefined;
    let firstReadDone = false;
    let expired = false;
    let giveUp!: () => void;
    const gaveUp = new Promise<never>((_, reject) => {
      giveUp = () => reject(opts.timeoutError ? opts.timeoutError() : new Error(`timed out after ${opts.timeoutMs} ms`));
    });
    gaveUp.catch(() => {});
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        expired = true;
        if (firstReadDone) giveUp();
        else timer = setTimeout(giveUp, 1_000);
      }, opts.timeoutMs);
    }
    let outcome: { value: TaskRecord[] } | null = null;
    settled.then((value) => (outcome = { value }), () => {});
    try {
      await Promise.race([
        (async () => {
          this.startPoll();
          try {
            await this.subscribe();
            await runPrepared(this.pool, statement(this.schema, "result_waiter_add"), [ids, this.token]);
          } catch (err) {
            // The database is unreachable: the poll registers and re-reads once it is back.
            this.log.warn({ err: (err as Error).message }, "could not register a result waiter yet; polling");
          }
          await this.check(ids);
        })(),
        gaveUp,
      ]);
      firstReadDone = true;
      // Let the waiters the first read settled resolve `settled` before looking at the clock.
      await new Promise((r) => setImmediate(r));
      if (outcome) return (outcome as { value: TaskRecord[] }).value;
      if (expired) giveUp();
      return await Promise.race([settled, gaveUp]);
    } finally {
      clearTimeout(timer);
      // Whatever did not settle (timeout, or another member failed first) stops waiting.
      const dropped: string[] = [];
      for (const [id, w] of mine) {
        const set = this.waiters.get(id);
        if (!set || !set.delete(w)) continue;
        if (set.size === 0) {
          this.waiters.delete(id);
          dropped.push(id);
        }
      }
      if (dropped.length > 0) this.drop(dropped);
      settled.catch(() => {});
    }
  }

  private subscribe(): Promise<void> {
    this.subscribed ??= (async () => {
      const l = this.listener();
      // Registrations that failed during the outage are made now, then everything is re-read.
      l.onReconnect(() => {
        const ids = [...this.waiters.keys()];
        if (ids.length === 0) return;
        runPrepared(this.pool, statement(this.schema, "result_waiter_add"), [ids, this.token])
          .catch(() => {})
          .finally(() => void this.check(ids));
      });
      await l.subscribe(channels(this.schema).done, (payload) => {
        const ids = payload.split(",").filter((id) => this.waiters.has(id));
        if (ids.length > 0) void this.check(ids);
      });
    })();
    return this.subscribed;
  }

  private startPoll(): void {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => {
      const ids = [...this.waiters.keys()];
      if (ids.length === 0) return;
      runPrepared(this.pool, statement(this.schema, "result_waiter_add"), [ids, this.token]).catch(() => {});
      void this.check(ids);
    }, this.pollMs);
    this.pollTimer.unref();
  }

  /** Read these tasks and settle the waiters of those that finished. Coalesces concurrent calls. */
  private async check(ids: string[]): Promise<void> {
    for (const id of ids) this.recheck.add(id);
    if (this.checking) return;
    this.checking = true;
    try {
      while (this.recheck.size > 0) {
        const batch = [...this.recheck];
        this.recheck.clear();
        let rows: TaskRecord[];
        try {
          rows = await runPrepared<TaskRecord>(this.pool, statement(this.schema, "task_wait_check"), [batch]);
        } catch (err) {
          // Read again soon rather than at the poll: a read that lost a deadlock (it share-locks
          // running rows while a finish of the same rows locks them in another order) has a
          // finish committing right behind it, possibly one that sent no NOTIFY because it began
          // before this waiter registered.
          for (const id of batch) this.recheck.add(id);
          this.failedChecks++;
          const delay = reconnectDelay(this.failedChecks, 50, this.pollMs);
          this.log.warn({ err: (err as Error).message, retryInMs: delay }, "reading results failed; reading again");
          this.retryTimer ??= setTimeout(() => {
            this.retryTimer = null;
            void this.check([]);
          }, delay);
          return;
        }
        this.failedChecks = 0;
        const finished: string[] = [];
        for (const row of rows) {
          if (!FINAL_STATES.has(row.state)) continue;
          const set = this.waiters.get(row.id);
          if (!set) continue;
          this.waiters.delete(row.id);
          finished.push(row.id);
          for (const w of set) w.resolve(row);
        }
        const found = new Set(rows.map((r) => r.id));
        for (const id of batch) {
          if (found.has(id)) continue;
          const set = this.waiters.get(id);
          if (!set) continue;
          for (const w of set) {
            if (w.mayNotExistYet) continue;
            set.delete(w);
            w.reject(new PgJobsError(`task ${id} does not exist (never enqueued, rolled back, or pruned after its retention): check the id`));
          }
          if (set.size === 0) {
            this.waiters.delete(id);
            finished.push(id);
          }
        }
        if (finished.length > 0) this.drop(finished);
      }
    } finally {
      this.checking = false;
    }
  }

  private drop(ids: string[]): void {
    runPrepared(this.pool, statement(this.schema, "result_waiter_remove"), [ids, this.token]).catch(() => {});
    if (this.waiters.size === 0 && this.pollTimer) {
      clearInterval(this.pollTimer);
      this.pollTimer = null;
    }
  }

  async stop(): Promise<void> {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.recheck.clear();
    const ids = [...this.waiters.keys()];
    for (const set of this.waiters.values()) {
      for (const w of set) w.reject(new Error("pgjobs: jobs.close() was called while waiting for a result"));
    }
    this.waiters.clear();
    if (ids.length > 0) {
      await runPrepared(this.pool, statement(this.schema, "result_waiter_remove"), [ids, this.token]).catch(() => {});
    }
  }
}

export interface ResultBackend {
  readonly schema: string;
  readonly pool: pg.Pool;
  readonly waiters: ResultWaiters;
  cancel(ids: string[]): Promise<string[]>;
}

/**
 * The handle to a task's outcome, readable from any process by id: `jobs.result(id)`.
 *
 * ```ts
 * const r = await add.delay(2, 2);
 * await r.get({ timeout: 10_000 }); // 4
 * ```
 */
export class AsyncResult<R = unknown> {
  constructor(
    readonly id: string,
    readonly taskName: string,
    private readonly backend: ResultBackend,
    /** A workflow step not enqueued yet (a chain's later step, a chord's callback) reads as pending. */
    readonly mayNotExistYet = false,
  ) {}

  /** The task's row as SQL sees it now. */
  async record(): Promise<TaskRecord> {
    const [row] = await runPrepared<TaskRecord>(this.backend.pool, statement(this.backend.schema, "task_get_many"), [[this.id]]);
    if (!row) {
      if (this.mayNotExistYet) {
        return { id: this.id, name: this.taskName, state: "pending", result: null, error: null, progress: null, attempts: 0, max_attempts: 0, queue: "" };
      }
      throw new PgJobsError(`task ${this.taskName} (id ${this.id}) does not exist (never enqueued, rolled back, or pruned after its retention): check the id`);
    }
    return row;
  }

  async state(): Promise<TaskState> {
    return (await this.record()).state;
  }

  /** True once the task succeeded, failed for good, or was cancelled. */
  async ready(): Promise<boolean> {
    return FINAL_STATES.has(await this.state());
  }

  /** The latest progress the handler stored with ctx.progress(), or null. */
  async progress(): Promise<TaskRecord["progress"]> {
    return (await this.record()).progress;
  }

  /**
   * Wait for the task to finish and return its result. Woken by NOTIFY, not by polling; resolves
   * at once for a task that already finished. Rejects with TaskFailedError (the recorded name,
   * message and stack) if it failed for good or was cancelled, and with TimeoutError after
   * `timeout` milliseconds.
   */
  async get(options: { timeout?: number } = {}): Promise<R> {
    const [rec] = await this.backend.waiters.wait([this.id], {
      timeoutMs: options.timeout,
      timeoutError: () => new TimeoutError(`task ${this.taskName} (id ${this.id}) did not finish within ${options.timeout} ms: call get() again to keep waiting`),
      mayNotExistYet: this.mayNotExistYet,
    });
    return unwrap<R>(rec!, this.taskName);
  }

  /** Cancel the task: a queued task never runs; a running one has its ctx.signal aborted. */
  async revoke(): Promise<boolean> {
    const ids = await this.backend.cancel([this.id]);
    return ids.length > 0;
  }
}

export function unwrap<R>(rec: TaskRecord, taskName: string): R {
  if (rec.state === "succeeded") return rec.result as R;
  const cause = rec.error ?? { name: rec.state === "cancelled" ? "Cancelled" : "Error", message: `task ended ${rec.state}` };
  throw new TaskFailedError(rec.name ?? taskName, rec.id, cause);
}
