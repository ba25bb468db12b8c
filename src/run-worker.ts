import { loadApp } from "./app.js";
import type { Jobs } from "./client.js";
import { superviseWorkers } from "./supervisor.js";
import type { Worker, WorkerOptions } from "./worker.js";

export interface RunWorkerOptions extends WorkerOptions {
  /** Path of the module that registers the tasks and exports the Jobs instance. */
  app: string;
  /** Worker processes (prefork). Default 1: the worker runs in this process. */
  processes?: number;
  /** For processes > 1: how to start one child (the CLI passes its own entry and flags). */
  childScript?: string;
  childArgs?: string[];
  /** Run the schema migration before starting (idempotent). */
  migrate?: boolean;
}

/**
 * What `pgjobs worker` runs: load the app, start a worker (or a supervisor of N worker
 * processes), and shut down gracefully on SIGTERM/SIGINT — a second signal stops at once.
 * Resolves with the exit code once everything has stopped.
 */
export async function runWorker(opts: RunWorkerOptions): Promise<number> {
  const processes = opts.processes ?? 1;
  if (processes > 1) {
    const jobs = await loadApp(opts.app);
    if (!opts.childScript) throw new Error("runWorker: childScript is required with processes > 1");
    const sup = superviseWorkers({ processes, script: opts.childScript, args: opts.childArgs ?? [], log: jobs.log });
    const onSignal = (sig: NodeJS.Signals) => sup.signal(sig);
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    const code = await sup.done;
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    await jobs.close();
    return code;
  }
  const jobs = await loadApp(opts.app);
  if (opts.migrate) await jobs.migrate();
  const worker = jobs.worker(opts);
  return runUntilSignalled(jobs, worker);
}

/** Start `worker` and stop it on the first SIGTERM/SIGINT (gracefully) or the second (at once). */
export async function runUntilSignalled(jobs: Jobs, worker: Worker): Promise<number> {
  let signals = 0;
  let stopped!: () => void;
  const done = new Promise<void>((r) => (stopped = r));
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    jobs.log.info({ signal: sig }, signals === 1 ? "stopping: finishing running tasks (send again to stop at once)" : "stopping at once");
    void worker.stop({ now: signals > 1 }).then(stopped);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // A child of `--processes N` whose supervisor died (kill -9, OOM killer) would run on with
  // nobody to stop it or restart its siblings: the IPC channel closing is its cue to stop
  // gracefully, as on SIGTERM.
  const onOrphaned = () => {
    jobs.log.warn({ ppid: process.ppid }, "the supervisor is gone: stopping this worker process");
    onSignal("SIGTERM");
  };
  const supervised = process.send !== undefined && process.env.PGJOBS_WORKER_SLOT !== undefined;
  if (supervised) process.once("disconnect", onOrphaned);
  try {
    await worker.start();
    await done;
    await jobs.close();
    return 0;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    process.off("disconnect", onOrphaned);
  }
}
