import { fork, type ChildProcess } from "node:child_process";
import type { Logger } from "./logger.js";

export interface SupervisorOptions {
  /** Worker processes to keep running. */
  processes: number;
  /** The script and arguments each child runs (a worker in a single process). */
  script: string;
  args: string[];
  log: Logger;
  /** Environment for the children (the parent's by default). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Celery's prefork pool, the Node way: N worker processes under one supervisor, for CPU-bound
 * tasks (one event loop cannot use two cores). A child that dies is restarted, with a delay that
 * grows while children keep dying quickly, so a task that kills its process cannot make the
 * supervisor spin. SIGTERM/SIGINT are passed on to the children (a second signal too, which
 * makes them stop at once); the supervisor exits when they all have, with 0 if they all exited 0.
 */
export function superviseWorkers(opts: SupervisorOptions): { signal(sig: NodeJS.Signals): void; done: Promise<number> } {
  const children = new Set<ChildProcess>();
  let stopping = false;
  let forwarded: NodeJS.Signals | null = null;
  let quickDeaths = 0;
  let worst = 0;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const spawnChild = (slot: number) => {
    const started = Date.now();
    const child = fork(opts.script, opts.args, { env: { ...(opts.env ?? process.env), PGJOBS_WORKER_SLOT: String(slot) }, stdio: "inherit" });
    children.add(child);
    opts.log.info({ pid: child.pid, slot }, "worker process started");
    child.on("exit", (code, signal) => {
      children.delete(child);
      if (stopping) {
        // A child still loading when the signal came dies of it before it can handle it: that
        // is a clean stop too.
        const cleanly = code === 0 || (code === null && signal === forwarded);
        if (!cleanly) worst = code ?? 1;
        if (children.size === 0) resolveDone(worst);
        return;
      }
      quickDeaths = Date.now() - started < 10_000 ? quickDeaths + 1 : 0;
      const delay = Math.min(30_000, quickDeaths === 0 ? 0 : 250 * 2 ** Math.min(quickDeaths - 1, 7));
      opts.log.warn({ pid: child.pid, code, signal, restartInMs: delay }, "worker process died; restarting it");
      setTimeout(() => {
        if (!stopping) spawnChild(slot);
        else if (children.size === 0) resolveDone(worst);
      }, delay);
    });
  };

  for (let i = 0; i < opts.processes; i++) spawnChild(i);

  /** Pass a signal on to every child; after the first, dead children are no longer restarted. */
  const signal = (sig: NodeJS.Signals) => {
    stopping = true;
    forwarded = sig;
    for (const c of children) c.kill(sig);
    if (children.size === 0) resolveDone(worst);
  };
  return { signal, done };
}
