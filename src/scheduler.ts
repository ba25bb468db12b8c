import { CronExpressionParser } from "cron-parser";
import { EventEmitter } from "node:events";
import type pg from "pg";
import type { Jobs } from "./client.js";
import { runPrepared } from "./db.js";
import { toMs, type Duration } from "./duration.js";
import { InvalidInputError, PgJobsError } from "./errors.js";
import { validateQueue, validateSchema, validateTaskName } from "./identifiers.js";
import { checkJson, toJsonText, type Json } from "./json.js";
import { statement } from "./sql.js";
import type { Signature } from "./task.js";

/**
 * Periodic schedules (Celery beat), fired exactly once per tick however many schedulers run:
 * a scheduler locks the due schedule rows with FOR UPDATE SKIP LOCKED and, in the same
 * transaction, inserts each tick's task and advances next_run_at. No leader, no window in which
 * a leader change double-fires or skips; time comes from the database, so clock skew between
 * hosts cannot double-fire either. docs/schedules.md tells the whole story.
 */

export type MisfirePolicy = "once" | "all" | "skip";

export interface ScheduleSpec {
  /** A cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first). */
  cron?: string;
  /** Or a fixed interval, e.g. "10m" (at least 1 s). Intervals are absolute time: DST does not move them. */
  every?: Duration;
  /** IANA timezone the cron expression is read in. Default "UTC". */
  timezone?: string;
  /**
   * What to do with ticks later than `misfireGrace` (missed while no scheduler ran):
   * "once" (default) collapses them into one catch-up run, carrying the latest missed fire time;
   * "all" runs every one of them (the latest 1,000 at most); "skip" runs none. Ticks within the
   * grace are on time and always run, whatever the policy.
   */
  misfire?: MisfirePolicy;
  /** How late a tick may fire and still count as on time. Default 30 s. */
  misfireGrace?: Duration;
  queue?: string;
  priority?: number;
}

export interface ScheduleRow {
  name: string;
  cron: string | null;
  every: string | null;
  timezone: string;
  task: string;
  args: Json[];
  queue: string;
  priority: number;
  options: { misfireGraceMs?: number; maxAttempts?: number; timeoutMs?: number | null };
  misfire: MisfirePolicy;
  enabled: boolean;
  next_run_at: Date | null;
  last_run_at: Date | null;
}

/** Most missed ticks that misfire "all" fires after an outage (and most on-time ticks per check). */
export const MAX_CATCH_UP = 1_000;
const DEFAULT_GRACE_MS = 30_000;
const MISFIRE_POLICIES: readonly MisfirePolicy[] = ["once", "all", "skip"];

export function validateTimezone(tz: string): string {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
  } catch {
    throw new InvalidInputError(`unknown timezone ${JSON.stringify(tz)}: use an IANA name such as "UTC" or "Europe/Berlin"`);
  }
  return tz;
}

export function validateCron(expr: string, tz = "UTC"): string {
  if (typeof expr !== "string") throw new InvalidInputError(`invalid cron expression ${JSON.stringify(expr)}: give it as a string, e.g. "0 2 * * *"`);
  const fields = expr.trim().split(/\s+/).filter(Boolean).length;
  if (fields !== 5 && fields !== 6) {
    throw new InvalidInputError(`invalid cron expression ${JSON.stringify(expr)}: it has ${fields} field${fields === 1 ? "" : "s"}; use 5 (minute hour day month weekday) or 6 (seconds first)`);
  }
  // cron-parser reads H as a random value chosen at each parse: every scheduler (and every
  // check) would compute different ticks, which breaks exactly-once.
  if (/h/i.test(expr.replace(/\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat)\b/gi, ""))) {
    throw new InvalidInputError(`invalid cron expression ${JSON.stringify(expr)}: hashed fields (H) are not supported: write the minute or hour out`);
  }
  try {
    CronExpressionParser.parse(expr, { tz, strict: false }).next();
  } catch (err) {
    throw new InvalidInputError(`invalid cron expression ${JSON.stringify(expr)}: ${firstLine((err as Error).message)}`);
  }
  return expr;
}

export function validateScheduleName(name: unknown): string {
  if (typeof name !== "string" || !/^[A-Za-z0-9_.:-]{1,200}$/.test(name)) {
    throw new InvalidInputError(`invalid schedule name ${JSON.stringify(name)}: use 1 to 200 letters, digits, "_", ".", ":" or "-"`);
  }
  return name;
}

