import type { Jobs } from "./client.js";
import { currentTask, context, type Headers } from "./context.js";
import { enqueueHeaders } from "./hooks.js";
import { runOn, runPrepared, type DbLike } from "./db.js";
import { toMs } from "./duration.js";
import { InvalidInputError, TimeoutError } from "./errors.js";
import type { Json } from "./json.js";
import { AsyncResult, FINAL_STATES, unwrap, type TaskRecord } from "./result.js";
import { statement } from "./sql.js";
import type { Signature } from "./task.js";

/**
 * Celery's canvas: group, chain and chord over signatures, nesting freely. A canvas is applied
 * by one SQL call (`<schema>.apply_canvas`), which gives every task its id up front and enqueues
 * what can run now; the rest moves along in the transactions that record each step's success
 * (docs/workflows.md).
 */

/** The built-in callback that turns a group inside a chord header (or a chain) into its list of results. */
export const COLLECT_TASK = "pgjobs.collect";

export type Canvas<R = unknown> = Signature<R> | Group<R> | Chain<R> | Chord<R>;

/** The result type a canvas produces. */
export type CanvasResult<C> = C extends Canvas<infer R> ? R : never;
type Results<S extends readonly Canvas[]> = { -readonly [K in keyof S]: CanvasResult<S[K]> };
type Last<S extends readonly unknown[]> = S extends readonly [...unknown[], infer L] ? L : S[number];

/** What applying a canvas returns: a handle whose get() resolves with the canvas's result. */
export interface ResultHandle<R> {
  get(options?: { timeout?: number }): Promise<R>;
  ready(): Promise<boolean>;
}

export interface ApplyCanvasOptions {
  /** Enqueue in the caller's transaction (a pg client or a Kysely transaction). */
  db?: DbLike;
}

abstract class CanvasBase<R> {
  abstract readonly kind: "group" | "chain" | "chord";
  /** Error callbacks (Celery's link_error): applied with `{id, name, error}` of the failed task prepended. */
  errbacks: Signature[] = [];

  /** Add an error callback; returns this canvas. */
  onError(errback: Signature): this {
    this.errbacks = [...this.errbacks, errback];
    return this;
  }

  /** Enqueue the whole canvas in one statement. */
  applyAsync(options: ApplyCanvasOptions = {}): Promise<ResultHandle<R>> {
    return applyCanvas(this as unknown as Canvas<R>, options);
  }

  /** Enqueue the whole canvas (Celery's delay()). */
  delay(): Promise<ResultHandle<R>> {
    return this.applyAsync();
  }
}

export class Group<R = unknown> extends CanvasBase<R> {
  readonly kind = "group" as const;
  constructor(readonly members: Canvas[]) {
    super();
  }
  override applyAsync(options: ApplyCanvasOptions = {}): Promise<GroupResult<R>> {
    return applyCanvas(this as Canvas<R>, options) as Promise<GroupResult<R>>;
  }
}

export class Chain<R = unknown> extends CanvasBase<R> {
  readonly kind = "chain" as const;
  constructor(readonly steps: Canvas[]) {
    super();
  }
}

export class Chord<R = unknown> extends CanvasBase<R> {
  readonly kind = "chord" as const;
  constructor(
    readonly header: Canvas[],
    readonly body: Canvas<R>,
  ) {
    super();
  }
}

/**
 * Members run in parallel; `get()` returns their results in member order.
 *
 * ```ts
 * const r = await group(items.map((i) => work.s(i))).applyAsync();
 * const results = await r.get();
 * ```
 */
export function group<S extends Canvas[]>(...members: S | [S]): Group<Results<S>> {
  const list = (members.length === 1 && Array.isArray(members[0]) ? members[0] : members) as Canvas[];
  return new Group<Results<S>>(list);
}

/**
 * Steps run one after another, each receiving the previous result as its first argument
 * (unless it is immutable, `.si()`). A step that fails for good stops the chain.
 *
 * ```ts
 * const r = await chain(fetch.s(url), parse.s(), store.s("reports")).applyAsync();
 * ```
 */
