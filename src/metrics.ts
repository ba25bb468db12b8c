/**
 * Prometheus metrics for a process that enqueues or runs tasks, with prom-client (the client
 * library the Node ecosystem standardised on).
 *
 * Two kinds of numbers:
 * - what this process saw, counted from its events as they happen: tasks enqueued, started,
 *   finished by name and outcome, retries, rescues, handler durations, time from run_at to start,
 *   claim batch sizes, and the process's own state (pool connections, tasks in hand, event-loop
 *   lag). Counters start at zero with the process, as Prometheus expects.
 * - what the database says, for every worker at once: per queue ready / scheduled / running /
 *   failed counts, the oldest ready task's age and the live workers. One `queue_status` query
 *   (a scan of jobs.tasks) serves every scrape within `queueStatsTtl` (5 s by default), so
 *   scraping every second from three Prometheus replicas still costs one query per 5 s.
 *
 * ```ts
 * const metrics = createMetrics(jobs);                       // before jobs.worker(...)
 * http.createServer(metrics.handler).listen(9464);           // or: await serveMetrics(metrics, { port: 9464 })
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { status, type Status } from "./admin.js";
import type { Jobs } from "./client.js";
import { toMs, type Duration } from "./duration.js";
import { InvalidInputError } from "./errors.js";
import type { JobsHook } from "./hooks.js";
import type { Worker } from "./worker.js";

export interface MetricsOptions {
  /** Register into this registry (e.g. prom-client's global `register`). Default: a new one. */
  registry?: Registry;
  /** Prefix of every metric name. Default "pgjobs_". */
  prefix?: string;
  /** How long per-queue counts from SQL are reused. Default 5 s; 0 queries on every scrape. */
  queueStatsTtl?: Duration;
  /** Leave out the per-queue counts from SQL (a process that only enqueues, say). Default true. */
  queueStats?: boolean;
  /** Also collect prom-client's default process metrics (CPU, memory, GC, handles). Default false. */
  processMetrics?: boolean;
  /** Buckets of the handler duration histogram, in seconds. */
  durationBuckets?: number[];
  /** Buckets of the run_at-to-start histogram, in seconds. */
  waitBuckets?: number[];
}

export interface Metrics {
  readonly registry: Registry;
  /** A node:http handler that answers every request with the metrics in Prometheus' text format. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** The text a scrape gets. */
  metrics(): Promise<string>;
  /**
   * Count a worker's claims, rescues and tasks in hand. Workers created with jobs.worker() after
   * createMetrics() are observed without this call.
   */
  observeWorker(worker: Worker): void;
  /** Forget the cached per-queue counts: the next scrape queries the database. */
  invalidate(): void;
  /** Stop listening to events and the event-loop monitor. Idempotent. */
  close(): void;
}

const DEFAULT_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];
const DEFAULT_WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const CLAIM_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
const STATES = ["ready", "scheduled", "running", "failed", "succeeded", "cancelled"] as const;
/** Attempts whose end we have not seen (cancelled, or a stale acknowledgement) are forgotten past this. */
const MAX_OPEN_ATTEMPTS = 10_000;

/**
 * Metrics for `jobs` (see the module comment for what is measured).
 *
 * ```ts
 * const jobs = createJobs({ connectionString: process.env.DATABASE_URL });
 * const metrics = createMetrics(jobs);
 * const server = await serveMetrics(metrics, { port: 9464 }); // GET http://host:9464/metrics
 * ```
 */
