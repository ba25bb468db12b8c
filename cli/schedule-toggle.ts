import { Args } from "@oclif/core";
import { setScheduleEnabled, validateScheduleName, type ScheduleInfo } from "../src/scheduler.js";
import { BaseCommand } from "./base.js";

/** `pgjobs schedule enable|disable NAME`: the same command but for the flag it sets and what it says. */
export abstract class ScheduleToggleCommand extends BaseCommand<typeof ScheduleToggleCommand> {
  static override args = {
    name: Args.string({ required: true, description: "the schedule's name" }),
  };

  protected abstract readonly enabled: boolean;
  /** The line printed once the schedule is in the wanted state. */
  protected abstract describe(s: ScheduleInfo & { changed: boolean }): string;

  public async run(): Promise<ScheduleInfo & { changed: boolean }> {
    const schema = this.schemaName();
    validateScheduleName(this.args.name); // a bad name sends nothing to the server
    const client = await this.connect();
    try {
      const s = await setScheduleEnabled(client, schema, this.args.name, this.enabled);
      this.log(this.describe(s));
      return s;
    } finally {
      await client.end().catch(() => {});
    }
  }
}