export function chain<S extends Canvas[]>(...steps: S | [S]): Chain<CanvasResult<Last<S>>> {
  const list = (steps.length === 1 && Array.isArray(steps[0]) ? steps[0] : steps) as Canvas[];
  return new Chain<CanvasResult<Last<S>>>(list);
}

/**
 * The header runs in parallel; when every member has succeeded, the body runs once with their
 * results in member order. If a member fails for good, the body never runs.
 *
 * ```ts
 * const r = await chord(pages.map((p) => fetchPage.s(since, p)), buildReport.s(since)).applyAsync();
 * ```
 */
export function chord<R>(header: Canvas[] | Group, body: Canvas<R>): Chord<R> {
  return new Chord<R>(header instanceof Group ? header.members : header, body);
}

/** One task per item: `map(work, items)` is `group(items.map((i) => work.s(i)))`. */
export function map<A, R>(task: { s(...args: [A]): Signature<R> }, items: A[]): Group<R[]> {
  return group(items.map((i) => task.s(i))) as Group<R[]>;
}

/** One task per argument list: `starmap(add, [[1, 2], [3, 4]])`. */
export function starmap<A extends unknown[], R>(task: { s(...args: A): Signature<R> }, argLists: A[]): Group<R[]> {
  return group(argLists.map((a) => task.s(...a))) as Group<R[]>;
}

/**
 * Split `items` into chunks of `size`, one task per chunk, each task called with its chunk
 * (an array of items): many small work items, fewer tasks.
 */
export function chunks<A, R>(task: { s(...args: [A[]]): Signature<R> }, items: A[], size: number): Group<R[]> {
  if (!Number.isInteger(size) || size < 1) throw new InvalidInputError(`chunks: size must be a whole number of 1 or more, got ${size}`);
  const parts: A[][] = [];
  for (let i = 0; i < items.length; i += size) parts.push(items.slice(i, i + size));
  return group(parts.map((p) => task.s(p))) as Group<R[]>;
}

/** Results of a group: in member order. */
export class GroupResult<R = unknown[]> implements ResultHandle<R> {
  constructor(
    readonly results: ResultHandle<unknown>[],
    private readonly jobs: Jobs,
  ) {}

  /** Wait for every member; resolve with their results in order, or reject with the first failure. */
  async get(options: { timeout?: number } = {}): Promise<R> {
    const ids = this.leafIds();
    if (ids.length === this.results.length) {
      const recs = await this.jobs.waiters.wait(ids, {
        timeoutMs: options.timeout,
        mayNotExistYet: true,
        timeoutError: () => new TimeoutError(`a group of ${ids.length} tasks did not finish within ${options.timeout} ms: call get() again to keep waiting`),
      });
      return recs.map((rec, i) => unwrap(rec, (this.results[i] as AsyncResult).taskName)) as R;
    }
    return (await Promise.all(this.results.map((r) => r.get(options)))) as R;
  }

  private leafIds(): string[] {
    return this.results.filter((r): r is AsyncResult => r instanceof AsyncResult).map((r) => r.id);
  }

  private async records(): Promise<TaskRecord[]> {
    const ids = this.leafIds();
    return runPrepared<TaskRecord>(this.jobs.pool, statement(this.jobs.schema, "task_get_many"), [ids]);
  }

  /** Members that succeeded so far. */
  async completedCount(): Promise<number> {
    return (await this.records()).filter((r) => r.state === "succeeded").length;
  }

  /** Members that failed for good (or were cancelled) so far. */
  async failedCount(): Promise<number> {
    return (await this.records()).filter((r) => r.state === "failed" || r.state === "cancelled").length;
  }

  async ready(): Promise<boolean> {
    const all = await Promise.all(this.results.map((r) => r.ready()));
    return all.every(Boolean);
  }
}

// ---------------------------------------------------------------------------------------------
// Canvas JSON (the format apply_canvas reads; see migrations/committed/000002-workflows.sql)