// ---------------------------------------------------------------------------------------------
// Fire times.
//
// One rule decides which instants are ticks, wherever a computation starts: a schedule created
// now, a scheduler catching up after an outage and `pgjobs schedule show` must all agree, or a
// tick could fire twice or not at all. For cron expressions the rule is cron-parser's forward
// iteration from well before (see docs/schedules.md for what it does across DST changes):
//   - a wall time the spring-forward skips fires once, shifted forward by the gap
//     (02:30 Europe/Berlin on the last Sunday of March fires at 03:30 CEST); if the shifted
//     instant is a tick anyway (an hourly "30 * * * *"), it fires once;
//   - a wall time the fall-back repeats fires once, at its first occurrence, when the expression
//     names the hour ("30 2 * * *"); expressions that run every hour or more often keep running
//     by elapsed time, so "0 * * * *" fires 25 times that day and 23 on the spring-forward day.
// cron-parser's next() from a starting point INSIDE the hour after a change disagrees with that
// iteration (it skips the shifted 03:30, or fires the repeated 02:30 a second time), so a search
// that would start within 3 hours after an offset change starts 3 hours earlier instead.
// ---------------------------------------------------------------------------------------------

const DST_BACKOFF_MS = 3 * 3_600_000;
const offsetFormats = new Map<string, Intl.DateTimeFormat>();

function utcOffset(tz: string, at: number): string {
  let f = offsetFormats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "longOffset" });
    offsetFormats.set(tz, f);
  }
  return f.formatToParts(at).find((p) => p.type === "timeZoneName")?.value ?? "";
}

/** Where a forward search for ticks >= `start` may safely begin (see above). */
function safeStart(tz: string, start: number): number {
  return utcOffset(tz, start) === utcOffset(tz, start - DST_BACKOFF_MS) ? start : start - DST_BACKOFF_MS;
}

/** Cron ticks in [from, to], ascending, found by one forward iteration; the latest `limit` of them. */
function cronForward(cron: string, tz: string, from: number, to: number, limit: number): number[] {
  const it = CronExpressionParser.parse(cron, { currentDate: new Date(safeStart(tz, from) - 1), tz });
  const out: number[] = [];
  for (;;) {
    const t = it.next().getTime();
    if (t > to) return out;
    if (t < from) continue;
    out.push(t);
    if (out.length > limit) out.shift();
  }
}

/**
 * Cron ticks in [from, to], ascending; the latest `limit` of them when there are more. Searches
 * backwards from `to` in growing windows, so a catch-up after a month's outage of a
 * every-second expression costs about `limit` iterations, not millions.
 */
function cronTicks(cron: string, tz: string, from: number, to: number, limit: number): number[] {
  if (to < from || limit <= 0) return [];
  for (let width = 60_000; ; width *= 8) {
    const start = Math.max(from, to - width);
    const ticks = cronForward(cron, tz, start, to, limit);
    if (ticks.length >= limit || start === from) return ticks;
  }
}

/** The first cron tick strictly after `after`. */
function cronNext(cron: string, tz: string, after: number): number {
  const it = CronExpressionParser.parse(cron, { currentDate: new Date(safeStart(tz, after + 1) - 1), tz });
  for (;;) {
    const t = it.next().getTime();
    if (t > after) return t;
  }
}

interface TickSpec {
  cron: string | null;
  everyMs: number | null;
  timezone: string;
}

/** Ticks in [from, to], ascending, the latest `limit`. An interval's ticks are anchor + k * every, k >= 0. */
function ticksIn(s: TickSpec, anchor: number, from: number, to: number, limit: number): number[] {
  if (s.cron) return cronTicks(s.cron, s.timezone, from, to, limit);
  const every = s.everyMs!;
  const kMin = Math.max(0, Math.ceil((from - anchor) / every));
  const kMax = Math.floor((to - anchor) / every);
  const out: number[] = [];
  for (let k = Math.max(kMin, kMax - limit + 1); k <= kMax; k++) out.push(anchor + k * every);
  return out;
}

/** The first tick strictly after `after`. */
function tickAfter(s: TickSpec, anchor: number, after: number): number {
  if (s.cron) return cronNext(s.cron, s.timezone, after);
  const every = s.everyMs!;
  if (anchor > after) return anchor;
  return anchor + (Math.floor((after - anchor) / every) + 1) * every;
}

