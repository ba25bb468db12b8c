import { Args } from "@oclif/core";
import { setScheduleEnabled, validateScheduleName, type ScheduleInfo } from "../../../src/scheduler.js";
import { BaseCommand } from "../../base.js";

export default class ScheduleDisable extends BaseCommand<typeof ScheduleDisable> {
  static override summary = "Pause a schedule: no tick fires until pgjobs schedule enable. Survives worker restarts.";
  static override examples = ["<%= config.bin %> schedule disable nightly-report"];
  static override args = {
    name: Args.string({ required: true, description: "the schedule's name" }),
  };

  public async run(): Promise<ScheduleInfo & { changed: boolean }> {
    const schema = this.schemaName();
    validateScheduleName(this.args.name); // a bad name sends nothing to the server
    const client = await this.connect();
    try {
      const s = await setScheduleEnabled(client, schema, this.args.name, false);
      this.log(s.changed ? `disabled schedule ${s.name}` : `schedule ${s.name} was already disabled`);
      return s;
    } finally {
      await client.end().catch(() => {});
    }
  }
}