export function createMetrics(jobs: Jobs, options: MetricsOptions = {}): Metrics {
  const registry = options.registry ?? new Registry();
  const p = options.prefix ?? "pgjobs_";
  const ttlMs = toMs(options.queueStatsTtl ?? 5_000, "queueStatsTtl");
  const registers = [registry];

  const enqueued = new Counter({ name: `${p}tasks_enqueued_total`, help: "Tasks enqueued by this process.", labelNames: ["name", "queue"], registers });
  const started = new Counter({ name: `${p}tasks_started_total`, help: "Attempts started by this process's workers.", labelNames: ["name", "queue"], registers });
  const finished = new Counter({
    name: `${p}tasks_finished_total`,
    help: "Tasks this process's workers finished for good, by outcome (succeeded, failed).",
    labelNames: ["name", "queue", "outcome"],
    registers,
  });
  const retries = new Counter({ name: `${p}task_retries_total`, help: "Attempts that failed and were scheduled to run again.", labelNames: ["name", "queue"], registers });
  const rescued = new Counter({
    name: `${p}tasks_rescued_total`,
    help: "Tasks whose lease lapsed (their worker died or was cut off), found by this process's rescuer: requeued, or failed for good when out of attempts.",
    labelNames: ["outcome"],
    registers,
  });
  const duration = new Histogram({
    name: `${p}task_duration_seconds`,
    help: "Handler run time of each attempt, by outcome (succeeded, failed, retried).",
    labelNames: ["name", "queue", "outcome"],
    buckets: options.durationBuckets ?? DEFAULT_DURATION_BUCKETS,
    registers,
  });
  const wait = new Histogram({
    name: `${p}task_wait_seconds`,
    help: "Time from a task's run_at (enqueue, countdown or retry time) to the start of its attempt, on the database's clock.",
    labelNames: ["queue"],
    buckets: options.waitBuckets ?? DEFAULT_WAIT_BUCKETS,
    registers,
  });
  const claims = new Histogram({ name: `${p}claim_batch_size`, help: "Tasks taken per claim that found work.", labelNames: ["queue"], buckets: CLAIM_BUCKETS, registers });
  const handedOff = new Counter({ name: `${p}tasks_handed_off_total`, help: "Tasks an enqueue handed to an idle worker of this process, already claimed (no claim round trip).", labelNames: ["queue"], registers });

  // The process's own state, read at scrape time.
  const workers = new Set<Worker>();
  new Gauge({
    name: `${p}worker_tasks`,
    help: "Tasks held by this process's workers: running (a handler is on it), buffered (claimed, not started), acks_pending (finished, outcome not yet written).",
    labelNames: ["state"],
    registers,
    collect() {
      let running = 0;
      let buffered = 0;
      let acks = 0;
      for (const w of workers) {
        const s = w.stats();
        running += s.running;
        buffered += s.buffered;
        acks += s.pendingAcks;
      }
      this.set({ state: "running" }, running);
      this.set({ state: "buffered" }, buffered);
      this.set({ state: "acks_pending" }, acks);
    },
  });
  new Gauge({
    name: `${p}worker_concurrency`,
    help: "Handler slots of this process's running workers.",
    registers,
    collect() {
      let n = 0;
      for (const w of workers) n += w.concurrency;
      this.set(n);
    },
  });
  new Gauge({
    name: `${p}pool_connections`,
    help: "The pgjobs pool's connections: total open, idle, and callers waiting for one.",
    labelNames: ["state"],
    registers,
    collect() {
      this.set({ state: "total" }, jobs.pool.totalCount);
      this.set({ state: "idle" }, jobs.pool.idleCount);
      this.set({ state: "waiting" }, jobs.pool.waitingCount);
    },
  });
  // Event-loop delay: a handler that blocks the loop delays every other task of the process,
  // its heartbeats (and so its leases) included.
  const eld: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  new Gauge({
    name: `${p}event_loop_lag_seconds`,
    help: "Event-loop delay since the previous scrape (perf_hooks.monitorEventLoopDelay), by statistic: mean, p50, p99, max.",
    labelNames: ["stat"],
    registers,
    collect() {
      const ns = (v: number) => (Number.isFinite(v) ? v / 1e9 : 0);
      if (eld.count > 0) {
        this.set({ stat: "mean" }, ns(eld.mean));
        this.set({ stat: "p50" }, ns(eld.percentile(50)));
        this.set({ stat: "p99" }, ns(eld.percentile(99)));
        this.set({ stat: "max" }, ns(eld.max));
      }
      eld.reset();
    },
  });

  // Per-queue numbers from SQL, cached.
  let cache: { at: number; status: Status | null } | null = null;
  let inFlight: Promise<void> | null = null;
  const queueGauges: Gauge[] = [];
  const refresh = (): Promise<void> => {
    if (cache && performance.now() - cache.at < ttlMs) return Promise.resolve();
    inFlight ??= status(jobs)
      .then(
        (s) => (cache = { at: performance.now(), status: s }),
        (err: Error) => {
          // A scrape must not fail because the database is away: keep the last numbers, say so.
          jobs.log.warn({ err: err.message }, "metrics: reading queue counts failed");
          statsErrors.inc();
          cache = { at: performance.now(), status: cache?.status ?? null };
        },
      )
      .then(() => {
        inFlight = null;
        const s = cache?.status;
        if (!s) return;
        for (const g of queueGauges) g.reset();
        for (const q of s.queues) {
          for (const st of STATES) queueTasks.set({ queue: q.queue, state: st }, q[st]);
          queueOldest.set({ queue: q.queue }, q.oldest_ready_s ?? 0);
        }
        const served = new Map<string, number>();
        // Registered but silent for a minute: dead or cut off, not serving (rows linger for an hour).
        for (const w of s.workers) if (w.heartbeat_age_s < 60) for (const q of w.queues) served.set(q, (served.get(q) ?? 0) + 1);
        for (const q of s.queues) if (!served.has(q.queue)) served.set(q.queue, 0);
        for (const [q, n] of served) queueWorkers.set({ queue: q }, n);
      });
    return inFlight;
  };
  const queueStatsOn = options.queueStats ?? true;
  // Each of these metrics waits for the (shared, cached) read before it is serialised: prom-client
  // collects a scrape's metrics concurrently.
  const collectQueues = queueStatsOn ? { collect: () => refresh() } : {};
  const statsErrors = new Counter({
    name: `${p}queue_stats_errors_total`,
    help: "Scrapes whose per-queue counts could not be read from the database (the last numbers were served).",
    registers,
    ...collectQueues,
  });
  const queueTasks = new Gauge({
    name: `${p}queue_tasks`,
    help: "Tasks per queue and state, from SQL (scheduled = pending or retrying), shared by all workers.",
    labelNames: ["queue", "state"],
    registers,
    ...collectQueues,
  });
  const queueOldest = new Gauge({
    name: `${p}queue_oldest_ready_age_seconds`,
    help: "Age of the oldest ready task of each queue (now - run_at), 0 when none is ready.",
    labelNames: ["queue"],
    registers,
    ...collectQueues,
  });
  const queueWorkers = new Gauge({
    name: `${p}queue_workers`,
    help: "Live workers serving each queue (a heartbeat within the last minute).",
    labelNames: ["queue"],
    registers,
    ...collectQueues,
  });
  queueGauges.push(queueTasks, queueOldest, queueWorkers);
  if (!queueStatsOn) for (const n of ["queue_tasks", "queue_oldest_ready_age_seconds", "queue_workers", "queue_stats_errors_total"]) registry.removeSingleMetric(p + n);
  // Standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes...), unprefixed, so
  // the usual Node.js dashboards work.
  if (options.processMetrics) collectDefaultMetrics({ register: registry });

  // Events. Durations of retried attempts come from the `started` time; succeeded and failed
  // carry the worker's own measurement.
  const openAttempts = new Map<string, number>();
  const key = (e: { id: string; attempt: number }) => `${e.id}:${e.attempt}`;
  const took = (e: { id: string; attempt: number; durationMs?: number }): number | undefined => {
    const t0 = openAttempts.get(key(e));
    openAttempts.delete(key(e));
    if (typeof e.durationMs === "number") return e.durationMs / 1000;
    return t0 === undefined ? undefined : (performance.now() - t0) / 1000;
  };
  const listeners = {
    enqueued: (e: { name: string; queue: string }) => enqueued.inc({ name: e.name, queue: e.queue }),
    started: (e: { id: string; name: string; queue: string; attempt: number }) => {
      started.inc({ name: e.name, queue: e.queue });
      if (openAttempts.size >= MAX_OPEN_ATTEMPTS) openAttempts.delete(openAttempts.keys().next().value!);
      openAttempts.set(key(e), performance.now());
    },
    succeeded: (e: { id: string; name: string; queue: string; attempt: number; durationMs: number }) => {
      finished.inc({ name: e.name, queue: e.queue, outcome: "succeeded" });
      duration.observe({ name: e.name, queue: e.queue, outcome: "succeeded" }, took(e)!);
    },
    failed: (e: { id: string; name: string; queue: string; attempt: number; durationMs: number }) => {
      finished.inc({ name: e.name, queue: e.queue, outcome: "failed" });
      duration.observe({ name: e.name, queue: e.queue, outcome: "failed" }, took(e)!);
    },
    retrying: (e: { id: string; name: string; queue: string; attempt: number; durationMs?: number }) => {
      retries.inc({ name: e.name, queue: e.queue });
      const s = took(e);
      if (s !== undefined) duration.observe({ name: e.name, queue: e.queue, outcome: "retried" }, s);
    },
  };
  for (const [event, fn] of Object.entries(listeners)) jobs.on(event as "enqueued", fn as never);
  const hook: JobsHook = {
    aroundAttempt(info, _headers, run) {
      wait.observe({ queue: info.queue }, Math.max(0, (info.claimedAt.getTime() - info.runAt.getTime()) / 1000));
      return run();
    },
  };
  const removeHook = jobs.addHook(hook);

  const workerListeners = new Map<Worker, {
    claimed: (e: { queue: string; count: number }) => void;
    handedOff: (e: { queue: string }) => void;
    rescued: (e: { ids: string[]; failed: string[] }) => void;
    stopped: () => void;
  }>();
  const observeWorker = (w: Worker) => {
    if (workerListeners.has(w) || closed) return;
    const l = {
      claimed: (e: { queue: string; count: number }) => claims.observe({ queue: e.queue }, e.count),
      handedOff: (e: { queue: string }) => handedOff.inc({ queue: e.queue }),
      rescued: (e: { ids: string[]; failed: string[] }) => {
        const failedN = e.failed.length;
        if (e.ids.length - failedN > 0) rescued.inc({ outcome: "requeued" }, e.ids.length - failedN);
        if (failedN > 0) rescued.inc({ outcome: "failed" }, failedN);
      },
      stopped: () => workers.delete(w),
    };
    workerListeners.set(w, l);
    workers.add(w);
    w.on("claimed", l.claimed);
    w.on("handedOff", l.handedOff);
    // "rescued" is declared by newer workers only; listening to an event never emitted is harmless.
    (w as unknown as { on(e: string, f: (x: { ids: string[]; failed: string[] }) => void): void }).on("rescued", l.rescued);
    w.on("stopped", l.stopped);
  };
  // Observe workers created from now on. jobs.worker() is wrapped on this instance only, until
  // the Jobs emits an event for new workers (see docs/observability.md).
  const ownWorker = Object.prototype.hasOwnProperty.call(jobs, "worker") ? (jobs as { worker: Jobs["worker"] }).worker : undefined;
  const wrapped: Jobs["worker"] = function (this: Jobs, ...args: Parameters<Jobs["worker"]>) {
    const w = (ownWorker ?? Object.getPrototypeOf(jobs).worker).apply(jobs, args) as Worker;
    observeWorker(w);
    return w;
  };
  (jobs as { worker: Jobs["worker"] }).worker = wrapped;

  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const [event, fn] of Object.entries(listeners)) jobs.off(event as "enqueued", fn as never);
    removeHook();
    for (const [w, l] of workerListeners) {
      w.off("claimed", l.claimed);
      w.off("handedOff", l.handedOff);
      (w as unknown as { off(e: string, f: unknown): void }).off("rescued", l.rescued);
      w.off("stopped", l.stopped);
    }
    workerListeners.clear();
    workers.clear();
    if ((jobs as { worker: Jobs["worker"] }).worker === wrapped) {
      if (ownWorker) (jobs as { worker: Jobs["worker"] }).worker = ownWorker;
      else delete (jobs as { worker?: Jobs["worker"] }).worker;
    }
    eld.disable();
  };

  const metrics = () => registry.metrics();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    metrics().then(
      (text) => {
        res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (err: Error) => {
        res.writeHead(500, { "content-type": "text/plain" }).end(`pgjobs metrics: ${err.message}\n`);
      },
    );
  };

  return {
    registry,
    handler,
    metrics,
    observeWorker,
    invalidate: () => {
      cache = null;
    },
    close,
  };
}