type Node =
  | { t: "sig"; id?: string; name: string; args: Json[]; queue: string; priority: number; max_attempts: number; timeout_ms: number | null; countdown_ms: number; immutable: boolean; errbacks?: Node[] }
  | { t: "chain"; steps: Node[]; errbacks?: Node[] }
  | { t: "group"; group_id?: string; members: Node[]; errbacks?: Node[] }
  | { t: "chord"; chord_id?: string; header: Node[]; body: Node; errbacks?: Node[] };

function isSignature(c: unknown): c is Signature {
  return !!c && typeof c === "object" && (c as Signature).kind === "signature";
}

/** The Jobs a canvas belongs to: the one its first signature was made by. */
function jobsOf(c: Canvas): Jobs {
  if (isSignature(c)) {
    const j = signatureJobs.get(Object.getPrototypeOf(c));
    if (!j) throw new InvalidInputError(`signature of ${c.task} was not made by task.s()/.si(): build signatures from task handles`);
    return j;
  }
  const first = c.kind === "group" ? c.members[0] : c.kind === "chain" ? c.steps[0] : c.header[0] ?? c.body;
  if (!first) throw new InvalidInputError(`an empty ${c.kind} has nothing to run: give it at least one signature`);
  return jobsOf(first);
}

/** The Jobs whose signatures have this prototype (signatures stay plain data; see signaturePrototype). */
export const signatureJobs = new WeakMap<object, Jobs>();

function sigNode(jobs: Jobs, s: Signature): Node {
  const task = jobs.getTask(s.task);
  if (!task) throw new InvalidInputError(`unknown task ${JSON.stringify(s.task)} in a canvas: register it with jobs.task() in this process`);
  const row = jobs.buildRow(task, s.args, { ...s.options, eta: undefined, countdown: undefined }, { runHooks: false });
  let countdownMs = 0;
  if (s.options.countdown !== undefined) {
    countdownMs = typeof s.options.countdown === "number" ? s.options.countdown * 1000 : toMs(s.options.countdown, `task ${s.task}: countdown`);
  }
  if (s.options.eta !== undefined) countdownMs = Math.max(0, new Date(s.options.eta).getTime() - Date.now());
  if (s.options.key !== undefined) throw new InvalidInputError(`task ${s.task}: dedup keys are not supported inside a canvas: enqueue it on its own with applyAsync({ key })`);
  return {
    t: "sig",
    name: s.task,
    args: JSON.parse(row.args) as Json[],
    queue: row.queue,
    priority: row.priority,
    max_attempts: row.maxAttempts,
    timeout_ms: row.timeoutMs,
    countdown_ms: Math.round(countdownMs),
    immutable: s.immutable,
    ...(s.errbacks && s.errbacks.length > 0 ? { errbacks: s.errbacks.map((e) => sigNode(jobs, e)) } : {}),
  };
}

/** The collecting body of a group in a chord header runs on its members' queue, which a worker serves. */
function collect(jobs: Jobs, members: Node[]): Node {
  const queue = firstQueue(members);
  return sigNode(jobs, { kind: "signature", task: COLLECT_TASK, args: [], options: queue ? { queue } : {}, immutable: false });
}

function firstQueue(nodes: Node[]): string | undefined {
  for (const n of nodes) {
    const q = n.t === "sig" ? n.queue : firstQueue(n.t === "chain" ? n.steps : n.t === "group" ? n.members : [...n.header, n.body]);
    if (q) return q;
  }
  return undefined;
}

/**
 * Canvas -> JSON, normalised as Celery does: nested chains flatten; a group followed by more
 * steps becomes a chord of that group with the next step as its body; a group inside a chord
 * header becomes a chord whose body collects the group's results into a list.
 */
