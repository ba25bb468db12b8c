import { Args } from "@oclif/core";
import { removeSchedule, validateScheduleName } from "../../../src/scheduler.js";
import { BaseCommand } from "../../base.js";

export default class ScheduleRemove extends BaseCommand<typeof ScheduleRemove> {
  static override summary = "Remove a schedule. Tasks it already enqueued stay.";
  static override description =
    "A schedule defined in code (jobs.schedule()) is written again when a worker with --beat starts: " +
    "remove it from the code too, or use pgjobs schedule disable, which survives restarts.";
  static override examples = ["<%= config.bin %> schedule remove nightly-report"];
  static override args = {
    name: Args.string({ required: true, description: "the schedule's name" }),
  };

  public async run(): Promise<{ name: string; removed: true }> {
    const schema = this.schemaName();
    validateScheduleName(this.args.name); // a bad name sends nothing to the server
    const client = await this.connect();
    try {
      const r = await removeSchedule(client, schema, this.args.name);
      this.log(`removed schedule ${r.name}`);
      return r;
    } finally {
      await client.end().catch(() => {});
    }
  }
}