/**
 * The next `count` fire times strictly after `after`. An interval schedule's ticks are
 * `anchor + k * every` (its previous tick, or `after` itself for a new schedule); a cron
 * schedule's are its expression read in `timezone`, by the DST rule in docs/schedules.md.
 *
 * ```ts
 * nextFireTimes({ cron: "30 2 * * *", everyMs: null, timezone: "Europe/Berlin" }, new Date("2026-03-28T12:00:00Z"), 2);
 * // [2026-03-29T01:30:00Z (03:30 CEST: 02:30 does not exist that day), 2026-03-30T00:30:00Z]
 * ```
 */
export function nextFireTimes(s: { cron: string | null; everyMs: number | null; timezone: string; anchor?: Date | null }, after: Date, count: number): Date[] {
  const out: Date[] = [];
  const anchor = s.anchor ? s.anchor.getTime() : after.getTime();
  let t = after.getTime();
  while (out.length < count) {
    t = tickAfter(s, anchor, t);
    out.push(new Date(t));
  }
  return out;
}

/** A schedule's definition, validated, ready for schedule_upsert. */
export interface ScheduleDefinition {
  name: string;
  cron: string | null;
  everyMs: number | null;
  timezone: string;
  task: string;
  args: Json[];
  queue: string;
  priority: number;
  misfire: MisfirePolicy;
  options: ScheduleRow["options"];
}

/** The timing half of a schedule, validated (shared by code-defined and CLI-defined schedules). */
function validateTiming(name: string, spec: ScheduleSpec): Pick<ScheduleDefinition, "cron" | "everyMs" | "timezone" | "misfire"> & { misfireGraceMs: number } {
  validateScheduleName(name);
  if ((spec.cron === undefined) === (spec.every === undefined)) {
    throw new InvalidInputError(`schedule ${name}: give exactly one of cron (a cron expression, --cron) or every (an interval, --every)`);
  }
  const timezone = validateTimezone(spec.timezone ?? "UTC");
  const cron = spec.cron !== undefined ? validateCron(spec.cron, timezone) : null;
  const everyMs = spec.every !== undefined ? toMs(spec.every, `schedule ${name}: every`) : null;
  if (everyMs !== null && everyMs < 1000) throw new InvalidInputError(`schedule ${name}: every must be at least 1s, got ${everyMs} ms`);
  const misfire = spec.misfire ?? "once";
  if (!MISFIRE_POLICIES.includes(misfire)) {
    throw new InvalidInputError(`schedule ${name}: misfire must be "once", "all" or "skip", got ${JSON.stringify(misfire)}`);
  }
  const misfireGraceMs = toMs(spec.misfireGrace ?? DEFAULT_GRACE_MS, `schedule ${name}: misfireGrace`);
  return { cron, everyMs, timezone, misfire, misfireGraceMs };
}

export function defineSchedule(jobs: Jobs, name: string, spec: ScheduleSpec, sig: Pick<Signature, "task" | "args" | "options">): ScheduleDefinition {
  const { misfireGraceMs, ...timing } = validateTiming(name, spec);
  const task = jobs.getTask(sig.task);
  if (!task) {
    throw new InvalidInputError(`schedule ${name}: unknown task ${JSON.stringify(sig.task)}: register it with jobs.task() in this process`);
  }
  checkJson(sig.args, sig.task, "args");
  const row = jobs.buildRow(task, sig.args, { ...sig.options, countdown: undefined, eta: undefined, queue: spec.queue ?? sig.options.queue, priority: spec.priority ?? sig.options.priority }, { runHooks: false });
  return {
    name,
    ...timing,
    task: sig.task,
    args: sig.args,
    queue: validateQueue(row.queue, sig.task),
    priority: row.priority,
    options: { misfireGraceMs, maxAttempts: row.maxAttempts, timeoutMs: row.timeoutMs },
  };
}

/** Insert (or, with replace, update) a schedule; its first tick is computed from the database's clock. */
export async function saveSchedule(jobs: Jobs, def: ScheduleDefinition, replace: boolean, db: pg.Pool | pg.ClientBase = jobs.pool): Promise<boolean> {
  return upsertSchedule(db, jobs.schema, def, replace);
}

