/**
 * What the dashboard reads: every query is a named statement in sql/dashboard_*.sql (or one the
 * CLI uses too: task_show, worker_list, schedule_list), over the tables a user can query.
 */
import type { Status } from "../admin.js";
import type pg from "pg";
import { showTask, type TaskDetails } from "../admin.js";
import { runPrepared } from "../db.js";
import type { Json } from "../json.js";
import { listSchedules, type ScheduleInfo } from "../scheduler.js";
import { statement } from "../sql.js";

export interface QueueRow {
  queue: string;
  ready: number;
  scheduled: number;
  running: number;
  failed: number;
  oldest_ready_s: number | null;
  paused: boolean;
  paused_changed_at: Date | null;
  paused_changed_by: string | null;
}

export interface ThroughputRow {
  queue: string;
  /** 0: this minute, 59: an hour ago. */
  minute: number;
  succeeded: number;
  failed: number;
  cancelled: number;
}

export interface TaskListRow {
  id: string;
  name: string;
  queue: string;
  state: string;
  priority: number;
  attempts: number;
  max_attempts: number;
  created_at: Date;
  run_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  args_preview: string;
  error_name: string | null;
  error_message: string | null;
  group_id: string | null;
  chord_id: string | null;
  parent_id: string | null;
}

export interface TaskFilter {
  queue: string | null;
  state: string | null;
  name: string | null;
  from: Date | null;
  to: Date | null;
}

export interface StepRow {
  id: string;
  name: string;
  state: string;
  finished_at: Date | null;
  depth?: number;
}

export interface ChildRow extends StepRow {
  queue: string;
  created_at: Date;
}

export interface AttemptRow {
  attempt: number;
  worker_id: string | null;
  worker_name: string | null;
  started_at: Date | null;
  ended_at: Date;
  outcome: string;
  error: { name?: string; message?: string; stack?: string } | null;
}

export interface LogRow {
  attempt: number | null;
  at: Date;
  level: number;
  message: string;
  fields: Record<string, Json>;
}

export interface ChordRow {
  chord_id: string;
  group_id: string;
  total: number;
  completed: number;
  remaining: number;
  failed: number;
  state: string;
  callback_id: string | null;
  parent_id: string | null;
  created_at: Date;
  finished_at: Date | null;
  callback_name: string | null;
  callback_kind: string | null;
}

export interface ChordDetails extends ChordRow {
  callback: Json;
  callback_state: string | null;
  callback_task_name: string | null;
}

export interface GroupRow {
  group_id: string;
  total: number;
  succeeded: number;
  failed: number;
  running: number;
  cancelled: number;
  first_id: string;
  created_at: Date;
  chord_id: string | null;
}

export interface MemberRow {
  id: string;
  name: string;
  queue: string;
  state: string;
  attempts: number;
  max_attempts: number;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  chord_index: number | null;
  error_name: string | null;
  error_message: string | null;
}

/** A row of worker_list: the same shape `pgjobs status` shows. */
export type WorkerRow = Status["workers"][number];

export interface WorkerTaskRow {
  worker_id: string;
  id: string;
  name: string;
  queue: string;
  attempts: number;
  started_at: Date | null;
  lease_until: Date;
}

export interface AuditRow {
  id: string;
  at: Date;
  actor: string;
  address: string | null;
  action: string;
  target: string;
  outcome: string;
  detail: Record<string, Json>;
}

/** Rows per page of the task list. */
export const PAGE_SIZE = 50;

export class DashboardData {
  private overviewCache: { at: number; value: Promise<{ queues: QueueRow[]; throughput: ThroughputRow[] }> } | null = null;
  private readonly tables = new Map<string, Promise<boolean>>();

  constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
    /** How long one answer of the overview's table scan is shared between viewers. */
    private readonly overviewTtlMs = 1_000,
  ) {}

  private run<R extends object>(name: string, values: unknown[]): Promise<R[]> {
    return runPrepared<R>(this.pool, statement(this.schema, name), values);
  }

  /** Per-queue counts and the last hour's throughput, shared for overviewTtlMs. */
  overview(): Promise<{ queues: QueueRow[]; throughput: ThroughputRow[] }> {
    const now = Date.now();
    if (this.overviewCache && now - this.overviewCache.at < this.overviewTtlMs) return this.overviewCache.value;
    const value = (async () => {
      const queues = await this.run<QueueRow>("dashboard_queue_overview", []);
      const throughput = await this.run<ThroughputRow>("dashboard_queue_throughput", []);
      return { queues, throughput };
    })();
    this.overviewCache = { at: now, value };
    value.catch(() => {
      if (this.overviewCache?.value === value) this.overviewCache = null;
    });
    return value;
  }

  /** Forget the shared overview (after an action, so its result shows at once). */
  invalidate(): void {
    this.overviewCache = null;
  }

  async tasks(f: TaskFilter, page: { before: string | null; after: string | null }, limit = PAGE_SIZE): Promise<TaskListRow[]> {
    const filters = [f.queue, f.state, f.name, f.from, f.to];
    if (page.after !== null) {
      const rows = await this.run<TaskListRow>("dashboard_task_list_newer", [page.after, ...filters, limit]);
      return rows.reverse();
    }
    return this.run<TaskListRow>("dashboard_task_list", [page.before, ...filters, limit]);
  }

  /** Whether a page of rows exists beyond `id` in that direction (for the pager's links). */
  async hasMore(f: TaskFilter, direction: "older" | "newer", id: string): Promise<boolean> {
    const filters = [f.queue, f.state, f.name, f.from, f.to];
    const name = direction === "older" ? "dashboard_task_list" : "dashboard_task_list_newer";
    return (await this.run(name, [id, ...filters, 1])).length > 0;
  }

  task(id: string): Promise<TaskDetails> {
    return showTask({ pool: this.pool, schema: this.schema }, id);
  }

  children(id: string, limit = 200): Promise<ChildRow[]> {
    return this.run<ChildRow>("dashboard_task_children", [id, limit]);
  }

  chainBefore(id: string): Promise<StepRow[]> {
    return this.run<StepRow>("dashboard_task_chain", [id]);
  }

  tasksById(ids: string[]): Promise<StepRow[]> {
    return ids.length === 0 ? Promise.resolve([]) : this.run<StepRow>("dashboard_task_get_many", [ids]);
  }

  private has(table: string): Promise<boolean> {
    let p = this.tables.get(table);
    if (!p) {
      p = this.pool.query<{ ok: boolean }>("select to_regclass($1) is not null as ok", [`${this.schema}.${table}`]).then((r) => r.rows[0]!.ok);
      p.catch(() => this.tables.delete(table));
      this.tables.set(table, p);
    }
    return p;
  }

  /** The attempt history, or null where jobs.task_attempts does not exist (schema before 000008). */
  async attempts(id: string): Promise<AttemptRow[] | null> {
    if (!(await this.has("task_attempts"))) return null;
    return this.run<AttemptRow>("dashboard_task_attempts", [id]);
  }

  /** The task's stored log lines; null where there is no task_logs table, or it cannot be read
   * (an unlogged table on a replica). */
  async logs(id: string, limit = 1000): Promise<LogRow[] | null> {
    if (!(await this.has("task_logs"))) return null;
    try {
      return await this.run<LogRow>("dashboard_task_logs", [id, limit]);
    } catch (err) {
      if ((err as { code?: string }).code === "0A000") return null;
      throw err;
    }
  }

  chords(limit = 50): Promise<ChordRow[]> {
    return this.run<ChordRow>("dashboard_chord_list", [limit]);
  }

  async chord(id: string): Promise<ChordDetails | undefined> {
    const [row] = await this.run<ChordDetails>("dashboard_chord_show", [id]);
    return row;
  }

  groups(limit = 50, window = 100_000): Promise<GroupRow[]> {
    return this.run<GroupRow>("dashboard_group_list", [limit, window]);
  }

  members(groupId: string, limit = 1000): Promise<MemberRow[]> {
    return this.run<MemberRow>("dashboard_group_members", [groupId, limit]);
  }

  schedules(): Promise<ScheduleInfo[]> {
    return listSchedules(this.pool, this.schema);
  }

  workers(): Promise<WorkerRow[]> {
    return this.run<WorkerRow>("worker_list", []);
  }

  workerTasks(limit = 2000): Promise<WorkerTaskRow[]> {
    return this.run<WorkerTaskRow>("dashboard_worker_tasks", [limit]);
  }

  audit(before: string | null, target: string | null, limit = PAGE_SIZE): Promise<AuditRow[]> {
    return this.run<AuditRow>("dashboard_audit_list", [before, target, limit]);
  }
}
