import { Args } from "@oclif/core";
import { setScheduleEnabled, validateScheduleName, wallTime, type ScheduleInfo } from "../../../src/scheduler.js";
import { BaseCommand } from "../../base.js";

export default class ScheduleEnable extends BaseCommand<typeof ScheduleEnable> {
  static override summary = "Resume a paused schedule from its next tick (ticks missed while paused are not caught up).";
  static override examples = ["<%= config.bin %> schedule enable nightly-report"];
  static override args = {
    name: Args.string({ required: true, description: "the schedule's name" }),
  };

  public async run(): Promise<ScheduleInfo & { changed: boolean }> {
    const schema = this.schemaName();
    validateScheduleName(this.args.name); // a bad name sends nothing to the server
    const client = await this.connect();
    try {
      const s = await setScheduleEnabled(client, schema, this.args.name, true);
      const next = s.next_run_at ? `${s.next_run_at.toISOString()} (${wallTime(s.next_run_at, s.timezone)})` : "-";
      this.log(s.changed ? `enabled schedule ${s.name}; next tick ${next}` : `schedule ${s.name} was already enabled; next tick ${next}`);
      return s;
    } finally {
      await client.end().catch(() => {});
    }
  }
}
