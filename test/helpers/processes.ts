/**
 * Child processes for the tests that run `pgjobs` (or a fixture script) for real: output
 * captured line by line, so a test can wait for a line, stop a process (SIGTERM) or kill -9 it.
 * Every process started is tracked: killAll() from db.onClose.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { CLI_BIN } from "./paths.js";

export interface Proc {
  readonly pid: number;
  readonly child: ChildProcess;
  /** stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout line that matches (already written or still to come). */
  line(match: RegExp, timeoutMs?: number): Promise<string>;
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then wait for it to exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL (kill -9), then wait for it to exit. */
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<Proc>();

/** `node <script> ...args` (script defaults to the CLI). */
export function startProcess(args: string[], opts: { env?: Record<string, string>; script?: string } = {}): Proc {
  const child = spawn(process.execPath, [opts.script ?? CLI_BIN, ...args], {
    env: { ...process.env, NO_COLOR: "1", ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const waiters: Array<{ match: RegExp; resolve: (l: string) => void }> = [];
  const scan = () => {
    for (const w of [...waiters]) {
      const hit = out.split("\n").slice(0, -1).find((l) => w.match.test(l));
      if (hit !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(hit);
      }
    }
  };
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    out += s;
    scan();
  });
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // 'close', not 'exit': the pipes are drained and closed, so nothing stays open (leak check).
    child.on("close", (code, signal) => resolve({ code, signal }));
  });
  const p: Proc = {
    pid: child.pid!,
    child,
    stdout: () => out,
    stderr: () => err,
    line(match, timeoutMs = 20_000) {
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.findIndex((w) => w.resolve === done), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for a line matching ${match} from pid ${child.pid}; stdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        const done = (l: string) => {
          clearTimeout(timer);
          resolve(l);
        };
        void closed.then(() => {
          if (waiters.some((w) => w.resolve === done)) {
            clearTimeout(timer);
            waiters.splice(waiters.findIndex((w) => w.resolve === done), 1);
            reject(new Error(`pid ${child.pid} exited before printing a line matching ${match}; stdout:\n${out}\nstderr:\n${err}`));
          }
        });
        waiters.push({ match, resolve: done });
        scan();
      });
    },
    closed,
    stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return closed;
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      return closed;
    },
  };
  live.add(p);
  void closed.then(() => live.delete(p));
  return p;
}

/** Kill (-9) every process still running and wait for them. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}

/** Poll `check` until it returns something other than undefined/false; fail naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
