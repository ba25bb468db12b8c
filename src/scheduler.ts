import { CronExpressionParser } from "cron-parser";
import { EventEmitter } from "node:events";
import type pg from "pg";
import type { Jobs } from "./client.js";
import { runPrepared } from "./db.js";
import { toMs, type Duration } from "./duration.js";
import { InvalidInputError, PgJobsError } from "./errors.js";
import { validateQueue } from "./identifiers.js";
import { checkJson, type Json } from "./json.js";
import { statement } from "./sql.js";
import type { Signature } from "./task.js";

/**
 * Periodic schedules (Celery beat), fired exactly once per tick however many schedulers run:
 * a scheduler locks the due schedule rows with FOR UPDATE SKIP LOCKED and, in the same
 * transaction, inserts each tick's task and advances next_run_at. No leader, no window in which
 * a leader change double-fires or skips; time comes from the database, so clock skew between
 * hosts cannot double-fire either.
 */

export type MisfirePolicy = "once" | "all" | "skip";

export interface ScheduleSpec {
  /** A cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first). */
  cron?: string;
  /** Or a fixed interval, e.g. "10m". */
  every?: Duration;
  /** IANA timezone the cron expression is read in. Default "UTC". */
  timezone?: string;
  /**
   * Ticks later than `misfireGrace` (missed while no scheduler ran):
   * "once" (default) collapses them into one catch-up run; "all" runs every one of them (at most
   * 1,000); "skip" runs none. Ticks within the grace always run.
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

const MAX_CATCH_UP = 1_000;

export function validateTimezone(tz: string): string {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
  } catch {
    throw new InvalidInputError(`unknown timezone ${JSON.stringify(tz)}: use an IANA name such as "UTC" or "Europe/Berlin"`);
  }
  return tz;
}

export function validateCron(expr: string, tz = "UTC"): string {
  const fields = expr.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    throw new InvalidInputError(`invalid cron expression ${JSON.stringify(expr)}: it has ${fields} fields; use 5 (minute hour day month weekday) or 6 (seconds first)`);
  }
  try {
    CronExpressionParser.parse(expr, { tz, strict: false }).next();
  } catch (err) {
    throw new InvalidInputError(`invalid cron expression ${JSON.stringify(expr)}: ${(err as Error).message}`);
  }
  return expr;
}

export function validateScheduleName(name: unknown): string {
  if (typeof name !== "string" || !/^[A-Za-z0-9_.:-]{1,200}$/.test(name)) {
    throw new InvalidInputError(`invalid schedule name ${JSON.stringify(name)}: use 1 to 200 letters, digits, "_", ".", ":" or "-"`);
  }
  return name;
}

/** The next `count` fire times strictly after `after`. */
export function nextFireTimes(s: { cron: string | null; everyMs: number | null; timezone: string; anchor?: Date | null }, after: Date, count: number): Date[] {
  const out: Date[] = [];
  if (s.cron) {
    const it = CronExpressionParser.parse(s.cron, { currentDate: after, tz: s.timezone });
    while (out.length < count) {
      const d = it.next().toDate();
      if (d.getTime() > after.getTime()) out.push(d);
    }
    return out;
  }
  const every = s.everyMs!;
  // Intervals are anchored at the schedule's previous tick (or `after` for a new one).
  let t = s.anchor ? s.anchor.getTime() : after.getTime();
  if (t <= after.getTime()) t += Math.ceil((after.getTime() - t + 1) / every) * every;
  while (out.length < count) {
    out.push(new Date(t));
    t += every;
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

export function defineSchedule(jobs: Jobs, name: string, spec: ScheduleSpec, sig: Pick<Signature, "task" | "args" | "options">): ScheduleDefinition {
  validateScheduleName(name);
  if ((spec.cron === undefined) === (spec.every === undefined)) {
    throw new InvalidInputError(`schedule ${name}: give exactly one of cron or every`);
  }
  const timezone = validateTimezone(spec.timezone ?? "UTC");
  const cron = spec.cron !== undefined ? validateCron(spec.cron, timezone) : null;
  const everyMs = spec.every !== undefined ? toMs(spec.every, `schedule ${name}: every`) : null;
  if (everyMs !== null && everyMs < 1000) throw new InvalidInputError(`schedule ${name}: every must be at least 1s, got ${everyMs} ms`);
  const misfire = spec.misfire ?? "once";
  if (!["once", "all", "skip"].includes(misfire)) {
    throw new InvalidInputError(`schedule ${name}: misfire must be "once", "all" or "skip", got ${JSON.stringify(misfire)}`);
  }
  const task = jobs.getTask(sig.task);
  if (!task) {
    throw new InvalidInputError(`schedule ${name}: unknown task ${JSON.stringify(sig.task)}: register it with jobs.task() in this process`);
  }
  checkJson(sig.args, sig.task, "args");
  const row = jobs.buildRow(task, sig.args, { ...sig.options, countdown: undefined, eta: undefined, queue: spec.queue ?? sig.options.queue, priority: spec.priority ?? sig.options.priority });
  return {
    name,
    cron,
    everyMs,
    timezone,
    task: sig.task,
    args: sig.args,
    queue: validateQueue(row.queue, sig.task),
    priority: row.priority,
    misfire,
    options: { misfireGraceMs: toMs(spec.misfireGrace ?? 30_000, "misfireGrace"), maxAttempts: row.maxAttempts, timeoutMs: row.timeoutMs },
  };
}

/** Insert (or, with replace, update) a schedule; its first tick is computed from the database's clock. */
export async function saveSchedule(jobs: Jobs, def: ScheduleDefinition, replace: boolean, db: pg.Pool | pg.ClientBase = jobs.pool): Promise<boolean> {
  const [{ now }] = (await db.query<{ now: Date }>("select now() as now")).rows as [{ now: Date }];
  const [next] = nextFireTimes({ cron: def.cron, everyMs: def.everyMs, timezone: def.timezone }, now, 1);
  const rows = await runPrepared<{ inserted: boolean }>(db, statement(jobs.schema, "schedule_upsert"), [
    def.name, def.cron, def.everyMs, def.timezone, def.task, JSON.stringify(def.args), def.queue, def.priority,
    JSON.stringify(def.options), def.misfire, next, replace,
  ]);
  if (!replace && rows.length === 0) {
    throw new InvalidInputError(`a schedule named ${def.name} already exists: remove it first (pgjobs schedule remove ${def.name}) or pick another name`);
  }
  return rows[0]?.inserted ?? false;
}

interface DueRow extends Omit<ScheduleRow, "enabled"> {
  every_ms: number | null;
  db_now: Date;
}

export interface SchedulerOptions {
  /** Longest sleep between checks (a schedule added elsewhere is seen within this). Default 1 s. */
  maxSleep?: Duration;
  /** Test hook: runs while the due rows are locked, before the transaction commits. */
  beforeCommit?: (ticks: Array<{ name: string; fireAt: Date }>) => Promise<void>;
}

export interface SchedulerEvents {
  /** Ticks this scheduler fired (committed). */
  fired: [Array<{ name: string; fireAt: Date; taskId: string }>];
  error: [Error];
}

/** The loop behind `pgjobs beat` and `pgjobs worker --beat`. */
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
        if (row?.in_ms !== null && row?.in_ms !== undefined) sleep = Math.max(0, Math.min(sleep, row.in_ms));
      } catch (err) {
        this.jobs.log.warn({ err: (err as Error).message }, "scheduler check failed; retrying");
        this.emit("error", err as Error);
      }
      if (!this.stopped) this.timer = setTimeout(() => this.loop(), sleep + 2);
    })();
  }

  /** One transaction: lock due schedules, insert their ticks' tasks, advance them. Returns schedules fired. */
  async fireDue(limit = 100): Promise<number> {
    const client = await this.jobs.pool.connect();
    const fired: Array<{ name: string; fireAt: Date; taskId: string }> = [];
    let ok = false;
    try {
      await client.query("begin");
      const due = await runPrepared<DueRow>(client, statement(this.jobs.schema, "schedule_lock_due"), [limit]);
      const ticks: Array<{ name: string; fireAt: Date; def: DueRow }> = [];
      for (const s of due) {
        const { fire, next, last } = this.plan(s);
        for (const at of fire) ticks.push({ name: s.name, fireAt: at, def: s });
        await runPrepared(client, statement(this.jobs.schema, "schedule_advance"), [s.name, next, last]);
      }
      if (ticks.length > 0) {
        const ids = await this.insertTicks(client, ticks);
        ticks.forEach((t, i) => fired.push({ name: t.name, fireAt: t.fireAt, taskId: ids[i]! }));
      }
      if (this.opts.beforeCommit && due.length > 0) await this.opts.beforeCommit(fired);
      await client.query("commit");
      ok = true;
      if (fired.length > 0) this.emit("fired", fired);
      return due.length;
    } finally {
      if (!ok) await client.query("rollback").catch(() => {});
      client.release(!ok);
    }
  }

  /** Which ticks of a due schedule fire now, per its misfire policy, and when it is next due. */
  private plan(s: DueRow): { fire: Date[]; next: Date; last: Date | null } {
    const now = s.db_now;
    const graceMs = s.options?.misfireGraceMs ?? 30_000;
    const spec = { cron: s.cron, everyMs: s.every_ms === null ? null : Number(s.every_ms), timezone: s.timezone };
    // Every tick from next_run_at up to now.
    const due: Date[] = [s.next_run_at!];
    let cursor = s.next_run_at!;
    for (;;) {
      const [n] = nextFireTimes({ ...spec, anchor: cursor }, cursor, 1);
      if (!n || n.getTime() > now.getTime()) break;
      due.push(n);
      cursor = n;
      if (due.length > MAX_CATCH_UP * 10) break;
    }
    const [next] = nextFireTimes({ ...spec, anchor: cursor }, cursor.getTime() > now.getTime() ? cursor : now, 1);
    const onTime = due.filter((d) => now.getTime() - d.getTime() <= graceMs);
    const missed = due.filter((d) => now.getTime() - d.getTime() > graceMs);
    let fire: Date[];
    switch (s.misfire) {
      case "all":
        fire = [...missed.slice(-MAX_CATCH_UP), ...onTime];
        break;
      case "skip":
        fire = onTime;
        break;
      default:
        // Missed ticks collapse into one catch-up run (the latest of them).
        fire = missed.length > 0 ? [missed[missed.length - 1]!, ...onTime] : onTime;
    }
    return { fire, next: next!, last: due[due.length - 1]! };
  }

  private async insertTicks(client: pg.PoolClient, ticks: Array<{ name: string; fireAt: Date; def: DueRow }>): Promise<string[]> {
    const rows = ticks.map(({ name, fireAt, def }) => ({
      name: def.task,
      args: JSON.stringify(def.args),
      queue: def.queue,
      priority: def.priority,
      runAt: null,
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

  /** Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => {});
  }
}

export { PgJobsError };
