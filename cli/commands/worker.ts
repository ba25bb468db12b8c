import { Flags } from "@oclif/core";
import { fileURLToPath } from "node:url";
import { BaseCommand } from "../base.js";

export default class WorkerCommand extends BaseCommand<typeof WorkerCommand> {
  static override summary = "Run a worker: claim and run tasks of the given queues.";
  static override description = `Loads --app (a module that registers tasks and exports its pgjobs instance as \`jobs\` or
default), then claims and runs tasks until SIGTERM/SIGINT: the first signal stops claiming and lets
running tasks finish within --shutdown-grace, the second stops at once. --processes N runs N worker
processes under a supervisor (for CPU-bound tasks), restarting any that dies.`;
  static override examples = [
    "<%= config.bin %> worker --app ./dist/tasks.js --queues reports,email --concurrency 20",
    "<%= config.bin %> worker --app ./dist/tasks.js --processes 2",
  ];
  // The app's createJobs() picks the schema; the worker prints no JSON.
  static override enableJsonFlag = false;
  static override baseFlags = {
    "database-url": Flags.string({
      summary: "Sets DATABASE_URL for the app before it loads.",
      env: "DATABASE_URL",
      helpValue: "URL",
      helpGroup: "GLOBAL",
    }),
  } as unknown as typeof BaseCommand.baseFlags;
  static override flags = {
    app: Flags.string({ required: true, description: "module that registers your tasks and exports the pgjobs instance" }),
    queues: Flags.string({ default: "default", description: "comma-separated queues to serve" }),
    concurrency: Flags.integer({ default: 10, min: 1, description: "handlers running at once (per process)" }),
    processes: Flags.integer({ default: 1, min: 1, description: "worker processes (prefork pool for CPU-bound tasks)" }),
    prefetch: Flags.string({ default: "auto", description: "tasks claimed ahead of free slots: a number, or auto (up to --concurrency while tasks take under 1 s)" }),
    "shutdown-grace": Flags.string({ default: "30s", description: "how long running tasks may take to finish on SIGTERM" }),
    lease: Flags.string({ default: "15s", description: "a running task is rescued if its worker stops renewing it for this long" }),
    "poll-interval": Flags.string({ default: "2s", description: "fallback poll when a notification is lost" }),
    "heartbeat-interval": Flags.string({ description: "how often running tasks' leases are renewed (default: a third of --lease)" }),
    "rescue-interval": Flags.string({ description: "how often to look for tasks whose lease lapsed (crashed workers) (default 5s)" }),
    handoff: Flags.boolean({ default: true, allowNo: true, description: "while idle, take tasks straight from enqueues made outside a transaction, with no claim round trip (--no-handoff: always claim)" }),
    migrate: Flags.boolean({ default: false, description: "apply the schema before starting (idempotent)" }),
    beat: Flags.boolean({ default: false, description: "also fire periodic schedules (any number of workers may: each tick fires once)" }),
    "metrics-port": Flags.string({ helpValue: "[HOST:]PORT", description: "serve Prometheus metrics at http://HOST:PORT/metrics (all interfaces unless HOST is given; with --processes N, process k serves on PORT+k)" }),
  };

  async run(): Promise<void> {
    const flags = this.flags;
    if (flags["database-url"]) process.env.DATABASE_URL = flags["database-url"];
    const queues = flags.queues.split(",").map((q) => q.trim()).filter(Boolean);
    const childArgs = process.argv.slice(2).filter((a, i, all) => a !== "--processes" && all[i - 1] !== "--processes" && !a.startsWith("--processes="));
    // Loaded here, not at the top: oclif loads every command's module to list them, and this
    // one pulls in the whole library.
    const [{ runWorker }, { startWorkerMetrics }] = await Promise.all([import("../../src/run-worker.js"), import("../../src/metrics.js")]);
    // In this process only when it runs the worker itself; prefork children serve their own.
    const metrics = flags["metrics-port"] && flags.processes === 1 ? await startWorkerMetrics(flags.app, flags["metrics-port"]) : undefined;
    const code = await runWorker({
      app: flags.app,
      queues,
      concurrency: flags.concurrency,
      processes: flags.processes,
      prefetch: flags.prefetch === "auto" ? "auto" : Number(flags.prefetch),
      shutdownGrace: flags["shutdown-grace"] as never,
      lease: flags.lease as never,
      pollInterval: flags["poll-interval"] as never,
      ...(flags["heartbeat-interval"] ? { heartbeatInterval: flags["heartbeat-interval"] as never } : {}),
      ...(flags["rescue-interval"] ? { rescueInterval: flags["rescue-interval"] as never } : {}),
      handoff: flags.handoff,
      migrate: flags.migrate,
      beat: flags.beat,
      childScript: fileURLToPath(new URL("../../../bin/run.js", import.meta.url)),
      childArgs,
    });
    await metrics?.close();
    this.exit(code);
  }
}