async function upsertSchedule(db: pg.Pool | pg.ClientBase, schema: string, def: ScheduleDefinition, replace: boolean): Promise<boolean> {
  if (replace) {
    // Every worker start syncs the code's schedules: leave an unchanged row alone, so a start
    // writes nothing and never waits on a scheduler that holds the row mid-tick.
    const [cur] = await readSchedules(db, schema, def.name);
    if (cur && sameDefinition(cur, def)) return false;
  }
  const [{ now }] = (await db.query<{ now: Date }>("select now() as now")).rows as [{ now: Date }];
  const [next] = nextFireTimes({ cron: def.cron, everyMs: def.everyMs, timezone: def.timezone }, now, 1);
  const rows = await runPrepared<{ inserted: boolean }>(db, statement(schema, "schedule_upsert"), [
    def.name, def.cron, def.everyMs, def.timezone, def.task, JSON.stringify(def.args), def.queue, def.priority,
    JSON.stringify(def.options), def.misfire, next, replace,
  ]);
  if (!replace && rows.length === 0) {
    throw new InvalidInputError(`a schedule named ${def.name} already exists: remove it first (pgjobs schedule remove ${def.name}) or pick another name`);
  }
  return rows[0]?.inserted ?? false;
}

function sameDefinition(cur: ScheduleInfo, def: ScheduleDefinition): boolean {
  const opts = { misfireGraceMs: cur.misfire_grace_ms, maxAttempts: cur.max_attempts ?? undefined, timeoutMs: cur.timeout_ms };
  return (
    cur.cron === def.cron && cur.every_ms === def.everyMs && cur.timezone === def.timezone && cur.task === def.task &&
    JSON.stringify(cur.args) === JSON.stringify(def.args) && cur.queue === def.queue && cur.priority === def.priority &&
    cur.misfire === def.misfire && opts.misfireGraceMs === def.options.misfireGraceMs &&
    opts.maxAttempts === def.options.maxAttempts && (opts.timeoutMs ?? null) === (def.options.timeoutMs ?? null)
  );
}

// ---------------------------------------------------------------------------------------------
// Operator functions behind `pgjobs schedule ...`: no app loaded, only the database.
// ---------------------------------------------------------------------------------------------

