import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { reconnectDelay, retryDelay } from "./backoff.js";
import type { Jobs } from "./client.js";
import { withHeaders, type Headers } from "./context.js";
import { runPrepared } from "./db.js";
import { toMs, type Duration } from "./duration.js";
import { PgJobsError, serializeError, TimeoutError } from "./errors.js";
import { Finisher } from "./finisher.js";
import { validateQueue } from "./identifiers.js";
import { toJsonText, type Json } from "./json.js";
import { taskLogger } from "./logger.js";
import { channels, statement } from "./sql.js";
import type { TaskContext } from "./task.js";
import type { Scheduler } from "./scheduler.js";
import { aroundAttempt } from "./hooks.js";

export interface WorkerOptions {
  /** Queues to serve. Default ["default"]. */
  queues?: string[];
  /** Handlers running at once. Default 10. */
  concurrency?: number;
  /**
   * Tasks claimed ahead of free slots, so a slot that frees up starts its next task without a
   * round trip to the database. "auto" (the default): as many as `concurrency` while handlers
   * take under a second on average (a moving average), none once they take longer — so short
   * tasks never wait on a claim, and long ones are never held back from idle workers. Measured
   * (peers harness, 5,000 tasks of 20 ms at c = 50, ideal 2 s): 2.37 s with none, 2.09 s with
   * `concurrency`. The buffer is topped up once it is half empty, in one claim, not a claim per
   * freed slot: between half and all of the prefetch is held.
   */
  prefetch?: number | "auto";
  /** Most tasks one claim takes. Default concurrency + prefetch. */
  batchSize?: number;
  /** Fallback poll when notifications are lost. Default 2 s. */
  pollInterval?: Duration;
  /** A running task's lease: if the worker stops renewing it, the task is rescued after this. Default 15 s. */
  lease?: Duration;
  /** How often leases are renewed. Default lease / 3. */
  heartbeatInterval?: Duration;
  /** How often this worker looks for lapsed leases of other workers. Default 5 s. */
  rescueInterval?: Duration;
  /** On stop(), how long running tasks may take to finish. Default 30 s. */
  shutdownGrace?: Duration;
  /** Finished tasks older than this are pruned; false keeps them. Default 7 days. */
  retention?: Duration | false;
  /** How often to prune (finished tasks, stale result waiters, dead workers' rows). Default 1 min. */
  pruneInterval?: Duration;
  /** A name shown in jobs.workers. Default host:pid. */
  name?: string;
  /** Also fire periodic schedules (Celery's -B); any number of workers may. Default false. */
  beat?: boolean;
  /**
   * VACUUM the tasks table when dead tuples pile up (more than 20,000 and 5 % of live rows),
   * one worker at a time, if this role owns the table. Claimed tasks leave dead entries in front
   * of the claim, and autovacuum comes by at most once a minute. Default true.
   */
  vacuum?: boolean;
  /**
   * While idle, offer a slot to enqueues made outside a transaction, which then hand their task
   * straight to this worker, already claimed, with no claim round trip (migration 000016,
   * docs/architecture.md "Hand-off"). Default true.
   */
  handoff?: boolean;
}

/** A task row as task_claim_many returns it. */
export interface Claimed {
  id: string;
  name: string;
  queue: string;
  args: Json[];
  attempts: number;
  max_attempts: number;
  timeout_ms: number | null;
  headers: Headers;
  /** When it was due, and when this attempt was claimed: epoch milliseconds. */
  run_at_ms: number;
  started_at_ms: number;
}

/** A hand-off notification (enqueue_handoff): the task's row, this worker's id and the offer's generation. */
interface HandedOff extends Omit<Claimed, "run_at_ms" | "started_at_ms"> {
  w: string;
  gen: number;
  run_at: string;
  started_at: string;
}

/**
 * One generation of this worker's hand-off offer: the slots it offered (null while the offer is
 * being written), how many enqueues took (known once the offer is replaced or retracted), and
 * how many of those tasks have arrived. Its slots count as busy until every taken one arrived.
 */
interface Offer {
  base: number;
  free: number | null;
  taken: number | null;
  arrived: number;
}

/**
 * One attempt in progress. Its AbortController is made only when the handler reads ctx.signal or
 * the attempt is aborted: most attempts are neither, and making one per attempt (with its abort
 * listener and a second promise to race) was a third of the worker's CPU per no-op task (drain
 * c=50, interleaved runs: 96 -> 62 and 64 -> 43 µs per task).
 */
class Running {
  /** Set once the outcome is decided, so a late handler result is ignored. */
  settled = false;
  private controller: AbortController | null = null;
  private aborted = false;
  private reason: unknown;
  private rejectRace: ((reason: unknown) => void) | null = null;

  constructor(
    readonly row: Claimed,
    readonly startedAt: number,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    this.rejectRace?.(reason);
  }

  /** The handler's outcome, or the abort's reason if the attempt is aborted first. */
  race<T>(handler: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.aborted) reject(this.reason);
      this.rejectRace = reject;
      handler.then(resolve, reject);
    });
  }
}

class Cancelled extends PgJobsError {
  constructor(message: string) {
    super(message);
    this.name = "Cancelled";
  }
}

export interface WorkerEvents {
  /** A claim came back with these tasks. */
  claimed: [{ queue: string; count: number }];
  /** An enqueue handed this task over (hand-off), or it was found after a lost notification (adopted). */
  handedOff: [{ queue: string; id: string; adopted: boolean }];
  /** Nothing running, nothing buffered, and the last claim of every queue came back short. */
  idle: [];
  /** This worker's rescuer made tasks whose lease lapsed runnable again (or failed them for good). */
  rescued: [{ ids: string[]; failed: string[] }];
  /** A late acknowledgement changed nothing (the task was rescued, cancelled or re-run). */
  stale: [{ id: string; attempt: number }];
  stopped: [];
  error: [Error];
}

