import { Args } from "@oclif/core";
import { cancelTask, parseTaskId } from "../../../src/admin.js";
import { BaseCommand } from "../../base.js";

export default class TaskCancel extends BaseCommand<typeof TaskCancel> {
  static override summary = "Cancel (revoke) a task that has not finished.";
  static override description =
    "The same as `select jobs.cancel(array[ID])`. A queued task never runs; a running one has its " +
    "ctx.signal aborted by its worker, and its late result is ignored. A finished task is refused (exit 2).";
  static override examples = ["<%= config.bin %> task cancel 4711"];
  static override args = {
    id: Args.string({ required: true, description: "the task's id (jobs.tasks.id)" }),
  };

  public async run(): Promise<{ id: string; state: "cancelled"; was: string }> {
    const schema = this.schemaName();
    const id = parseTaskId(this.args.id);
    const client = await this.connect();
    try {
      const r = await cancelTask({ pool: client, schema }, id);
      this.log(`task ${r.id} cancelled (it was ${r.was})`);
      return r;
    } finally {
      await client.end().catch(() => {});
    }
  }
}
