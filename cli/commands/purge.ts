import { Flags } from "@oclif/core";
import { checkPurgeState, purge } from "../../src/admin.js";
import { toMs, type Duration } from "../../src/duration.js";
import { validateQueue } from "../../src/identifiers.js";
import { BaseCommand } from "../base.js";

export default class PurgeCommand extends BaseCommand<typeof PurgeCommand> {
  static override summary = "Delete finished tasks older than a given age, in batches, showing progress.";
  static override description =
    "Deletes tasks in one finished state (succeeded, failed or cancelled) that finished longer ago than " +
    "--older-than, in batches of --batch-size rows so locks stay few and short; progress goes to stderr. " +
    "Succeeded members of a chord that is still waiting are kept (the chord's callback needs their results). " +
    "Workers also prune finished tasks past their retention (7 days by default).";
  static override examples = [
    "<%= config.bin %> purge --queue email --state failed --older-than 7d",
    "<%= config.bin %> purge --state succeeded --older-than 12h --dry-run",
  ];
  static override flags = {
    queue: Flags.string({ description: "only this queue (default: every queue)", helpValue: "QUEUE" }),
    state: Flags.string({ required: true, description: "which finished tasks to delete: succeeded, failed or cancelled", helpValue: "STATE" }),
    "older-than": Flags.string({ required: true, description: "finished longer ago than this: 30m, 12h, 7d", helpValue: "AGE" }),
    "batch-size": Flags.integer({ default: 5000, min: 1, max: 100_000, description: "rows per DELETE" }),
    "dry-run": Flags.boolean({ default: false, description: "count what would be deleted, delete nothing" }),
  };

  public async run(): Promise<{ deleted: number; matched: number; dryRun: boolean }> {
    // Everything the user typed is checked before connecting.
    const schema = this.schemaName();
    const queue = this.flags.queue === undefined ? undefined : validateQueue(this.flags.queue);
    const olderThan = this.flags["older-than"] as Duration;
    toMs(olderThan, "--older-than");
    checkPurgeState(this.flags.state);
    const what = `${this.flags.state} tasks${queue ? ` of queue ${queue}` : ""} finished more than ${this.flags["older-than"]} ago`;
    const client = await this.connect();
    try {
      let lastPrint = 0;
      const r = await purge({ pool: client, schema }, {
        ...(queue === undefined ? {} : { queue }),
        state: this.flags.state,
        olderThan,
        batch: this.flags["batch-size"],
        dryRun: this.flags["dry-run"],
        onProgress: (deleted, total) => {
          // At most ~4 lines a second, and always the last one.
          const now = Date.now();
          if (deleted !== total && now - lastPrint < 250) return;
          lastPrint = now;
          const pct = total === 0 ? 100 : Math.floor((deleted / total) * 100);
          process.stderr.write(`purge: ${deleted}/${total} deleted (${pct}%)\n`);
        },
      });
      this.log(r.dryRun ? `would delete ${r.matched} ${what}` : `deleted ${r.deleted} ${what}`);
      return r;
    } finally {
      await client.end().catch(() => {});
    }
  }
}
