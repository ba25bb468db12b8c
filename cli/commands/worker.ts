import { Command, Flags } from "@oclif/core";
import { fileURLToPath } from "node:url";
import { runWorker } from "../../src/run-worker.js";
import { PgJobsError } from "../../src/errors.js";

export default class WorkerCommand extends Command {
  static override summary = "Run a worker: claim and run tasks of the given queues.";
  static override description = `Loads --app (a module that registers tasks and exports its pgjobs instance as \`jobs\` or
default), then claims and runs tasks until SIGTERM/SIGINT: the first signal stops claiming and lets
running tasks finish within --shutdown-grace, the second stops at once. --processes N runs N worker
processes under a supervisor (for CPU-bound tasks), restarting any that dies.`;
  static override examples = [
    "<%= config.bin %> worker --app ./dist/tasks.js --queues reports,email --concurrency 20",
    "<%= config.bin %> worker --app ./dist/tasks.js --processes 2",
  ];
  static override flags = {
    app: Flags.string({ required: true, description: "module that registers your tasks and exports the pgjobs instance" }),
    queues: Flags.string({ default: "default", description: "comma-separated queues to serve" }),
    concurrency: Flags.integer({ default: 10, min: 1, description: "handlers running at once (per process)" }),
    processes: Flags.integer({ default: 1, min: 1, description: "worker processes (prefork pool for CPU-bound tasks)" }),
    prefetch: Flags.integer({ default: 0, min: 0, description: "tasks claimed ahead of free slots" }),
    "shutdown-grace": Flags.string({ default: "30s", description: "how long running tasks may take to finish on SIGTERM" }),
    lease: Flags.string({ default: "15s", description: "a running task is rescued if its worker stops renewing it for this long" }),
    "poll-interval": Flags.string({ default: "2s", description: "fallback poll when a notification is lost" }),
    migrate: Flags.boolean({ default: false, description: "apply the schema before starting (idempotent)" }),
    "database-url": Flags.string({ env: "DATABASE_URL", description: "sets DATABASE_URL for the app before it loads" }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(WorkerCommand);
    if (flags["database-url"]) process.env.DATABASE_URL = flags["database-url"];
    const queues = flags.queues.split(",").map((q) => q.trim()).filter(Boolean);
    const childArgs = process.argv.slice(2).filter((a, i, all) => a !== "--processes" && all[i - 1] !== "--processes" && !a.startsWith("--processes="));
    try {
      const code = await runWorker({
        app: flags.app,
        queues,
        concurrency: flags.concurrency,
        processes: flags.processes,
        prefetch: flags.prefetch,
        shutdownGrace: flags["shutdown-grace"] as never,
        lease: flags.lease as never,
        pollInterval: flags["poll-interval"] as never,
        migrate: flags.migrate,
        childScript: fileURLToPath(new URL("../../../bin/run.js", import.meta.url)),
        childArgs,
      });
      this.exit(code);
    } catch (err) {
      if (err instanceof PgJobsError) this.error(err.message, { exit: 2 });
      throw err;
    }
  }
}
