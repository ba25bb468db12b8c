/**
 * Leak check for test files: a pool, client, socket, timer or child process still open when the
 * file's tests are done fails the file (STYLE.md: "a test fails if it leaks ...").
 *
 * It compares `process.getActiveResourcesInfo()` with a snapshot taken when the file loaded.
 * What node:test itself holds in a test file's process is in that snapshot: the stdout/stderr
 * pipes ("PipeWrap", "TTYWrap" on a terminal) and, briefly, a "CloseReq" from startup. Those are
 * not leaks; everything beyond the snapshot is.
 */

export type ResourceCounts = Map<string, number>;

export function snapshotResources(): ResourceCounts {
  const counts: ResourceCounts = new Map();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

const EXPLAIN: Record<string, string> = {
  TCPSocketWrap: "TCP sockets: a pg Pool or Client not ended, or a server not closed",
  TCPServerWrap: "TCP servers not closed",
  PipeWrap: "pipes or Unix sockets: a child process's stdio, or a socket not closed",
  Timeout: "timers: a setTimeout/setInterval not cleared (a worker or poller not stopped?)",
  Immediate: "setImmediate callbacks",
  ProcessWrap: "child processes not waited for",
  FSEventWrap: "file watchers not closed",
  SignalWrap: "signal listeners",
};

function leaked(baseline: ResourceCounts): [string, number][] {
  const now = snapshotResources();
  const out: [string, number][] = [];
  for (const [kind, n] of now) {
    const extra = n - (baseline.get(kind) ?? 0);
    if (extra > 0) out.push([kind, extra]);
  }
  return out;
}

/**
 * Resolve once nothing beyond `baseline` is active, or throw a one-line error naming what is
 * still open after `settleMs`. Closing is asynchronous (pool.end() resolves before its sockets
 * are closed), hence the short wait.
 */
export async function assertNoLeaks(baseline: ResourceCounts, settleMs = 2_000): Promise<void> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    // Checked from inside a fired timer's callback: a fired timer is no longer listed as active.
    const extra = leaked(baseline);
    if (extra.length === 0) return;
    if (Date.now() >= deadline) {
      const list = extra.map(([kind, n]) => `${n} ${kind} (${EXPLAIN[kind] ?? "see process.getActiveResourcesInfo()"})`);
      throw new Error(
        `this test file leaked ${list.join(", ")}: stop what the tests start, with db.onClose(fn) or an after() hook inside a describe()`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