/**
 * Claims tasks of its queues in batches (SELECT ... FOR UPDATE SKIP LOCKED), keeps up to
 * `concurrency` handlers running, acknowledges in batches, wakes on NOTIFY and polls slowly as a
 * fallback. While idle it offers a slot, and an enqueue made outside a transaction hands it its
 * task already claimed (hand-off: see offer()). It also does the queue's maintenance: rescuing
 * tasks whose lease lapsed, making due tasks ready, and pruning finished tasks past their retention.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  readonly id = randomUUID();
  readonly queues: string[];
  readonly concurrency: number;
  /** The most tasks claimed ahead of free slots (see WorkerOptions.prefetch). */
  private readonly prefetch: number;
  private readonly autoPrefetch: boolean;
  private readonly ackLimit: number;
  /** Moving average of handler durations, for auto prefetch (Infinity until one finished). */
  private avgHandlerMs = Infinity;
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly rescueMs: number;
  private readonly graceMs: number;
  private readonly retentionS: number | null;
  private readonly pruneMs: number;
  private readonly name: string;
  private readonly beat: boolean;
  private readonly vacuum: boolean;
  private readonly finisher: Finisher;
  private scheduler: Scheduler | null = null;

  private readonly active = new Map<string, Running>();
  private buffer: Claimed[] = [];
  private readonly hungry = new Set<string>();
  /** Bumped by every wake-up of a queue, so a claim that came back short while a notification
   * arrived does not mark the queue empty (the notification may be for rows the claim missed). */
  private readonly wakes = new Map<string, number>();
  private unacked = 0;
  /** Tasks whose handler finished and whose acknowledgement has not landed: their lease is still
   * renewed, or a worker whose acknowledgements keep failing would see them rescued and rerun. */
  private readonly acking = new Set<string>();
  private queueCursor = 0;
  /** A claim loop runs (one at a time; a wake while it runs asks it for another round). */
  private filling = false;
  private refill = false;
  /** The latest claim loop, to wait for: start-up housekeeping and shutdown do. */
  private fillDone: Promise<void> = Promise.resolve();
  private claimFailures = 0;

  private state: "new" | "starting" | "running" | "stopping" | "stopped" = "new";
  private timers: NodeJS.Timeout[] = [];
  private dueTimer: NodeJS.Timeout | null = null;
  private dueAt = Infinity;
  private unsubscribe: Array<() => void> = [];
  private stopPromise: Promise<void> | null = null;
  private hardStop: (() => void) | null = null;
  private hardStopRequested = false;
  private wasIdle = false;
  private lastPrune = 0;

  // Hand-off (WorkerOptions.handoff).
  private readonly handoff: boolean;
  private readonly handoffChannel: string;
  private nextGen = 1;
  private readonly offers = new Map<number, Offer>();
  /** The generation in worker_offers, as far as this worker knows. */
  private openGen: number | null = null;
  /** Notifications of generations below this were settled by a resync (adopted or known). */
  private genFloor = 0;
  /** Not sure what was handed to this worker (a lost LISTEN connection, a failed offer write). */
  private needResync = false;

  constructor(
    private readonly jobs: Jobs,
    options: WorkerOptions = {},
  ) {
    super();
    this.queues = (options.queues ?? ["default"]).map((q) => validateQueue(q));
    if (this.queues.length === 0) throw new PgJobsError("a worker needs at least one queue: pass queues: ['default']");
    this.concurrency = positiveInt(options.concurrency ?? 10, "concurrency");
    this.autoPrefetch = (options.prefetch ?? "auto") === "auto";
    this.prefetch = this.autoPrefetch ? this.concurrency : nonNegativeInt(options.prefetch as number, "prefetch");
    this.ackLimit = 4 * (this.concurrency + this.prefetch);
    this.batchSize = positiveInt(options.batchSize ?? Math.min(1000, this.concurrency + this.prefetch), "batchSize");
    this.pollMs = toMs(options.pollInterval ?? 2_000, "pollInterval");
    this.leaseMs = toMs(options.lease ?? 15_000, "lease");
    this.heartbeatMs = toMs(options.heartbeatInterval ?? Math.max(100, Math.floor(this.leaseMs / 3)), "heartbeatInterval");
    this.rescueMs = toMs(options.rescueInterval ?? 5_000, "rescueInterval");
    this.graceMs = toMs(options.shutdownGrace ?? 30_000, "shutdownGrace");
    this.retentionS = options.retention === false ? null : toMs(options.retention ?? "7d", "retention") / 1000;
    this.pruneMs = toMs(options.pruneInterval ?? 60_000, "pruneInterval");
    this.name = options.name ?? `${hostname()}:${process.pid}`;
    this.beat = options.beat ?? false;
    this.vacuum = options.vacuum ?? true;
    this.handoff = options.handoff ?? true;
    // NOTIFY channels are at most 63 bytes; a colliding prefix only delivers payloads that the
    // other worker ignores (they carry the worker's id).
    this.handoffChannel = `${jobs.schema.slice(0, 40)}.handoff.${this.id.replace(/-/g, "").slice(0, 12)}`;
    if (this.heartbeatMs >= this.leaseMs) {
      throw new PgJobsError(`heartbeatInterval (${this.heartbeatMs} ms) must be shorter than lease (${this.leaseMs} ms), or leases lapse on live workers`);
    }
    this.finisher = new Finisher(jobs.pool, jobs.schema, this.id, jobs.log);
    this.finisher.onRetryScheduled((at) => this.armDueTimer(at.getTime() - Date.now()));
    // Emitting "error" with no listener would throw: the log is the default audience.
    this.on("error", () => {});
  }

  private get st() {
    const schema = this.jobs.schema;
    return (name: string) => statement(schema, name);
  }

  private starting: Promise<this> | null = null;

  /** Register, subscribe, and start claiming. Resolves once the worker is listening. */
  start(): Promise<this> {
    if (this.state !== "new") return Promise.reject(new PgJobsError("this worker was already started: create a new one with jobs.worker()"));
    this.state = "starting";
    this.starting = this.startUp();
    return this.starting;
  }

  private async startUp(): Promise<this> {
    const st = this.st;
    const listener = this.jobs.listener();
    const ch = channels(this.jobs.schema);
    // Registering (a pool connection) and subscribing (the LISTEN connection) side by side.
    const [registered, ...subscribed] = await Promise.allSettled([
      runPrepared(this.jobs.pool, st("worker_register"), [
        this.id, this.name, hostname(), process.pid, this.queues, this.concurrency,
        JSON.stringify({ tasks: this.jobs.taskNames(), prefetch: this.autoPrefetch ? "auto" : this.prefetch }),
      ]),
      listener.subscribe(ch.ready, (queue) => {
        if (this.queues.includes(queue)) this.wake([queue]);
      }),
      listener.subscribe(ch.control, (payload) => this.onControl(payload)),
      listener.subscribe(ch.due, (payload) => this.armDueTimer(Number(payload))),
      ...(this.handoff ? [listener.subscribe(this.handoffChannel, (payload) => this.onHandoff(payload))] : []),
    ]);
    for (const s of subscribed) if (s.status === "fulfilled") this.unsubscribe.push(s.value);
    const failed = [registered, ...subscribed].find((r) => r.status === "rejected");
    if (failed) {
      // A failed start leaves no handler behind in the process's shared listener.
      for (const u of this.unsubscribe) u();
      this.unsubscribe = [];
      throw failed.reason;
    }
    this.unsubscribe.push(
      listener.onReconnect(() => {
        // Hand-offs notified while the connection was down are lost: find them by their rows.
        if (this.openGen !== null || this.offers.size > 0) this.needResync = true;
        this.wake(this.queues);
      }),
    );
    // stop() during start(): it waits for this, then shuts down what was set up so far.
    if (this.state !== "starting") return this;
    this.state = "running";

    this.every(this.pollMs, () => {
      this.wake(this.queues);
      this.background(this.stageDue());
    });
    this.every(this.heartbeatMs, () => this.background(this.heartbeat()));
    this.every(this.rescueMs, () => this.background(this.maintain()));
    // The first claim before the housekeeping: started together, staging, rescuing and the
    // vacuum check opened pool connections alongside it and held the first task back 55-70 ms
    // (start() to the first handler: ~115 ms, of an io-drain's 2.0 s ideal).
    this.wake(this.queues);
    const housekeeping = () => {
      if (this.state !== "running") return;
      this.background(this.stageDue());
      this.background(this.maintain());
    };
    void this.fillDone.then(housekeeping);
    if (this.beat) this.scheduler = await this.jobs.scheduler().start();
    if (this.state !== "running") await this.scheduler?.stop();
    this.jobs.log.info({ worker: this.id, queues: this.queues, concurrency: this.concurrency, beat: this.beat }, "worker started");
    return this;
  }

  /** Staging and maintenance in flight: stop() waits for them before it deregisters. */
  private readonly housework = new Set<Promise<void>>();

  private background(p: Promise<void>): void {
    this.housework.add(p);
    void p.finally(() => this.housework.delete(p));
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    this.timers.push(t);
  }

  /** Ask for work from these queues. */
  private wake(queues: string[]): void {
    if (this.state !== "running") return;
    for (const q of queues) {
      this.hungry.add(q);
      this.wakes.set(q, (this.wakes.get(q) ?? 0) + 1);
    }
    void this.fill();
  }

  private fillScheduled = false;

  /**
   * Claim on the next turn of the event loop: handlers that finish in the same turn free their
   * slots together, so one claim fills them all instead of one claim per slot.
   */
  private fillSoon(): void {
    if (this.fillScheduled) return;
    this.fillScheduled = true;
    setImmediate(() => {
      this.fillScheduled = false;
      void this.fill();
    });
  }

  private capacity(): number {
    // Handlers free their slot before their acknowledgement lands; if acknowledgements fall
    // behind (a slow or stalled finish), stop claiming rather than run ever further ahead.
    // Measured on a 1,000,000-task drain: pending acknowledgements reached 1,400-9,350 and the
    // worker 164-272 MB resident without a cap; with 4 x (concurrency + prefetch), <= 300 and
    // 117-140 MB, at the same rate.
    if (this.unacked >= this.ackLimit) return 0;
    return this.concurrency + this.ahead() - this.active.size - this.buffer.length - this.reserved();
  }

  /** Tasks to hold claimed beyond the free slots: the prefetch (auto: none for handlers of a second or more). */
  private ahead(): number {
    return this.autoPrefetch && !(this.avgHandlerMs < 1_000) ? 0 : this.prefetch;
  }

  /**
   * How many to claim now: what there is room for, but nothing while the prefetch buffer is still
   * more than half full. Handlers that finish one by one would otherwise free a slot or two per
   * turn of the event loop, each refilled by a claim of its own: 505 claims of 9.9 tasks each for
   * 5,000 tasks of 20 ms at concurrency 50 (npm run bench -- --only io-drain), each a statement
   * on the server and a round trip here, where batches of half the prefetch take fewer.
   * With nothing buffered, free slots are never left waiting.
   */
  private claimable(): number {
    const room = this.capacity();
    if (room <= 0) return 0;
    if (this.buffer.length > 0 && room < Math.ceil(this.ahead() / 2)) return 0;
    return Math.min(room, this.batchSize);
  }

  /** Slots held for hand-offs: offered and not yet known untaken, or taken and not yet arrived. */
  private reserved(except: number | null = null): number {
    let n = 0;
    for (const [gen, o] of this.offers) if (gen !== except) n += Math.max(0, (o.taken ?? o.free ?? 0) - o.arrived);
    return n;
  }

  private fill(): Promise<void> {
    if (this.filling) {
      this.refill = true;
      return this.fillDone;
    }
    this.fillDone = this.claimRounds();
    return this.fillDone;
  }

  private async claimRounds(): Promise<void> {
    this.filling = true;
    try {
      for (;;) {
        if (this.needResync && this.state === "running") await this.resync();
        // The offered slot counts as busy: take it back first when a claim needs it.
        if (this.openGen !== null && this.hungry.size > 0 && this.capacity() <= 0 && this.state === "running") await this.retract();
        do {
          this.refill = false;
          for (let i = 0; i < this.queues.length && this.state === "running"; i++) {
            const queue = this.queues[(this.queueCursor + i) % this.queues.length]!;
            if (!this.hungry.has(queue)) continue;
            const want = this.claimable();
            if (want <= 0) break;
            const gen = this.wakes.get(queue);
            const rows = await runPrepared<Claimed>(this.jobs.pool, this.st("task_claim_many"), [queue, want, this.id, this.leaseMs]);
            this.claimFailures = 0;
            if (rows.length < want && this.wakes.get(queue) === gen) this.hungry.delete(queue);
            if (rows.length > 0) {
              this.wasIdle = false;
              this.emit("claimed", { queue, count: rows.length });
              if (this.state === "running") {
                for (const r of rows) this.buffer.push(r);
                this.dispatch();
              } else {
                await this.release(rows.map((r) => r.id));
              }
            }
          }
          this.queueCursor = (this.queueCursor + 1) % this.queues.length;
        } while (this.state === "running" && (this.refill || (this.hungry.size > 0 && this.claimable() > 0)));
        if (this.state !== "running") break;
        // Offers are for idle workers: one that now has work takes its offer back. (An idle
        // worker's poll that finds nothing leaves the offer standing: one statement, not three.)
        if (this.openGen !== null && (this.active.size > 0 || this.buffer.length > 0)) {
          await this.retract();
          continue;
        }
        // Queues left hungry for want of capacity while a slot stands offered: take it back, claim.
        if (this.hungry.size > 0) {
          if (this.openGen !== null) continue;
          break;
        }
        // Every queue came back short: offer a slot to enqueues if idle (hand-off).
        if (!this.handoff || this.needResync) break;
        await this.offer();
        if (!this.refill && this.hungry.size === 0 && !this.needResync) break;
      }
    } catch (err) {
      this.claimFailures++;
      this.jobs.log.warn({ err: (err as Error).message }, "claim failed; retrying");
      this.emit("error", err as Error);
      if (this.state === "running") {
        const t = setTimeout(() => this.wake(this.queues), Math.min(5_000, 100 * 2 ** this.claimFailures));
        this.timers.push(t);
      }
    } finally {
      this.filling = false;
    }
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.active.size === 0 && this.buffer.length === 0 && this.hungry.size === 0 && this.unacked === 0 && !this.filling && !this.wasIdle) {
      this.wasIdle = true;
      this.emit("idle");
    }
  }

  private dispatch(): void {
    // Slots held for hand-offs stay free: a handed-off task starts the moment it arrives.
    const held = this.reserved();
    while (this.active.size + held < this.concurrency && this.buffer.length > 0 && this.state !== "stopped") {
      const row = this.buffer.shift()!;
      void this.run(row);
    }
  }

  private async run(row: Claimed): Promise<void> {
    const running = new Running(row, performance.now());
    this.active.set(row.id, running);
    const info = { id: row.id, name: row.name, queue: row.queue, attempt: row.attempts, maxAttempts: row.max_attempts, workerId: this.id };
    const task = this.jobs.getTask(row.name);
    let timer: NodeJS.Timeout | undefined;
    try {
      if (!task) {
        throw Object.assign(
          new PgJobsError(`no handler for task ${row.name} in worker ${this.name} (queues ${this.queues.join(",")}): register it with jobs.task(${JSON.stringify(row.name)}, ...) in the app this worker loads`),
          { name: "UnknownTask", permanent: true },
        );
      }
      if (this.jobs.listenerCount("started") > 0) this.jobs.emit("started", info);
      const timeoutMs = row.timeout_ms ?? (task.options.timeout !== undefined ? toMs(task.options.timeout, "timeout") : null);
      if (timeoutMs !== null) {
        timer = setTimeout(
          () => running.abort(new TimeoutError(`task ${row.name} (id ${row.id}) timed out after ${timeoutMs} ms (attempt ${row.attempts})`)),
          timeoutMs,
        );
      }
      const ctx = taskContext(this.jobs, row, this.id, running);
      const call = () => withHeaders(row.headers, { id: row.id, name: row.name }, async () => (await task.handler(ctx, ...row.args)) as Json);
      const result = await running.race(
        this.jobs.hooks.length > 0 ? aroundAttempt(this.jobs.hooks, { ...info, runAt: new Date(row.run_at_ms), claimedAt: new Date(row.started_at_ms) }, row.headers, call) : call(),
      );
      if (running.settled) return;
      let text: string;
      try {
        text = toJsonText(result ?? null, row.name, "the result", this.jobs.maxPayloadBytes);
      } catch (err) {
        throw Object.assign(err as Error, { permanent: true });
      }
      running.settled = true;
      const durationMs = performance.now() - running.startedAt;
      this.unacked++;
      this.acking.add(row.id);
      this.finisher.succeed({
        id: row.id,
        attempt: row.attempts,
        result: text,
        onDone: (applied) => {
          this.acked(row.id);
          if (!applied) return this.stale(row);
          if (this.jobs.listenerCount("succeeded") > 0) this.jobs.emit("succeeded", { ...info, result: JSON.parse(text) as Json, durationMs });
        },
      });
    } catch (err) {
      if (running.settled) return;
      running.settled = true;
      if (err instanceof Cancelled) return; // cancelled or rescued: the row already says so
      const error = serializeError(err);
      const permanent = (err as { permanent?: boolean }).permanent === true;
      const retry = !permanent && row.attempts < row.max_attempts;
      const delay = retry ? retryDelay(task?.options.backoff, row.attempts) : null;
      const durationMs = performance.now() - running.startedAt;
      this.unacked++;
      this.acking.add(row.id);
      this.finisher.fail({
        id: row.id,
        attempt: row.attempts,
        error: JSON.stringify(error),
        retryDelayMs: delay,
        onDone: (applied, final) => {
          this.acked(row.id);
          if (!applied) return this.stale(row);
          if (final) this.jobs.emit("failed", { ...info, error, durationMs });
          else this.jobs.emit("retrying", { ...info, error, delayMs: delay ?? 0, durationMs });
        },
      });
    } finally {
      clearTimeout(timer);
      const took = performance.now() - running.startedAt;
      this.avgHandlerMs = this.avgHandlerMs === Infinity ? took : this.avgHandlerMs * 0.9 + took * 0.1;
      this.active.delete(row.id);
      this.dispatch();
      // A slot freed up: claim more from queues that may have more. Queues whose last claim came
      // back short are asked again only after a notification or the poll.
      // With nothing to claim, an idle worker offers a slot again (hand-off).
      if (this.state === "running" && (this.hungry.size > 0 ? this.claimable() > 0 : this.handoff && this.active.size === 0)) this.fillSoon();
      if (this.active.size === 0) this.drained?.();
      this.checkIdle();
    }
  }

  private drained: (() => void) | null = null;

  /** How long an offer stands without a heartbeat: an enqueue ignores a lapsed one. */
  private get offerTtlMs(): number {
    return 3 * this.heartbeatMs;
  }

  /**
   * Offer a slot to enqueue_handoff, replacing the previous offer. The statement learns how many
   * of the previous offer's slots were taken; the new one's are those not held by tasks still on
   * their way. Runs inside the claim loop, never beside a claim.
   *
   * One slot, and only while nothing runs here: a worker whose event loop is blocked (a
   * synchronous, CPU-bound handler) cannot start what it is handed, and a handed-off task waits
   * for it while idle workers could have claimed it. Offered while idle, the slot's task is the
   * only one that can be held up that way (a claim would have waited the same). Bursts take the
   * ready path, where claims come in batches.
   */
  private async offer(): Promise<void> {
    const prev = this.openGen;
    const open = prev !== null ? this.offers.get(prev) : undefined;
    const idle = this.active.size === 0 && this.buffer.length === 0 && this.reserved(prev) === 0 && this.unacked < this.ackLimit;
    const base = idle ? 1 : 0;
    // Unchanged since the last offer (nothing arrived, nothing freed): leave it standing.
    if (open ? open.arrived === 0 && open.base === base : base === 0) return;
    const gen = this.nextGen++;
    // In the map before the write: a hand-off can arrive before the statement's answer does.
    const mine: Offer = { base, free: null, taken: null, arrived: 0 };
    this.offers.set(gen, mine);
    let row: { old_gen: string | null; old_taken: number | null; free: number } | undefined;
    try {
      [row] = await runPrepared<{ old_gen: string | null; old_taken: number | null; free: number }>(this.jobs.pool, this.st("worker_offer"), [
        this.id, gen, this.queues, this.handoffChannel, this.leaseMs, base, prev ?? 0, open?.arrived ?? 0, this.offerTtlMs,
      ]);
    } catch (err) {
      // It may have landed: hold its slots until a resync says what was handed over.
      mine.free = base;
      this.openGen = gen;
      this.needResync = true;
      throw err;
    }
    mine.free = row!.free;
    this.openGen = gen;
    this.closeOffer(prev, row!.old_gen, row!.old_taken);
  }

  /** Withdraw the offer: its slots come back, less the tasks taken and still on their way. */
  private async retract(): Promise<void> {
    const prev = this.openGen;
    const [row] = await runPrepared<{ gen: string; taken: number }>(this.jobs.pool, this.st("worker_offer_retract"), [this.id]);
    this.openGen = null;
    this.closeOffer(prev, row?.gen ?? null, row?.taken ?? null);
  }

  /**
   * The offer `prev` was replaced or withdrawn, and the table said which generation it held and
   * how many of its slots were taken. Another generation (or none) than this worker's: find its
   * hand-offs by their rows (resync).
   */
  private closeOffer(prev: number | null, gen: string | null, taken: number | null): void {
    const open = prev !== null ? this.offers.get(prev) : undefined;
    if (!open) return;
    if (gen !== null && Number(gen) === prev) open.taken = taken;
    else this.needResync = true;
    this.settle(prev!);
  }

  /** Forget a generation once all its taken slots arrived; slots it no longer holds may start buffered tasks. */
  private settle(gen: number): void {
    const o = this.offers.get(gen);
    if (o && o.taken !== null && o.arrived >= o.taken) this.offers.delete(gen);
    this.dispatch();
  }

  /**
   * Settle every hand-off whose notification may be lost: withdraw the offer (after which every
   * hand-off to this worker has committed), then take the running tasks that carry this worker's
   * id and that it does not know. Notifications of the generations before are ignored from here.
   * Stopping, those tasks are handed back instead of run.
   */
  private async resync(): Promise<void> {
    this.genFloor = this.nextGen;
    await runPrepared(this.jobs.pool, this.st("worker_offer_retract"), [this.id]);
    this.openGen = null;
    const known = [...this.active.keys(), ...this.buffer.map((b) => b.id), ...this.acking];
    const rows = await runPrepared<Claimed>(this.jobs.pool, this.st("task_handed_unknown"), [this.id, known]);
    this.offers.clear();
    this.needResync = false;
    const adopt = rows.filter((r) => !this.active.has(r.id) && !this.acking.has(r.id));
    if (adopt.length === 0) return this.dispatch();
    this.jobs.log.warn({ tasks: adopt.length }, "found tasks handed to this worker whose notification was lost");
    if (this.state !== "running") return this.release(adopt.map((r) => r.id));
    for (const r of adopt) this.startHandedOff(r, true);
    this.dispatch(); // after the adopted ones: the slots that were held for them are theirs
  }

  /** A task an enqueue handed to this worker (enqueue_handoff's notification). */
  private onHandoff(payload: string): void {
    let m: HandedOff;
    try {
      m = JSON.parse(payload) as HandedOff;
    } catch {
      return;
    }
    if (m.w !== this.id || m.gen < this.genFloor) return;
    const o = this.offers.get(m.gen);
    if (!o || this.active.has(m.id)) return;
    o.arrived++;
    const row: Claimed = { ...m, run_at_ms: Date.parse(m.run_at), started_at_ms: Date.parse(m.started_at) };
    if (this.state !== "running") {
      // Stopping: hand it back (a failure leaves it to the rescuer, after its lease).
      this.background(this.release([row.id]).catch((err: Error) => this.jobs.log.warn({ err: err.message }, "could not hand back a handed-off task")));
    } else {
      this.startHandedOff(row);
    }
    // After the start: settling may start buffered tasks, and the slot is this task's.
    this.settle(m.gen);
  }

  private startHandedOff(row: Claimed, adopted = false): void {
    this.wasIdle = false;
    this.emit("handedOff", { queue: row.queue, id: row.id, adopted });
    void this.run(row);
  }

  /** At shutdown: withdraw the offer and hand back what was handed over and not started. */
  private async withdrawOffer(): Promise<void> {
    if (!this.handoff || (this.openGen === null && this.offers.size === 0 && !this.needResync)) return;
    await this.untilLanded(
      () => this.resync(),
      (err) => this.jobs.log.error({ err: err.message }, "could not withdraw the hand-off offer; tasks handed over meanwhile run after their lease"),
    );
  }

  private acked(id: string): void {
    this.acking.delete(id);
    this.unacked--;
    if (this.unacked === this.ackLimit - 1 && this.state === "running" && this.hungry.size > 0) this.fillSoon();
    if (this.unacked === 0) this.checkIdle();
  }

  private stale(row: Claimed): void {
    this.jobs.log.warn(
      { taskId: row.id, task: row.name, attempt: row.attempts },
      "late acknowledgement changed nothing: the task was rescued, cancelled or re-run meanwhile",
    );
    this.emit("stale", { id: row.id, attempt: row.attempts });
  }

  /** Abort running tasks that were cancelled (NOTIFY from jobs.cancel). */
  private onControl(payload: string): void {
    let msg: { cancel?: Array<string | number> };
    try {
      msg = JSON.parse(payload);
    } catch {
      return;
    }
    for (const id of msg.cancel ?? []) {
      const r = this.active.get(String(id));
      if (r && !r.settled) r.abort(new Cancelled(`task ${r.row.name} (id ${r.row.id}) was cancelled`));
    }
  }

  private isStopped(): boolean {
    return this.state === "stopped";
  }

  private heartbeating = false;
  private heartbeatFailures = 0;
  private heartbeatRetry: NodeJS.Timeout | null = null;

  /** Renew the leases of what this worker holds; abort what it no longer holds. */
  private async heartbeat(): Promise<void> {
    // One at a time: when a renewal takes longer than the interval (a slow or stalled server),
    // overlapping ones would queue up in the pool ahead of the acknowledgements, without end.
    // (stopped: a retry timer that fired after stop() cleared it; state is re-read after awaits.)
    if (this.heartbeating || this.isStopped()) return;
    this.heartbeating = true;
    if (this.heartbeatRetry) clearTimeout(this.heartbeatRetry);
    this.heartbeatRetry = null;
    const ids = [...new Set([...this.active.keys(), ...this.buffer.map((b) => b.id), ...this.acking])];
    try {
      const [row] = await runPrepared<{ held: string[]; registered: boolean }>(this.jobs.pool, this.st("task_renew_leases"), [
        this.id, ids, this.leaseMs, this.offerTtlMs,
      ]);
      if (!row) return;
      if (!row.registered && this.state !== "stopped") {
        await runPrepared(this.jobs.pool, this.st("worker_register"), [
          this.id, this.name, hostname(), process.pid, this.queues, this.concurrency,
          JSON.stringify({ tasks: this.jobs.taskNames(), prefetch: this.autoPrefetch ? "auto" : this.prefetch }),
        ]);
      }
      const held = new Set(row.held);
      for (const id of ids) {
        if (held.has(id)) continue;
        const r = this.active.get(id);
        if (r && !r.settled) r.abort(new Cancelled(`task ${r.row.name} (id ${id}) is no longer held by this worker (cancelled, or rescued after a lapsed lease)`));
        this.buffer = this.buffer.filter((b) => b.id !== id);
      }
      this.heartbeatFailures = 0;
    } catch (err) {
      // Retry soon rather than at the next interval: with a 3 s lease renewed every second, two
      // renewals lost to killed connections (issue 6's outage test kills every 300 ms) and a
      // slow third let the leases lapse, and a live worker's tasks were rescued and run again.
      const retryMs = reconnectDelay(++this.heartbeatFailures, 50, Math.max(50, this.heartbeatMs / 2));
      this.jobs.log.warn({ err: (err as Error).message, retryMs }, "heartbeat failed; retrying");
      if (!this.isStopped()) {
        this.heartbeatRetry = setTimeout(() => this.background(this.heartbeat()), retryMs);
        this.heartbeatRetry.unref();
      }
    } finally {
      this.heartbeating = false;
    }
  }

  /** Make due scheduled/backing-off tasks ready, and arm a timer for the next one. */
  private async stageDue(): Promise<void> {
    try {
      for (;;) {
        const rows = await runPrepared<{ queue: string; n: number }>(this.jobs.pool, this.st("task_stage_due"), [1000]);
        const n = rows.reduce((s, r) => s + r.n, 0);
        if (n < 1000) break;
      }
      const [next] = await runPrepared<{ next_at: Date | null; now: Date }>(this.jobs.pool, this.st("task_next_due"), []);
      if (next?.next_at) this.armDueTimer(next.next_at.getTime() - next.now.getTime());
    } catch (err) {
      this.jobs.log.warn({ err: (err as Error).message }, "staging due tasks failed; retrying at the next poll");
    }
  }

  private armDueTimer(inMs: number): void {
    if (this.state !== "running") return;
    const at = Date.now() + Math.max(0, inMs);
    if (at >= this.dueAt) return;
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.dueAt = at;
    this.dueTimer = setTimeout(() => {
      this.dueTimer = null;
      this.dueAt = Infinity;
      this.background(this.stageDue());
    }, Math.max(0, inMs) + 5);
  }

  /** Rescue lapsed leases, prune old finished tasks, forget dead waiters and workers. */
  private maintaining = false;

  private async maintain(): Promise<void> {
    // A VACUUM or a long prune can outlast the interval: never run two passes at once.
    if (this.maintaining) return;
    this.maintaining = true;
    const pool = this.jobs.pool;
    try {
      const [r] = await runPrepared<{ ids: string[]; failed: string[] }>(pool, this.st("task_rescue_expired"), [1000]);
      if (r && r.ids.length > 0) {
        this.jobs.log.warn({ rescued: r.ids.length, failedForGood: r.failed.length }, "rescued tasks whose lease lapsed");
        this.emit("rescued", { ids: r.ids, failed: r.failed });
      }
      if (this.vacuum) await this.vacuumIfDue();
      if (Date.now() - this.lastPrune >= this.pruneMs) {
        if (this.retentionS !== null) {
          for (let i = 0; i < 100 && this.state === "running"; i++) {
            const res = await pool.query({ name: this.st("task_prune_finished").name, text: this.st("task_prune_finished").text, values: [this.retentionS, 1000] });
            if ((res.rowCount ?? 0) < 1000) break;
          }
        }
        await runPrepared(pool, this.st("result_waiter_prune"), [3600]);
        await runPrepared(pool, this.st("worker_prune_dead"), [3600]);
        this.lastPrune = Date.now();
      }
    } catch (err) {
      this.jobs.log.warn({ err: (err as Error).message }, "maintenance failed; retrying at the next interval");
    } finally {
      this.maintaining = false;
    }
  }

  /** See WorkerOptions.vacuum. The advisory lock keeps it to one worker at a time. */
  private async vacuumIfDue(): Promise<void> {
    const [due] = await runPrepared<{ dead: string; live: string; due: boolean }>(this.jobs.pool, this.st("task_vacuum_due"), [20_000, 0.05]);
    if (!due?.due) return;
    const client = await this.jobs.pool.connect();
    const key = `pgjobs.vacuum:${this.jobs.schema}`;
    try {
      const { rows } = await client.query<{ ok: boolean }>("select pg_try_advisory_lock(hashtext('pgjobs'), hashtext($1)) as ok", [key]);
      if (!rows[0]?.ok) return;
      try {
        const t = performance.now();
        await client.query(`vacuum ${this.jobs.schema}.tasks`);
        this.jobs.log.info({ deadTuples: Number(due.dead), ms: Math.round(performance.now() - t) }, "vacuumed the tasks table");
      } finally {
        await client.query("select pg_advisory_unlock(hashtext('pgjobs'), hashtext($1))", [key]);
      }
    } finally {
      client.release();
    }
  }

  /** Hand tasks back, ready at once, their attempt not counted. */
  private async release(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await runPrepared(this.jobs.pool, this.st("task_release_many"), [ids, this.id]);
  }

  /**
   * Graceful shutdown: stop claiming, hand back tasks claimed but not started (their attempt is
   * not charged), let running tasks finish within the grace period, then abort the rest (their
   * ctx.signal) and hand them back. Idempotent; `{ now: true }` (a second signal) skips the grace.
   */
  stop(options: { now?: boolean; grace?: Duration } = {}): Promise<void> {
    if (options.now) {
      this.hardStopRequested = true;
      this.hardStop?.();
    }
    if (this.stopPromise) return this.stopPromise;
    if (this.state === "new") {
      this.state = "stopped";
      this.stopPromise = Promise.resolve();
      this.emit("stopped");
      return this.stopPromise;
    }
    this.stopPromise = this.shutdown(options.now ? 0 : options.grace !== undefined ? toMs(options.grace, "grace") : this.graceMs);
    return this.stopPromise;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.state = "stopping";
    await this.starting?.catch(() => {});
    await this.scheduler?.stop();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    // Keep the heartbeat while tasks finish; stop everything else.
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.dueTimer) clearTimeout(this.dueTimer);
    const heartbeat = setInterval(() => this.background(this.heartbeat()), this.heartbeatMs);
    try {
      while (this.filling) await this.fillDone;
      await this.withdrawOffer();
      const unstarted = this.buffer.map((b) => b.id);
      this.buffer = [];
      await this.releaseUntilLanded(unstarted);

      if (this.active.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          this.drained = () => {
            clearTimeout(timer);
            resolve();
          };
          this.hardStop = () => {
            clearTimeout(timer);
            resolve();
          };
          if (this.active.size === 0) resolve();
        });
        this.drained = null;
        this.hardStop = null;
      }
      // Past the grace period: abort what still runs and hand it back. The attempt is not
      // counted: the task did not fail, this worker stopped it (a crash, by contrast, counts).
      const interrupted: string[] = [];
      for (const [id, r] of this.active) {
        if (r.settled) continue;
        r.settled = true;
        r.abort(new Cancelled(`worker ${this.name} shut down before task ${r.row.name} (id ${id}) finished`));
        interrupted.push(id);
      }
      // Acknowledgements that cannot land (the database is gone) must not hold a second signal
      // back: what is left is logged, and those tasks run again after their lease.
      const hardStopped = new Promise<void>((resolve) => {
        this.hardStop = resolve;
        // Stopping at once: give acknowledgements in flight a second to land, no more.
        if (this.hardStopRequested) setTimeout(resolve, 1_000).unref();
      });
      await Promise.race([this.finisher.drain(), hardStopped]);
      this.hardStop = null;
      if (this.finisher.pending > 0 || this.unacked > 0) {
        this.jobs.log.warn({ unacknowledged: this.unacked }, "stopped with acknowledgements that did not land; those tasks run again after their lease");
      }
      await this.releaseUntilLanded(interrupted);
      if (interrupted.length > 0) this.jobs.log.warn({ interrupted: interrupted.length }, "handed back tasks still running at the end of the grace period");
    } finally {
      clearInterval(heartbeat);
      this.state = "stopped";
      if (this.heartbeatRetry) clearTimeout(this.heartbeatRetry);
      // Nothing of this worker's may still use the pool once stop() resolves (the app closes it next).
      await Promise.allSettled([...this.housework]);
      await runPrepared(this.jobs.pool, this.st("worker_deregister"), [this.id]).catch(() => {});
      this.jobs.log.info({ worker: this.id }, "worker stopped");
      this.emit("stopped");
    }
  }

  private async releaseUntilLanded(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.untilLanded(
      () => this.release(ids),
      // Their leases lapse and the rescuer hands them out again: late, but not lost.
      (err) => this.jobs.log.error({ err: err.message, tasks: ids.length }, "could not hand tasks back; they will be rescued when their lease lapses"),
    );
  }

  /** A shutdown step, tried five times (200 ms, 400 ms, ... apart); then `giveUp` says what is left to the leases. */
  private async untilLanded(step: () => Promise<void>, giveUp: (err: Error) => void): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (err) {
        if (attempt >= 5) return giveUp(err as Error);
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  /** Tasks running now and claimed-but-not-started. */
  stats(): { running: number; buffered: number; pendingAcks: number } {
    return { running: this.active.size, buffered: this.buffer.length, pendingAcks: this.finisher.pending };
  }
}

