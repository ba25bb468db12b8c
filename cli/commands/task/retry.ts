import { Args } from "@oclif/core";
import { parseTaskId, retryTask } from "../../../src/admin.js";
import { BaseCommand } from "../../base.js";

export default class TaskRetry extends BaseCommand<typeof TaskRetry> {
  static override summary = "Run a failed or cancelled task again, from a fresh attempt count.";
  static override description = "The same as `select jobs.retry(array[ID])`. A task in any other state is refused (exit 2), naming its state.";
  static override examples = ["<%= config.bin %> task retry 4711"];
  static override args = {
    id: Args.string({ required: true, description: "the task's id (jobs.tasks.id)" }),
  };

  public async run(): Promise<{ id: string; state: "ready" }> {
    const schema = this.schemaName();
    const id = parseTaskId(this.args.id);
    const client = await this.connect();
    try {
      const r = await retryTask({ pool: client, schema }, id);
      this.log(`task ${r.id} is ready to run again`);
      return r;
    } finally {
      await client.end().catch(() => {});
    }
  }
}