/**
 * Serve `metrics` at http://host:port/metrics (and /) until `close()`. Port 0 picks a free port
 * (read it from `port`).
 *
 * ```ts
 * const server = await serveMetrics(createMetrics(jobs), { port: 9464 });
 * // ... on shutdown:
 * await server.close();
 * ```
 */
export async function serveMetrics(
  metrics: Pick<Metrics, "handler">,
  options: { port: number; host?: string },
): Promise<{ port: number; host: string; url: string; server: Server; close(): Promise<void> }> {
  const host = options.host ?? "0.0.0.0";
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics" || path === "/") return metrics.handler(req, res);
    res.writeHead(404, { "content-type": "text/plain" }).end("pgjobs: metrics are at /metrics\n");
  });
  // A scrape is one request: do not keep idle sockets open past it.
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : options.port;
  const shownHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return {
    port,
    host,
    url: `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${port}/metrics`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Parse `--metrics-port`: "9464" (all interfaces) or "127.0.0.1:9464". A worker process of a
 * prefork pool (PGJOBS_WORKER_SLOT=k) serves on port + k, so each process can be scraped.
 */
export function parseMetricsAddress(value: string, slot = Number(process.env.PGJOBS_WORKER_SLOT ?? 0)): { host: string; port: number } {
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    throw new InvalidInputError(`--metrics-port ${JSON.stringify(value)} is not a port: pass a port (9464) or host:port (127.0.0.1:9464)`);
  }
  const host = m[1] ? m[1].replace(/^\[|\]$/g, "") : "0.0.0.0";
  return { host, port: port === 0 ? 0 : port + (Number.isInteger(slot) && slot > 0 ? slot : 0) };
}

/**
 * What `pgjobs worker --metrics-port` does: load the app (the same module instance the worker
 * then loads), create its metrics, and serve them. Call before the worker is created.
 */
export async function startWorkerMetrics(app: string, address: string): Promise<{ url: string; close(): Promise<void> }> {
  const { host, port } = parseMetricsAddress(address);
  const { loadApp } = await import("./app.js");
  const jobs = await loadApp(app);
  const metrics = createMetrics(jobs, { processMetrics: true });
  let server: Awaited<ReturnType<typeof serveMetrics>>;
  try {
    server = await serveMetrics(metrics, { host, port });
  } catch (err) {
    metrics.close();
    const code = (err as { code?: string }).code;
    throw new InvalidInputError(
      `--metrics-port ${address}: cannot listen on ${host}:${port} (${code ?? (err as Error).message})${code === "EADDRINUSE" ? ": another process uses that port; pick another" : ""}`,
    );
  }
  jobs.log.info({ url: server.url }, "serving Prometheus metrics");
  return {
    url: server.url,
    close: async () => {
      metrics.close();
      await server.close();
    },
  };
}