/** What a handler receives first: the attempt's identity, signal, logger, headers and progress. */
export function taskContext(
  jobs: Jobs,
  row: Pick<Claimed, "id" | "name" | "queue" | "attempts" | "max_attempts" | "headers">,
  workerId: string,
  /** An AbortController, or anything that makes the signal when first asked (a worker's attempt). */
  abort: { readonly signal: AbortSignal },
): TaskContext {
  let log: TaskContext["log"] | undefined;
  return {
    id: row.id,
    name: row.name,
    queue: row.queue,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    get signal() {
      return abort.signal;
    },
    headers: row.headers,
    get log() {
      return (log ??= taskLogger(jobs.log, { id: row.id, name: row.name, attempt: row.attempts }));
    },
    async progress(value: Json, meta?: Json) {
      const text = toJsonText(meta === undefined ? { value } : { value, meta }, row.name, "progress");
      await runPrepared(jobs.pool, statement(jobs.schema, "task_progress_set"), [row.id, row.attempts, text, workerId]);
    },
  };
}

function positiveInt(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new PgJobsError(`${what} must be a whole number of 1 or more, got ${n}`);
  return n;
}

function nonNegativeInt(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0) throw new PgJobsError(`${what} must be a whole number of 0 or more, got ${n}`);
  return n;
}
