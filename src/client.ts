import { EventEmitter } from "node:events";
import pg from "pg";
import { context, currentTask, type Headers } from "./context.js";
import { runPrepared, type DbLike } from "./db.js";
import { toMs, type Duration } from "./duration.js";
import { Enqueuer, type TaskRow } from "./enqueuer.js";
import { InvalidInputError } from "./errors.js";
import { validateQueue, validateSchema, validateTaskId, validateTaskName } from "./identifiers.js";
import { checkJson, plainPrototypes, toJsonText, type Json } from "./json.js";
import { Listener } from "./listener.js";
import { createLogger, type Logger } from "./logger.js";
import { migrate, type MigrateResult } from "./migrator.js";
import { AsyncResult, ResultWaiters, type ResultBackend } from "./result.js";
import { statement } from "./sql.js";
import type { ApplyOptions, BoundSignature, Handler, Signature, SignatureOptions, Task, TaskOptions } from "./task.js";
import { applyCanvas, COLLECT_TASK, signatureJobs } from "./canvas.js";
import { Worker, type WorkerOptions } from "./worker.js";
import type { JobsEvents, TaskEventInfo } from "./events.js";
import { enqueueHeaders, type JobsHook } from "./hooks.js";
import { defineSchedule, saveSchedule, Scheduler, type ScheduleDefinition, type ScheduleSpec, type SchedulerOptions } from "./scheduler.js";

export interface JobsOptions {
  /** Postgres connection string. Give this or `pool`. */
  connectionString?: string;
  /** An existing node-postgres pool (pgjobs does not end it on close()). */
  pool?: pg.Pool;
  /** Pool size when pgjobs creates the pool. Default 10. */
  poolSize?: number;
  /** Schema holding pgjobs' tables. Default "jobs". */
  schema?: string;
  /** A pino logger, or options for the one pgjobs creates. */
  logger?: Logger;
  logLevel?: string;
  /** Largest JSON for a task's arguments or result. Default 1 MiB. */
  maxPayloadBytes?: number;
  /** Fallback poll for AsyncResult.get() when a notification is lost. Default 5 s. */
  resultPoll?: Duration;
}

export type AnyTask = Task<any[], any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const DEFAULT_RETRIES = 3;

/**
 * The entry point: a connection to pgjobs' schema, a registry of tasks, and a factory for
 * workers. One per process is typical.
 *
 * ```ts
 * const jobs = createJobs({ connectionString: process.env.DATABASE_URL });
 * const add = jobs.task("add", async (ctx, a: number, b: number) => a + b);
 * const r = await add.delay(2, 2);
 * console.log(await r.get({ timeout: 10_000 })); // 4
 * ```
 */
export class Jobs extends EventEmitter<JobsEvents> implements ResultBackend {
  readonly schema: string;
  readonly pool: pg.Pool;
  readonly log: Logger;
  readonly waiters: ResultWaiters;
  /** Context propagation: values set here travel in the headers of tasks enqueued inside. */
  readonly context = context;
  readonly maxPayloadBytes: number;
  private readonly ownsPool: boolean;
  private readonly registry = new Map<string, AnyTask>();
  /** @internal Integrations, in the order added. */
  readonly hooks: JobsHook[] = [];
  private readonly schedules = new Map<string, ScheduleDefinition>();
  private readonly enqueuer: Enqueuer;
  private listenerInstance: Listener | null = null;
  private readonly workers = new Set<Worker>();
  private closed = false;
  /**
   * The class of the signatures this Jobs makes: their methods live on its prototype, so a
   * signature's own properties are exactly its JSON data, and making one costs a plain object
   * (building 1,000 signatures with per-signature bound methods took 7 µs each, half of
   * enqueueMany's CPU; a constructor rather than Object.assign onto Object.create halves what is left).
   */
  private readonly Signature: SignatureClass;