/** A schedule as `pgjobs schedule list/show --json` prints it. */
export interface ScheduleInfo {
  name: string;
  cron: string | null;
  /** The interval as a duration ("10m"), or null for a cron schedule. */
  every: string | null;
  every_ms: number | null;
  timezone: string;
  task: string;
  args: Json[];
  queue: string;
  priority: number;
  misfire: MisfirePolicy;
  misfire_grace_ms: number;
  max_attempts: number | null;
  /** Each task's timeout, from the task's options in code (null: none). */
  timeout_ms: number | null;
  enabled: boolean;
  next_run_at: Date | null;
  last_run_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface ScheduleDetails extends ScheduleInfo {
  /** The next five ticks the schedulers will fire (empty while the schedule is disabled). */
  next_fire_times: Date[];
}

/** What `pgjobs schedule add` takes. */
export interface ScheduleInput {
  name: string;
  task: string;
  cron?: string;
  every?: Duration;
  timezone?: string;
  /** The task's arguments: an array, or its JSON text. Default []. */
  args?: unknown;
  queue?: string;
  priority?: number;
  retries?: number;
  misfire?: MisfirePolicy;
  misfireGrace?: Duration;
  /** Add it even if no live worker registers the task (or serves the queue). */
  force?: boolean;
}

/** A worker counts as live for `schedule add` if it sent a heartbeat within this (default heartbeat: 5 s). */
export const LIVE_WORKER_S = 120;

type Db = pg.Pool | pg.ClientBase;

interface ListRow {
  name: string;
  cron: string | null;
  every_ms: number | null;
  timezone: string;
  task: string;
  args: Json[];
  queue: string;
  priority: number;
  options: ScheduleRow["options"] | null;
  misfire: MisfirePolicy;
  enabled: boolean;
  next_run_at: Date | null;
  last_run_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

function toInfo(r: ListRow): ScheduleInfo {
  const everyMs = r.every_ms === null ? null : Number(r.every_ms);
  return {
    name: r.name,
    cron: r.cron,
    every: everyMs === null ? null : formatDuration(everyMs),
    every_ms: everyMs,
    timezone: r.timezone,
    task: r.task,
    args: r.args,
    queue: r.queue,
    priority: r.priority,
    misfire: r.misfire,
    misfire_grace_ms: r.options?.misfireGraceMs ?? DEFAULT_GRACE_MS,
    max_attempts: r.options?.maxAttempts ?? null,
    timeout_ms: r.options?.timeoutMs ?? null,
    enabled: r.enabled,
    next_run_at: r.next_run_at,
    last_run_at: r.last_run_at,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

/** 600000 -> "10m", 5400000 -> "1h30m", 1500 -> "1500ms". */
export function formatDuration(ms: number): string {
  if (ms % 1000 !== 0) return `${ms}ms`;
  let s = ms / 1000;
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.join("") || "0s";
}

/** Turn "relation jobs.schedules does not exist" into what to do about it. */
async function onSchema<T>(schema: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((err as { code?: string }).code === "42P01") {
      throw new PgJobsError(`schema ${schema} has no pgjobs tables in this database: run pgjobs migrate${schema === "jobs" ? "" : ` --schema ${schema}`} first, or pass the right --schema`);
    }
    throw err;
  }
}

function noSuchSchedule(schema: string, name: string): InvalidInputError {
  return new InvalidInputError(`no schedule named ${name} in schema ${schema}: pgjobs schedule list shows the schedules there`);
}

async function readSchedules(db: Db, schema: string, name: string | null): Promise<ScheduleInfo[]> {
  const rows = await runPrepared<ListRow>(db, statement(schema, "schedule_list"), [name]);
  return rows.map(toInfo);
}

/** Every schedule, by name. */
export function listSchedules(db: Db, schema: string): Promise<ScheduleInfo[]> {
  validateSchema(schema);
  return onSchema(schema, () => readSchedules(db, schema, null));
}

/** One schedule and the next `count` ticks the schedulers will fire (from next_run_at on). */
export function showSchedule(db: Db, schema: string, name: string, count = 5): Promise<ScheduleDetails> {
  validateSchema(schema);
  validateScheduleName(name);
  return onSchema(schema, async () => {
    const [info] = await readSchedules(db, schema, name);
    if (!info) throw noSuchSchedule(schema, name);
    let next_fire_times: Date[] = [];
    const spec = { cron: info.cron, everyMs: info.every_ms, timezone: info.timezone, anchor: info.next_run_at };
    if (info.enabled && info.next_run_at) {
      next_fire_times = [info.next_run_at, ...nextFireTimes(spec, info.next_run_at, count - 1)].slice(0, count);
    } else if (info.enabled) {
      // Inserted with SQL and not yet seen by a scheduler: it starts from the first tick after now.
      const [{ now }] = (await db.query<{ now: Date }>("select now() as now")).rows as [{ now: Date }];
      next_fire_times = nextFireTimes({ ...spec, anchor: null }, now, count);
    }
    return { ...info, next_fire_times };
  });
}

/**
 * A schedule defined without the app loaded (`pgjobs schedule add`), validated: throws
 * InvalidInputError for bad input. Sends nothing anywhere.
 */
export function scheduleFromInput(input: ScheduleInput): ScheduleDefinition {
  const name = validateScheduleName(input.name);
  const spec: ScheduleSpec = {};
  if (input.cron !== undefined) spec.cron = input.cron;
  if (input.every !== undefined) spec.every = input.every;
  if (input.timezone !== undefined) spec.timezone = input.timezone;
  if (input.misfire !== undefined) spec.misfire = input.misfire;
  if (input.misfireGrace !== undefined) spec.misfireGrace = input.misfireGrace;
  const { misfireGraceMs, ...timing } = validateTiming(name, spec);
  const task = validateTaskName(input.task);
  let args: unknown = input.args ?? [];
  if (typeof args === "string") {
    try {
      args = JSON.parse(args);
    } catch (err) {
      throw new InvalidInputError(`schedule ${name}: --args is not JSON (${firstLine((err as Error).message)}): give a JSON array, e.g. '["today", 3]'`);
    }
  }
  if (!Array.isArray(args)) throw new InvalidInputError(`schedule ${name}: args must be a JSON array of the task's arguments, e.g. '["today"]', got ${JSON.stringify(args)}`);
  toJsonText(args, task, "args");
  const queue = validateQueue(input.queue ?? "default", task);
  const priority = input.priority ?? 0;
  if (!Number.isInteger(priority) || priority < -100 || priority > 100) {
    throw new InvalidInputError(`schedule ${name}: priority ${priority} is out of range: use a whole number from -100 to 100 (higher runs first)`);
  }
  const retries = input.retries ?? 3;
  if (!Number.isInteger(retries) || retries < 0 || retries > 999) {
    throw new InvalidInputError(`schedule ${name}: retries must be a whole number from 0 to 999, got ${retries}`);
  }
  return {
    name, ...timing, task, args: args as Json[], queue, priority,
    options: { misfireGraceMs, maxAttempts: retries + 1, timeoutMs: null },
  };
}

/**
 * Add a schedule without the app loaded (`pgjobs schedule add`). The task must be registered by
 * a live worker (jobs.workers.meta->'tasks', heartbeat within LIVE_WORKER_S) that serves the
 * schedule's queue, unless `force` (for adding schedules before the first deploy of their
 * workers). Bad input, and a name already taken, throw and write nothing.
 *
 * ```ts
 * await addSchedule(pool, "jobs", { name: "nightly", cron: "0 0 * * *", task: "produce_report", args: ["today"] });
 * ```
 */
export async function addSchedule(db: Db, schema: string, input: ScheduleInput | ScheduleDefinition, options: { force?: boolean } = {}): Promise<ScheduleInfo> {
  validateSchema(schema);
  const def = "everyMs" in input ? input : scheduleFromInput(input);
  const force = options.force ?? ("force" in input && input.force === true);
  // One transaction: the first tick is computed from the same now() the row is stamped with.
  const client = "totalCount" in db ? await db.connect() : db;
  let done = false;
  try {
    await client.query("begin");
    const info = await onSchema(schema, async () => {
      if (!force) await checkTaskServed(client, schema, def.name, def.task, def.queue);
      await upsertSchedule(client, schema, def, false);
      const [row] = await readSchedules(client, schema, def.name);
      return row!;
    });
    await client.query("commit");
    done = true;
    return info;
  } finally {
    if (!done) await client.query("rollback").catch(() => {});
    if (client !== db) (client as pg.PoolClient).release(!done);
  }
}

async function checkTaskServed(db: Db, schema: string, name: string, task: string, queue: string): Promise<void> {
  const workers = await runPrepared<{ queues: string[]; registers: boolean }>(db, statement(schema, "schedule_task_workers"), [task, LIVE_WORKER_S]);
  const registering = workers.filter((w) => w.registers);
  if (registering.length === 0) {
    const seen = workers.length === 0 ? "no worker is running" : `none of the ${workers.length} live worker${workers.length === 1 ? "" : "s"} registers it`;
    throw new InvalidInputError(`schedule ${name}: no live worker registers task ${JSON.stringify(task)} (${seen}): check the task name, start a worker whose app registers it, or pass --force to add the schedule anyway`);
  }
  if (!registering.some((w) => w.queues.includes(queue))) {
    const queues = [...new Set(registering.flatMap((w) => w.queues))].sort().join(", ");
    throw new InvalidInputError(`schedule ${name}: the workers that register task ${task} serve queues ${queues}, not ${queue}: pass --queue with one of them, or --force to add the schedule anyway`);
  }
}

/** Delete a schedule. A schedule defined in code comes back when a worker with beat starts. */
export function removeSchedule(db: Db, schema: string, name: string): Promise<{ name: string; removed: true }> {
  validateSchema(schema);
  validateScheduleName(name);
  return onSchema(schema, async () => {
    const rows = await runPrepared<{ name: string }>(db, statement(schema, "schedule_remove"), [name]);
    if (rows.length === 0) throw noSuchSchedule(schema, name);
    return { name, removed: true as const };
  });
}

/**
 * Pause or resume a schedule. Resuming starts from the next tick after now: ticks missed while
 * paused are not caught up. Pausing or resuming twice changes nothing the second time.
 */
export function setScheduleEnabled(db: Db, schema: string, name: string, enabled: boolean): Promise<ScheduleInfo & { changed: boolean }> {
  validateSchema(schema);
  validateScheduleName(name);
  return onSchema(schema, async () => {
    const [current] = await readSchedules(db, schema, name);
    if (!current) throw noSuchSchedule(schema, name);
    let next: Date | null = null;
    if (enabled) {
      const [{ now }] = (await db.query<{ now: Date }>("select now() as now")).rows as [{ now: Date }];
      [next] = nextFireTimes({ cron: current.cron, everyMs: current.every_ms, timezone: current.timezone }, now, 1) as [Date];
    }
    // The statement resets next_run_at only if the row is still disabled when it runs.
    const rows = await runPrepared<{ was_enabled: boolean }>(db, statement(schema, "schedule_set_enabled"), [name, enabled, next]);
    if (rows.length === 0) throw noSuchSchedule(schema, name);
    const [info] = await readSchedules(db, schema, name);
    return { ...info!, changed: rows[0]!.was_enabled !== enabled };
  });
}

// ---------------------------------------------------------------------------------------------
// The scheduler.
// ---------------------------------------------------------------------------------------------

interface DueRow extends Omit<ScheduleRow, "enabled"> {
  every_ms: number | string | null;
  db_now: Date;
}

export interface FiredTick {
  name: string;
  fireAt: Date;
  taskId: string;
}

export interface SchedulerOptions {
  /** Longest sleep between checks (a schedule added elsewhere is seen within this). Default 1 s. */
  maxSleep?: Duration;
  /**
   * Test hook: runs while the due rows are locked, after the ticks' tasks were inserted and before
   * the transaction commits (so a test can kill the process mid-tick).
   */
  beforeCommit?: (ticks: FiredTick[]) => Promise<void>;
}

export interface SchedulerEvents {
  /** Ticks this scheduler fired (committed). */
  fired: [FiredTick[]];
  error: [Error];
}

/** After a check found due rows that another scheduler holds: look again this soon. */
const BUSY_RETRY_MS = 100;

/**
 * The loop behind `pgjobs beat` and `pgjobs worker --beat`. Any number may run against one
 * database: each tick fires once.
 *
 * ```ts
 * const scheduler = await jobs.scheduler().start();
 * scheduler.on("fired", (ticks) => console.log(ticks));
 * await scheduler.stop();
 * ```
 */
export class Scheduler extends EventEmitter<SchedulerEvents> {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private readonly maxSleepMs: number;

  constructor(
    private readonly jobs: Jobs,
    private readonly opts: SchedulerOptions = {},
  ) {
    super();
    this.maxSleepMs = toMs(opts.maxSleep ?? 1_000, "maxSleep");
    this.on("error", () => {});
  }

  /** Write the schedules defined in code, then fire due ticks until stop(). */
  async start(): Promise<this> {
    await this.jobs.syncSchedules();
    this.loop();
    return this;
  }

  private loop(): void {
    if (this.stopped) return;
    this.running = (async () => {
      let sleep = this.maxSleepMs;
      try {
        while (!this.stopped && (await this.fireDue()) > 0) {
          /* fire until nothing is due */
        }
        const [row] = await runPrepared<{ in_ms: number | null }>(this.jobs.pool, statement(this.jobs.schema, "schedule_next_due"), []);
        if (row?.in_ms !== null && row?.in_ms !== undefined) {
          // A due row that this check did not get is being fired by another scheduler (or is
          // held by one that died: its lock goes when its connection does). Look again soon
          // rather than spin on it.
          sleep = Math.min(sleep, row.in_ms > 0 ? row.in_ms : BUSY_RETRY_MS);
        }
      } catch (err) {
        this.jobs.log.warn({ err: (err as Error).message }, "scheduler check failed; retrying");
        this.emit("error", err as Error);
      }
      if (!this.stopped) this.timer = setTimeout(() => this.loop(), sleep + 2);
    })();
  }

  /**
   * One transaction: lock due schedules, insert their ticks' tasks, advance them. Returns how
   * many schedules were due. `now` replaces the database's clock (tests only).
   */
  async fireDue(limit = 100, now?: Date): Promise<number> {
    const client = await this.jobs.pool.connect();
    const fired: FiredTick[] = [];
    let ok = false;
    try {
      await client.query("begin");
      const due = await runPrepared<DueRow>(client, statement(this.jobs.schema, "schedule_lock_due"), [limit, now ?? null]);
      const ticks: Array<{ name: string; fireAt: Date; def: DueRow }> = [];
      for (const s of due) {
        let plan: Plan;
        try {
          plan = this.plan(s);
        } catch (err) {
          // A row written by hand with a definition we cannot read must not stop every other
          // schedule (nor spin this loop): pause it, loudly.
          this.jobs.log.error({ schedule: s.name, err: (err as Error).message }, "schedule has an invalid definition; disabled it: fix it and run pgjobs schedule enable");
          await runPrepared(client, statement(this.jobs.schema, "schedule_set_enabled"), [s.name, false, null]);
          continue;
        }
        for (const at of plan.fire) ticks.push({ name: s.name, fireAt: at, def: s });
        if (plan.dropped) {
          this.jobs.log.warn({ schedule: s.name, misfire: s.misfire, missedFrom: s.next_run_at, fired: plan.fire.length }, "ticks missed while no scheduler ran were not all run (misfire policy)");
        }
        await runPrepared(client, statement(this.jobs.schema, "schedule_advance"), [s.name, plan.next, plan.last]);
      }
      if (ticks.length > 0) {
        const ids = await this.insertTicks(client, ticks);
        ticks.forEach((t, i) => fired.push({ name: t.name, fireAt: t.fireAt, taskId: ids[i]! }));
      }
      if (this.opts.beforeCommit && due.length > 0) await this.opts.beforeCommit(fired);
      await client.query("commit");
      ok = true;
      if (fired.length > 0) {
        // Committed: the ticks' tasks exist. Tell the app's listeners and hooks, as an enqueue does.
        const infos = fired.map((f, i) => ({ id: f.taskId, name: ticks[i]!.def.task, queue: ticks[i]!.def.queue }));
        for (const info of infos) this.jobs.emit("enqueued", info);
        await this.jobs.afterEnqueue(infos, false).catch((err: Error) => this.jobs.log.warn({ err: err.message }, "an afterEnqueue hook failed for scheduled tasks"));
        this.emit("fired", fired);
      }
      return due.length;
    } finally {
      if (!ok) await client.query("rollback").catch(() => {});
      client.release(!ok);
    }
  }

  /**
   * Which ticks of a due schedule fire now, per its misfire policy, and when it is next due.
   * Ticks run from next_run_at up to now. Those at most misfireGrace late are on time and always
   * fire; the later ones ("missed") fire per the policy: "all" fires them (the latest
   * MAX_CATCH_UP), "once" fires the latest of them, "skip" none.
   */
  private plan(s: DueRow): Plan {
    const now = s.db_now.getTime();
    const graceMs = s.options?.misfireGraceMs ?? DEFAULT_GRACE_MS;
    const spec: TickSpec = { cron: s.cron, everyMs: s.every_ms === null ? null : Number(s.every_ms), timezone: s.timezone };
    validateTimezone(spec.timezone);
    if (spec.cron) validateCron(spec.cron, spec.timezone);
    else if (!(spec.everyMs! >= 1000)) throw new InvalidInputError(`every is ${String(s.every)}: it must be at least 1s`);
    // A row inserted with SQL and no next_run_at: its first tick is the first after now.
    if (s.next_run_at === null) return { fire: [], next: new Date(tickAfter(spec, now, now)), last: null, dropped: false };
    const first = s.next_run_at.getTime();
    // A tick t is on time if now - t <= grace, i.e. t >= now - grace.
    const lateEdge = now - graceMs;
    const onTime = ticksIn(spec, first, Math.max(first, lateEdge), now, MAX_CATCH_UP);
    const missedLimit = s.misfire === "all" ? MAX_CATCH_UP : s.misfire === "skip" ? 0 : 1;
    // One more than the policy fires, to know whether any went unrun.
    const missed = ticksIn(spec, first, first, lateEdge - 1, missedLimit + 1);
    const fire = [...missed.slice(Math.max(0, missed.length - missedLimit)), ...onTime];
    return {
      fire: fire.map((t) => new Date(t)),
      next: new Date(tickAfter(spec, first, now)),
      last: fire.length > 0 ? new Date(fire[fire.length - 1]!) : null,
      dropped: missed.length > missedLimit,
    };
  }

  private async insertTicks(client: pg.PoolClient, ticks: Array<{ name: string; fireAt: Date; def: DueRow }>): Promise<string[]> {
    const rows = ticks.map(({ name, fireAt, def }) => ({
      name: def.task,
      args: JSON.stringify(def.args),
      queue: def.queue,
      priority: def.priority,
      runAt: null,
      delayMs: null,
      maxAttempts: def.options?.maxAttempts ?? 4,
      key: null,
      headers: JSON.stringify({ schedule: name, fire_at: fireAt.toISOString() }),
      parentId: null,
      groupId: null,
      chordId: null,
      timeoutMs: def.options?.timeoutMs ?? null,
      workflow: null,
    }));
    return this.jobs.insertRows(rows, client);
  }

  /** Idempotent. Waits for a check in progress (its transaction commits or rolls back). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => {});
  }
}

interface Plan {
  fire: Date[];
  next: Date;
  last: Date | null;
  /** Whether some missed ticks went unrun (for the log). */
  dropped: boolean;
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.trim();
}

export { PgJobsError };

/** "2026-03-29 03:30:00 CEST": an instant as a wall time in `tz`, for people. */
export function wallTime(at: Date, tz: string): string {
  return new Intl.DateTimeFormat("sv-SE", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  }).format(at);
}

/** "cron 0 2 * * * (Europe/Berlin)" or "every 10m". */
export function describeTiming(s: { cron: string | null; every: string | null; timezone: string }): string {
  return s.cron !== null ? `cron ${s.cron} (${s.timezone})` : `every ${s.every}`;
}
