import { Args, Flags } from "@oclif/core";
import { addSchedule, describeTiming, LIVE_WORKER_S, scheduleFromInput, wallTime, type MisfirePolicy, type ScheduleInfo } from "../../../src/scheduler.js";
import type { Duration } from "../../../src/duration.js";
import { BaseCommand } from "../../base.js";

export default class ScheduleAdd extends BaseCommand<typeof ScheduleAdd> {
  static override summary = "Add a periodic schedule: a task enqueued at each tick of a cron expression or interval.";
  static override description =
    "Give exactly one of --cron (5 fields, or 6 with seconds first, read in --timezone) and --every. " +
    "The task must be registered by a live worker (one that sent a heartbeat in the last " +
    `${LIVE_WORKER_S} s) serving --queue; --force adds it anyway (e.g. before the workers are deployed). ` +
    "Bad input (an invalid cron expression, an unknown timezone, a task no worker registers, a name " +
    "already taken) is refused and nothing is written. Any `pgjobs beat` or `pgjobs worker --beat` fires it, once per tick.";
  static override examples = [
    `<%= config.bin %> schedule add nightly-report --cron "0 0 * * *" --task produce_report --args '["today"]' --timezone Europe/Berlin`,
    "<%= config.bin %> schedule add ping --every 10m --task ping --queue monitoring",
  ];
  static override args = {
    name: Args.string({ required: true, description: "the schedule's name (letters, digits, _ . : -)" }),
  };
  static override flags = {
    task: Flags.string({ required: true, description: "name of the task to enqueue at each tick" }),
    cron: Flags.string({ description: 'cron expression, e.g. "0 0 * * *" (or 6 fields, seconds first)' }),
    every: Flags.string({ description: "fixed interval instead of --cron, e.g. 30s, 10m, 2h (at least 1s)" }),
    args: Flags.string({ default: "[]", description: "the task's arguments as a JSON array" }),
    queue: Flags.string({ default: "default", description: "queue the tasks go to" }),
    timezone: Flags.string({ default: "UTC", description: "IANA timezone the cron expression is read in" }),
    priority: Flags.integer({ default: 0, description: "priority of the tasks, -100..100 (higher runs first)" }),
    retries: Flags.integer({ default: 3, description: "retries of each task after a failure" }),
    misfire: Flags.string({ default: "once", description: "ticks missed while no scheduler ran: run once, run all (at most 1,000), or skip" }),
    "misfire-grace": Flags.string({ default: "30s", description: "how late a tick may fire and still count as on time" }),
    force: Flags.boolean({ default: false, description: "add it even if no live worker registers the task or serves the queue" }),
  };

  public async run(): Promise<ScheduleInfo> {
    const schema = this.schemaName();
    const f = this.flags;
    // Validated before connecting: bad input sends nothing to the server.
    const def = scheduleFromInput({
      name: this.args.name,
      task: f.task,
      ...(f.cron !== undefined ? { cron: f.cron } : {}),
      ...(f.every !== undefined ? { every: f.every as Duration } : {}),
      args: f.args,
      queue: f.queue,
      timezone: f.timezone,
      priority: f.priority,
      retries: f.retries,
      misfire: f.misfire as MisfirePolicy,
      misfireGrace: f["misfire-grace"] as Duration,
    });
    const client = await this.connect();
    try {
      const s = await addSchedule(client, schema, def, { force: f.force });
      const next = s.next_run_at ? `${s.next_run_at.toISOString()} (${wallTime(s.next_run_at, s.timezone)})` : "-";
      this.log(`added schedule ${s.name}: ${describeTiming(s)} -> task ${s.task} ${JSON.stringify(s.args)} on queue ${s.queue}; first tick ${next}`);
      return s;
    } finally {
      await client.end().catch(() => {});
    }
  }
}