  constructor(options: JobsOptions) {
    super();
    this.schema = validateSchema(options.schema ?? "jobs");
    if (!options.pool && !options.connectionString) {
      throw new InvalidInputError("createJobs needs a connectionString or a pool: pass one, e.g. createJobs({ connectionString: process.env.DATABASE_URL })");
    }
    this.ownsPool = !options.pool;
    this.pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString, max: options.poolSize ?? 10 });
    // An idle client's error (server restart, pg_terminate_backend) must not crash the process:
    // the pool drops that client and the next query connects afresh.
    this.pool.on("error", (err) => this.log.warn({ err: err.message }, "idle pool connection lost"));
    this.log = options.logger ?? createLogger({ level: options.logLevel });
    this.maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024;
    this.enqueuer = new Enqueuer(this.pool, this.schema);
    this.waiters = new ResultWaiters(this.pool, this.schema, () => this.listener(), this.log, toMs(options.resultPoll ?? 5_000, "resultPoll"));
    this.Signature = signatureClass(this);
    // Built in: a chord body that returns its header's results (a group inside a chord header).
    this.task(COLLECT_TASK, (_ctx, results: Json) => results);
  }

  /** The process's shared LISTEN connection (created on first use). */
  listener(): Listener {
    if (this.closed) throw new Error("pgjobs: jobs.close() was called");
    this.listenerInstance ??= new Listener({ connection: this.pool.options as pg.ClientConfig, log: this.log });
    return this.listenerInstance;
  }

  /**
   * Register a task and get its typed handle. The handler receives a context, then the arguments.
   *
   * ```ts
   * const fetchPage = jobs.task("fetch_page", async (ctx, since: string, page: number) => {
   *   ctx.log.info("fetching", { page });
   *   return (await fetch(url(since, page), { signal: ctx.signal })).json();
   * }, { queue: "reports", retries: 3, timeout: "30s" });
   * ```
   */
  task<A extends unknown[], R>(name: string, handler: Handler<A, R>, options: TaskOptions = {}): Task<A, R> {
    validateTaskName(name);
    if (this.registry.has(name)) {
      throw new InvalidInputError(`task ${name} is registered twice: give each task a unique name`);
    }
    if (options.queue !== undefined) validateQueue(options.queue, name);
    checkRetries(options.retries, name);
    checkPriority(options.priority, name);
    if (options.timeout !== undefined) toMs(options.timeout, `task ${name}: timeout`);
    const jobs = this;
    const sig = (args: unknown[], immutable: boolean, o?: SignatureOptions & { immutable?: boolean }) => {
      checkJson(args, name, "args");
      let options: SignatureOptions = {};
      if (o) {
        const { immutable: fixed, ...rest } = o;
        options = rest;
        immutable = fixed ?? immutable;
      }
      return new this.Signature(name, args as Json[], options, immutable) as BoundSignature<Awaited<R>>;
    };
    const t: Task<A, R> = {
      name,
      options: Object.freeze({ ...options }),
      handler,
      delay: (...args: A) => jobs.apply<Awaited<R>>(t as AnyTask, args, {}),
      applyAsync: (args: A, o: ApplyOptions = {}) => jobs.apply<Awaited<R>>(t as AnyTask, args, o),
      s: (...args) => sig(args, false),
      si: (...args: A) => sig(args, true),
      signature: (args, o) => sig(args, false, o),
    };
    this.registry.set(name, t as AnyTask);
    return t;
  }

  /** @internal Give a plain signature this Jobs' signature methods (on its prototype). */
  bindSignature<R>(data: Signature<R>): BoundSignature<R> {
    return Object.assign(Object.create(this.Signature.prototype) as BoundSignature<R>, data);
  }

  /**
   * A periodic schedule (Celery beat), defined in code and written to `jobs.schedules` when a
   * worker with `beat` (or `pgjobs beat`) starts. Fires exactly once per tick however many
   * schedulers run.
   *
   * ```ts
   * jobs.schedule("nightly-report", { cron: "0 2 * * *", timezone: "Europe/Berlin" }, produceReport.s("today"));
   * jobs.schedule("heartbeat", { every: "10m" }, ping.s());
   * ```
   */
  schedule(name: string, spec: ScheduleSpec, signature: Signature): ScheduleDefinition {
    const def = defineSchedule(this, name, spec, signature);
    if (this.schedules.has(name)) throw new InvalidInputError(`schedule ${name} is defined twice: give each schedule a unique name`);
    this.schedules.set(name, def);
    return def;
  }

  /** Write the schedules defined in code to the database (updating their definitions). */
  async syncSchedules(): Promise<void> {
    for (const def of this.schedules.values()) await saveSchedule(this, def, true);
  }

  /** A scheduler (beat): fires due schedules until stop(). */
  scheduler(options: SchedulerOptions = {}): Scheduler {
    return new Scheduler(this, options);
  }

  /** The registered task of that name, if any. */
  getTask(name: string): AnyTask | undefined {
    return this.registry.get(name);
  }

  /** Names of the tasks registered in this process. */
  taskNames(): string[] {
    return [...this.registry.keys()];
  }

  private async apply<R>(task: AnyTask, args: unknown[], options: ApplyOptions): Promise<AsyncResult<R>> {
    if (!Array.isArray(args)) {
      throw new InvalidInputError(`task ${task.name}: applyAsync takes its arguments as an array, e.g. applyAsync([2, 2], { countdown: 10 })`);
    }
    const row = this.buildRow(task, args, options);
    const [id] = await this.enqueuer.insert([row], options.db);
    const info = { id: id!, name: task.name, queue: row.queue };
    this.emit("enqueued", info);
    await this.afterEnqueue([info], options.db !== undefined);
    return new AsyncResult<R>(id!, task.name, this);
  }

  /**
   * Enqueue many signatures in one statement (outside a transaction, or in `db`'s).
   *
   * ```ts
   * const results = await jobs.enqueueMany(pages.map((p) => fetchPage.s(since, p)));
   * ```
   */
  async enqueueMany(signatures: Signature[], options: { db?: DbLike } = {}): Promise<AsyncResult[]> {
    const call = enqueueCall();
    const rows = signatures.map((s) => this.rowFromSignature(s, call));
    const ids = await this.enqueuer.insert(rows, options.db);
    // Events and hooks take a TaskEventInfo per task: built only when someone listens.
    if (this.hooks.length > 0 || this.listenerCount("enqueued") > 0) {
      const infos = ids.map((id, i) => ({ id, name: rows[i]!.name, queue: rows[i]!.queue }));
      for (const info of infos) this.emit("enqueued", info);
      await this.afterEnqueue(infos, options.db !== undefined);
    }
    return ids.map((id, i) => new AsyncResult(id, rows[i]!.name, this));
  }

  /** Integrations: see JobsHook. Returns a function that removes the hook. */
  addHook(hook: JobsHook): () => void {
    this.hooks.push(hook);
    return () => {
      const i = this.hooks.indexOf(hook);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /** @internal */
  async afterEnqueue(infos: TaskEventInfo[], inTransaction: boolean): Promise<void> {
    for (const hook of this.hooks) if (hook.afterEnqueue) await hook.afterEnqueue(infos, { inTransaction });
  }

  /** @internal A signature's row, with the defaults of its registered task. */
  rowFromSignature(s: Signature, call?: EnqueueCall): TaskRow {
    const task = this.registry.get(s.task);
    if (!task) throw unknownTask(s.task);
    // buildRow reads a signature's eta (an ISO string) as an applyAsync eta.
    return this.buildRow(task, s.args, s.options, { call });
  }

  /**
   * @internal Validate and serialise one invocation. `runHooks: false` for callers that only
   * validate; `call`: what the rows of one enqueue call share (enqueueCall()).
   */
  buildRow(
    task: AnyTask,
    args: unknown[],
    o: ApplyOptions | SignatureOptions,
    { runHooks = true, call = enqueueCall() }: { runHooks?: boolean; call?: EnqueueCall } = {},
  ): TaskRow {
    const name = task.name;
    // The task's own options were checked when it was registered; a call's are checked here.
    const queue = o.queue === undefined ? (task.options.queue ?? "default") : validateQueue(o.queue, name);
    if (o.priority !== undefined) checkPriority(o.priority, name);
    const priority = o.priority ?? task.options.priority ?? 0;
    if (o.retries !== undefined) checkRetries(o.retries, name);
    const retries = o.retries ?? task.options.retries ?? DEFAULT_RETRIES;
    let runAt: Date | null = null;
    let delayMs: number | null = null;
    if ("eta" in o && o.eta !== undefined) {
      const eta = o.eta instanceof Date ? o.eta : new Date(o.eta);
      if (Number.isNaN(eta.getTime())) throw new InvalidInputError(`task ${name}: eta is not a valid Date`);
      runAt = eta;
    }
    if (o.countdown !== undefined) {
      if (typeof o.countdown === "number" && (!Number.isFinite(o.countdown) || o.countdown < 0)) {
        throw new InvalidInputError(`task ${name}: countdown must be 0 or more seconds, got ${o.countdown}`);
      }
      const ms = typeof o.countdown === "number" ? o.countdown * 1000 : toMs(o.countdown, `task ${name}: countdown`);
      // Sent as a delay: the database adds it to its own now(), whatever this host's clock says.
      if (ms > 0) {
        delayMs = Math.round(ms);
        runAt = null;
      }
    }
    const timeoutMs = o.timeout !== undefined ? toMs(o.timeout, `task ${name}: timeout`) : null;
    if (o.key !== undefined && (typeof o.key !== "string" || o.key.length === 0)) {
      throw new InvalidInputError(`task ${name}: key must be a non-empty string`);
    }
    let headers: string;
    if (o.headers || (runHooks && this.hooks.length > 0)) {
      let h: Headers = o.headers ? { ...call.headers, ...o.headers } : call.headers;
      if (runHooks && this.hooks.length > 0) h = enqueueHeaders(this.hooks, [name], [queue], h);
      headers = toJsonText(h, name, "headers");
    } else {
      // The propagated headers alone (checked when they were set): one text for the whole call.
      headers = call.headersJson ??= JSON.stringify(call.headers);
    }
    return {
      name,
      args: toJsonText(args, name, "args", this.maxPayloadBytes),
      queue,
      priority,
      runAt,
      delayMs,
      maxAttempts: retries + 1,
      key: o.key ?? null,
      headers,
      parentId: call.parentId,
      groupId: null,
      chordId: null,
      timeoutMs: timeoutMs === null ? null : Math.round(timeoutMs),
      workflow: null,
    };
  }

  /** @internal Insert prepared rows (canvas). */
  insertRows(rows: TaskRow[], db?: DbLike): Promise<string[]> {
    return this.enqueuer.insert(rows, db);
  }

  /**
   * The result handle of a task by id, from any process. A missing row is an error ("does not
   * exist"), unless `mayNotExistYet`: then it reads as pending and get() waits, for the id of a
   * workflow step or chord callback that is not enqueued yet (applyCanvas returns such ids).
   */
  result<R = unknown>(id: string | number | bigint, taskName = "task", options: { mayNotExistYet?: boolean } = {}): AsyncResult<R> {
    return new AsyncResult<R>(validateTaskId(id), taskName, this, options.mayNotExistYet ?? false);
  }

  /** Cancel tasks by id; returns the ids that were cancelled (those not finished yet). */
  async cancel(ids: string[]): Promise<string[]> {
    const rows = await runPrepared<{ id: string }>(this.pool, statement(this.schema, "task_cancel_many"), [ids]);
    return rows.map((r) => r.id);
  }

  /** Run failed or cancelled tasks again; returns the ids that were re-queued. */
  async retry(ids: string[]): Promise<string[]> {
    const rows = await runPrepared<{ id: string }>(this.pool, statement(this.schema, "task_retry_many"), [ids]);
    return rows.map((r) => r.id);
  }

  /** Apply pgjobs' schema (idempotent; concurrent calls wait for each other). */
  migrate(options: { log?: (line: string) => void } = {}): Promise<MigrateResult> {
    return migrate(this.pool, { schema: this.schema, ...options });
  }

  /**
   * A worker that runs this process's registered tasks. Call `start()`, and `stop()` to shut down.
   *
   * ```ts
   * const worker = jobs.worker({ queues: ["reports", "email"], concurrency: 20 });
   * await worker.start();
   * ```
   */
  worker(options: WorkerOptions = {}): Worker {
    const w = new Worker(this, options);
    this.workers.add(w);
    w.once("stopped", () => this.workers.delete(w));
    return w;
  }

  /** Stop workers, the listener and result waiters, and end the pool if pgjobs created it. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.workers].map((w) => w.stop()));
    this.closed = true;
    await this.waiters.stop();
    await this.listenerInstance?.stop();
    if (this.ownsPool) await this.pool.end();
  }
}

/** What the rows of one enqueue call share: the propagated headers and the enqueuing task. */
export interface EnqueueCall {
  readonly headers: Headers;
  /** JSON of `headers`, made once for the call when a row needs it. */
  headersJson?: string;
  readonly parentId: string | null;
}

export function enqueueCall(): EnqueueCall {
  return { headers: context.get() as Headers, parentId: currentTask.getStore()?.id ?? null };
}

export function createJobs(options: JobsOptions): Jobs {
  return new Jobs(options);
}

export function unknownTask(name: string): InvalidInputError {
  return new InvalidInputError(`unknown task ${JSON.stringify(name)}: register it with jobs.task(${JSON.stringify(name)}, handler) in this process before enqueueing it`);
}

function checkRetries(retries: unknown, name: string): void {
  if (retries !== undefined && (typeof retries !== "number" || !Number.isInteger(retries) || retries < 0 || retries > 999)) {
    throw new InvalidInputError(`task ${name}: retries must be a whole number from 0 to 999, got ${String(retries)}`);
  }
}

function checkPriority(priority: unknown, name: string): void {
  if (priority !== undefined && (typeof priority !== "number" || !Number.isInteger(priority) || priority < -100 || priority > 100)) {
    throw new InvalidInputError(`task ${name}: priority ${String(priority)} is out of range: use a whole number from -100 to 100 (higher runs first)`);
  }
}

/** A Jobs' signature constructor: (task, args, options, immutable). */
type SignatureClass = new (task: string, args: Json[], options: SignatureOptions, immutable: boolean) => BoundSignature<unknown>;

/**
 * The class of a Jobs' signatures: the methods are non-enumerable on its prototype (JSON.stringify,
 * spreads and Object.keys see the data only). The prototype also tells which Jobs made a signature.
 */
function signatureClass(jobs: Jobs): SignatureClass {
  class JobsSignature {
    declare readonly kind: "signature";
    declare readonly task: string;
    declare readonly args: Json[];
    declare readonly options: SignatureOptions;
    declare readonly immutable: boolean;
    declare readonly errbacks?: Signature[];
    constructor(task: string, args: Json[], options: SignatureOptions, immutable: boolean) {
      // The data properties, in the order a plain signature has them.
      this.kind = "signature";
      this.task = task;
      this.args = args;
      this.options = options;
      this.immutable = immutable;
    }

    onError(errback: Signature) {
      return jobs.bindSignature({ ...this, errbacks: [...(this.errbacks ?? []), errback] });
    }

    async applyAsync(o: { db?: DbLike } = {}) {
      if (!this.errbacks?.length) {
        const [r] = await jobs.enqueueMany([this], o);
        return r;
      }
      return applyCanvas(this, o);
    }

    delay() {
      return this.applyAsync();
    }
  }
  signatureJobs.set(JobsSignature.prototype, jobs);
  plainPrototypes.add(JobsSignature.prototype);
  return JobsSignature as unknown as SignatureClass;
}
