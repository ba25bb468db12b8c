/**
 * The dashboard's actions. Each goes through the same functions as the CLI (retryTask and
 * cancelTask call jobs.retry / jobs.cancel, setScheduleEnabled is `pgjobs schedule
 * enable|disable`, queues are paused by jobs.pause_queue) and is recorded in jobs.audit in the
 * same transaction: an action is in the audit log if and only if it happened. A refused action
 * (retrying a task that succeeded, deleting one that still runs) changes nothing and is recorded
 * as refused, with the reason.
 */
import type pg from "pg";
import { cancelTask, parseTaskId, retryTask, showTask } from "../admin.js";
import { runPrepared } from "../db.js";
import { InvalidInputError, PgJobsError } from "../errors.js";
import { validateQueue } from "../identifiers.js";
import { setScheduleEnabled, validateScheduleName } from "../scheduler.js";
import { statement } from "../sql.js";

export const ACTIONS = ["task.retry", "task.cancel", "task.delete", "queue.pause", "queue.resume", "schedule.pause", "schedule.resume"] as const;
export type ActionName = (typeof ACTIONS)[number];

export interface Who {
  actor: string;
  address: string | null;
}

export interface ActionOutcome {
  outcome: "done" | "unchanged" | "refused";
  /** One line for the operator. */
  message: string;
}

/** Check an action's target before anything is sent to the database. */
export function checkTarget(action: ActionName, target: string): string {
  if (action.startsWith("task.")) return parseTaskId(target);
  if (action.startsWith("queue.")) return validateQueue(target);
  return validateScheduleName(target);
}

type Client = pg.PoolClient;

async function run(client: Client, schema: string, action: ActionName, target: string, who: Who): Promise<ActionOutcome & { detail?: Record<string, unknown> }> {
  const t = { pool: client, schema };
  switch (action) {
    case "task.retry": {
      await retryTask(t, target);
      return { outcome: "done", message: `task ${target} is ready to run again` };
    }
    case "task.cancel": {
      const r = await cancelTask(t, target);
      return { outcome: "done", message: `cancelled task ${target} (it was ${r.was})`, detail: { was: r.was } };
    }
    case "task.delete": {
      const before = await showTask(t, target);
      const rows = await runPrepared<{ id: string }>(client, statement(schema, "dashboard_task_delete"), [[target]]);
      if (rows.length === 0) {
        const why = ["succeeded", "failed", "cancelled"].includes(before.state)
          ? "it is a succeeded member of a chord that is still waiting: its callback will read the result"
          : `it is ${before.state}: cancel it first, only finished tasks can be deleted`;
        throw new InvalidInputError(`task ${before.name} (id ${target}) was not deleted: ${why}`);
      }
      return { outcome: "done", message: `deleted task ${before.name} (id ${target}, ${before.state})`, detail: { name: before.name, state: before.state, queue: before.queue } };
    }
    case "queue.pause":
    case "queue.resume": {
      const pause = action === "queue.pause";
      const [row] = await runPrepared<{ changed: boolean }>(client, statement(schema, pause ? "dashboard_queue_pause" : "dashboard_queue_resume"), [target, who.actor]);
      const changed = row?.changed === true;
      if (pause) return changed ? { outcome: "done", message: `paused queue ${target}: workers claim none of its tasks until it is resumed` } : { outcome: "unchanged", message: `queue ${target} was already paused` };
      return changed ? { outcome: "done", message: `resumed queue ${target}` } : { outcome: "unchanged", message: `queue ${target} was not paused` };
    }
    case "schedule.pause":
    case "schedule.resume": {
      const enable = action === "schedule.resume";
      const s = await setScheduleEnabled(client, schema, target, enable);
      if (!s.changed) return { outcome: "unchanged", message: `schedule ${target} was already ${enable ? "running" : "paused"}` };
      const next = s.next_run_at ? `; next tick ${s.next_run_at.toISOString()}` : "";
      return { outcome: "done", message: `${enable ? "resumed" : "paused"} schedule ${target}${enable ? next : ""}` };
    }
  }
}

/**
 * Perform `action` on `target` and record it. Errors a user can cause (a task in the wrong
 * state, a name that does not exist) come back as a refused outcome, recorded; anything else
 * (the database is down) throws and records nothing.
 */
export async function perform(pool: pg.Pool, schema: string, action: ActionName, target: string, who: Who): Promise<ActionOutcome> {
  const audit = statement(schema, "dashboard_audit_add");
  const client = await pool.connect();
  let broken: unknown = undefined;
  try {
    await client.query("begin");
    let out: Awaited<ReturnType<typeof run>>;
    try {
      out = await run(client, schema, action, target, who);
    } catch (err) {
      await client.query("rollback");
      if (!(err instanceof PgJobsError)) throw err;
      await runPrepared(client, audit, [who.actor, who.address, action, target, "refused", JSON.stringify({ reason: err.message })]);
      return { outcome: "refused", message: err.message };
    }
    await runPrepared(client, audit, [who.actor, who.address, action, target, out.outcome, JSON.stringify(out.detail ?? {})]);
    await client.query("commit");
    return { outcome: out.outcome, message: out.message };
  } catch (err) {
    broken = err;
    await client.query("rollback").catch(() => {});
    throw err;
  } finally {
    // A connection that failed mid-transaction is not handed back to the pool.
    client.release(broken instanceof Error && !(broken instanceof PgJobsError) ? broken : undefined);
  }
}
