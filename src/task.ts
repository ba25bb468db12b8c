import type { AsyncResult } from "./result.js";
import type { DbLike } from "./db.js";
import type { Duration } from "./duration.js";
import type { Json } from "./json.js";
import type { Headers } from "./context.js";
import type { TaskLogger } from "./logger.js";

/** What a handler receives first, before its arguments. */
export interface TaskContext {
  /** The task's id (a bigint, as a string). */
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  /** 1 on the first attempt. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** Aborted on timeout, on revoke, and when the worker shuts down past its grace period. */
  readonly signal: AbortSignal;
  /** Structured log lines tagged with the task's id, name and attempt. */
  readonly log: TaskLogger;
  /** Propagated context (see `jobs.context.run`). */
  readonly headers: Readonly<Headers>;
  /** Store progress, visible in SQL (`tasks.progress`) and to `AsyncResult.progress()`. */
  progress(value: Json, meta?: Json): Promise<void>;
}

export type Handler<A extends unknown[], R> = (ctx: TaskContext, ...args: A) => R | Promise<R>;

export type Backoff =
  | "exponential"
  | "fixed"
  | { type?: "exponential" | "fixed"; delay?: Duration; maxDelay?: Duration };

export interface TaskOptions {
  /** Queue the task goes to unless the call says otherwise. Default "default". */
  queue?: string;
  /** Higher runs first, -100 to 100. Default 0. */
  priority?: number;
  /** Retries after the first attempt (max attempts = retries + 1). Default 3. */
  retries?: number;
  /** Delay between attempts: exponential (default: 1 s, 2 s, 4 s, ... with jitter, capped at 1 h) or fixed. */
  backoff?: Backoff;
  /** An attempt running longer is aborted (ctx.signal) and fails. Default: no limit. */
  timeout?: Duration;
}

export interface ApplyOptions {
  /** Run no sooner than this many **seconds** from now (Celery's countdown), or a duration string ("90s", "5m"). */
  countdown?: number | Duration;
  /** Run no sooner than this instant. */
  eta?: Date;
  priority?: number;
  queue?: string;
  /** Dedup key: while an unfinished task holds it, enqueue returns that task instead of a new one. */
  key?: string;
  retries?: number;
  timeout?: Duration;
  /** Extra headers, merged over the propagated context. */
  headers?: Headers;
  /** Enqueue in the caller's transaction: a pg Client/PoolClient or a Kysely transaction. */
  db?: DbLike;
}

export type SignatureOptions = Omit<ApplyOptions, "db" | "eta"> & { eta?: string };

/**
 * A task invocation as a plain, serialisable value (Celery's signature): `add.s(2, 2)`.
 * `immutable` signatures (`.si()`) ignore the previous step's result in a chain or chord.
 */
export interface Signature<R = unknown> {
  readonly kind: "signature";
  readonly task: string;
  readonly args: Json[];
  readonly options: SignatureOptions;
  readonly immutable: boolean;
  /** Error callbacks (Celery's link_error), applied with `{id, name, error}` of the failed task prepended. */
  readonly errbacks?: Signature[];
  /** Type-level only: the handler's result. */
  readonly __result?: R;
}

/** What signatures made by task handles can also do (non-enumerable: the data stays plain JSON). */
export interface SignatureMethods<R> {
  /** A copy of this signature with an error callback added. */
  onError(errback: Signature): BoundSignature<R>;
  /** Enqueue this signature. */
  applyAsync(options?: { db?: DbLike }): Promise<AsyncResult<R>>;
  delay(): Promise<AsyncResult<R>>;
}

export type BoundSignature<R> = Signature<R> & SignatureMethods<R>;

/** Arguments after the first: what `.s()` takes when a chain supplies the first one. */
export type TailArgs<A extends unknown[]> = A extends [unknown, ...infer T] ? T : never;

/** The typed handle `jobs.task()` returns. */
export interface Task<A extends unknown[], R> {
  readonly name: string;
  readonly options: Readonly<TaskOptions>;
  readonly handler: Handler<A, R>;
  /** Enqueue with these arguments: `await add.delay(2, 2)`. */
  delay(...args: A): Promise<AsyncResult<Awaited<R>>>;
  /** Enqueue with options: `await add.applyAsync([2, 2], { countdown: 60, db: trx })`. */
  applyAsync(args: A, options?: ApplyOptions): Promise<AsyncResult<Awaited<R>>>;
  /** A signature; in a chain or chord the previous result is prepended to these arguments. */
  s(...args: A | TailArgs<A>): BoundSignature<Awaited<R>>;
  /** An immutable signature: called with exactly these arguments. */
  si(...args: A): BoundSignature<Awaited<R>>;
  /** A signature with options: `add.signature([2, 2], { queue: "math" })`. */
  signature(args: A | TailArgs<A>, options?: SignatureOptions & { immutable?: boolean }): BoundSignature<Awaited<R>>;
}
