import { Args, Flags } from "@oclif/core";
import { checkEnqueue, enqueueByName, type EnqueueOptions } from "../../src/admin.js";
import { BaseCommand } from "../base.js";

export default class EnqueueCommand extends BaseCommand<typeof EnqueueCommand> {
  static override summary = "Enqueue a task by name, through the SQL function jobs.enqueue_many.";
  static override description =
    "Prints the new task's id (for a --key an unfinished task holds, that task's id). The CLI does not " +
    "load your app, so it cannot check the name against your tasks: it warns when live workers serve " +
    "the queue and none of them registered the name (such a task fails for good with UnknownTask).";
  static override examples = [
    `<%= config.bin %> enqueue add --args '[2, 2]'`,
    `<%= config.bin %> enqueue send_report --args '["2026-11-01"]' --queue reports --priority 5 --countdown 5m`,
  ];
  static override args = {
    name: Args.string({ required: true, description: "the task's name, as registered with jobs.task(name, ...)" }),
  };
  static override flags = {
    args: Flags.string({ default: "[]", description: "the handler's arguments, as a JSON array", helpValue: "JSON" }),
    queue: Flags.string({ default: "default", description: "queue to put it on" }),
    priority: Flags.integer({ default: 0, description: "-100 to 100, higher runs first" }),
    countdown: Flags.string({ description: "run no sooner than this: seconds, or 90s, 5m, 2h", helpValue: "DELAY" }),
    retries: Flags.integer({ default: 3, description: "retries after the first attempt" }),
    key: Flags.string({ description: "dedup key: while an unfinished task holds it, nothing new is enqueued" }),
  };

  public async run(): Promise<Awaited<ReturnType<typeof enqueueByName>>> {
    const schema = this.schemaName();
    const f = this.flags;
    const opts: EnqueueOptions = {
      args: f.args,
      queue: f.queue,
      priority: f.priority,
      retries: f.retries,
      ...(f.countdown === undefined ? {} : { countdown: f.countdown as never }),
      ...(f.key === undefined ? {} : { key: f.key }),
    };
    checkEnqueue(this.args.name, opts); // bad input sends nothing to the server
    const client = await this.connect();
    try {
      const r = await enqueueByName({ pool: client, schema }, this.args.name, opts);
      if (r.workers > 0 && r.knownBy === 0) {
        process.stderr.write(`pgjobs: warning: none of the ${r.workers} live workers of queue ${r.queue} registered task ${r.name}: check the name\n`);
      }
      this.log(r.id);
      return r;
    } finally {
      await client.end().catch(() => {});
    }
  }
}