export function toNode(jobs: Jobs, c: Canvas, inHeader = false): Node {
  const errbacks = isSignature(c) ? [] : c.errbacks.map((e) => sigNode(jobs, e));
  const withErr = <N extends Node>(n: N): N => (errbacks.length > 0 ? { ...n, errbacks: [...(n.errbacks ?? []), ...errbacks] } : n);
  if (isSignature(c)) return sigNode(jobs, c);
  switch (c.kind) {
    case "group": {
      const members = c.members.map((m) => toNode(jobs, m));
      if (inHeader) return withErr({ t: "chord", header: members, body: collect(jobs, members) });
      return withErr({ t: "group", members });
    }
    case "chord":
      return withErr({ t: "chord", header: c.header.map((m) => toNode(jobs, m, true)), body: toNode(jobs, c.body) });
    case "chain": {
      const flat: Canvas[] = [];
      for (const s of c.steps) {
        if (!isSignature(s) && s.kind === "chain" && s.errbacks.length === 0) flat.push(...s.steps);
        else flat.push(s);
      }
      const steps: Node[] = [];
      for (let i = 0; i < flat.length; i++) {
        const s = flat[i]!;
        if (!isSignature(s) && s.kind === "group" && i + 1 < flat.length) {
          // chain(a, group(b, c), d) == chain(a, chord([b, c], d))
          const g = toNode(jobs, s) as Extract<Node, { t: "group" }>;
          steps.push({ t: "chord", header: g.members, body: toNode(jobs, flat[i + 1]!), ...(g.errbacks ? { errbacks: g.errbacks } : {}) });
          i++;
        } else {
          steps.push(toNode(jobs, s, inHeader && flat.length === 1));
        }
      }
      if (inHeader && steps.length > 0) {
        // A chain inside a chord header reports with its last step; a trailing group must be collected.
        const last = steps[steps.length - 1]!;
        if (last.t === "group") steps[steps.length - 1] = { t: "chord", header: last.members, body: collect(jobs, last.members), ...(last.errbacks ? { errbacks: last.errbacks } : {}) };
      }
      return withErr({ t: "chain", steps });
    }
  }
}

function handleFor(jobs: Jobs, n: Node): ResultHandle<unknown> {
  switch (n.t) {
    case "sig":
      return new AsyncResult(String(n.id), n.name, jobs, true);
    case "chain":
      return handleFor(jobs, n.steps[n.steps.length - 1]!);
    case "group":
      return new GroupResult(n.members.map((m) => handleFor(jobs, m)), jobs);
    case "chord":
      return handleFor(jobs, n.body);
  }
}

/** Apply any canvas (or a single signature) and return its result handle. */
export async function applyCanvas<R>(c: Canvas<R>, options: ApplyCanvasOptions = {}): Promise<ResultHandle<R>> {
  const jobs = jobsOf(c);
  const node = toNode(jobs, c);
  if (node.t === "chain" && node.steps.length === 0) throw new InvalidInputError("an empty chain has nothing to run: give it at least one signature");
  const st = statement(jobs.schema, "canvas_apply");
  const headers = jobs.hooks.length > 0 ? enqueueHeaders(jobs.hooks, canvasNames(node), canvasQueues(node), context.get() as Headers) : context.get();
  const values = [JSON.stringify(node), currentTask.getStore()?.id ?? null, JSON.stringify(headers)];
  const rows = options.db
    ? await runOn<{ canvas: Node }>(options.db, st, values)
    : await runPrepared<{ canvas: Node }>(jobs.pool, st, values);
  const applied = rows[0]!.canvas;
  // Every task the canvas will create, including steps not enqueued yet (their ids are assigned).
  const infos = canvasSigs(applied).map((n) => ({ id: String(n.id), name: n.name, queue: n.queue }));
  for (const info of infos) jobs.emit("enqueued", info);
  await jobs.afterEnqueue(infos, options.db !== undefined);
  return handleFor(jobs, applied) as ResultHandle<R>;
}

type SigNode = Extract<Node, { t: "sig" }>;

/** Every signature of a canvas (the tasks it will create), in tree order. */
function canvasSigs(n: Node): SigNode[] {
  switch (n.t) {
    case "sig":
      return [n];
    case "chain":
      return n.steps.flatMap(canvasSigs);
    case "group":
      return n.members.flatMap(canvasSigs);
    case "chord":
      return [...n.header.flatMap(canvasSigs), ...canvasSigs(n.body)];
  }
}

const canvasNames = (n: Node) => [...new Set(canvasSigs(n).map((s) => s.name))];
const canvasQueues = (n: Node) => [...new Set(canvasSigs(n).map((s) => s.queue))];

export { FINAL_STATES };
