// A pgjobs worker in its own process, driven by the bench runner over IPC (child_process.fork).
// It runs the no-op (or sleeping) task, records which payload indexes it ran, and reports
// progress, CPU and RSS, so drains with several processes and the 1M backlog can be measured
// and verified exactly-once across processes.
//
//   parent -> child  { t: "start" }            start the worker (the timed window begins)
//                    { t: "stop" }             stop the worker, close, send "final", exit
//   child -> parent  { t: "loaded" }           ready to start (pool not used yet)
//                    { t: "progress", ... }    every progressMs: finished count, CPU, RSS
//                    { t: "final", ... }       invocations, duplicates, the started bitmap
import { performance } from "node:perf_hooks";
import { createJobs } from "../src/index.js";
import { instrumentPool, round, sleep, statsObject } from "./common.js";

export interface WorkerProcConfig {
  url: string;
  n: number;
  concurrency: number;
  /** Not given: the library's default. */
  prefetch?: number | "auto";
  batchSize?: number;
  workMs: number;
  progressMs: number;
  poolSize: number;
  profile: boolean;
  /** WorkerOptions.vacuum (the worker VACUUMs the tasks table when dead tuples pile up). */
  vacuum: boolean;
}

export interface Progress {
  t: "progress";
  finished: number;
  cpu_s: number;
  rss_mb: number;
  heap_mb: number;
  /** Acknowledgements handed to the finisher and not yet landed (worker.stats().pendingAcks). */
  pending_acks: number;
  /** performance.timeOrigin + now(), so the parent can place it on its own clock. */
  at: number;
}

export interface Final {
  t: "final";
  invocations: number;
  duplicates: number;
  out_of_range: number;
  finished: number;
  rss_max_mb: number;
  heap_max_mb: number;
  pending_acks_max: number;
  started_b64: string;
  statements?: Record<string, unknown>;
  events: { claimed_calls: number; claimed_rows: number; stale: number; errors: number };
}

const cfg = JSON.parse(process.argv[2]!) as WorkerProcConfig;
const send = (m: unknown) => process.send!(m);

const jobs = createJobs({ connectionString: cfg.url, logLevel: "warn", poolSize: cfg.poolSize });
const stats = cfg.profile ? instrumentPool(jobs.pool) : null;
const started = new Uint8Array(cfg.n);
let invocations = 0;
let duplicates = 0;
let outOfRange = 0;
let finished = 0;
jobs.task("noop", async (_ctx, p: { i: number }) => {
  invocations++;
  const i = p?.i;
  if (!(i >= 0 && i < cfg.n)) {
    outOfRange++;
    return null;
  }
  if (started[i]++) duplicates++;
  if (cfg.workMs) await sleep(cfg.workMs);
  finished++;
  return null;
});
const worker = jobs.worker({
  queues: ["default"],
  concurrency: cfg.concurrency,
  ...(cfg.prefetch !== undefined ? { prefetch: cfg.prefetch } : {}),
  ...(cfg.batchSize ? { batchSize: cfg.batchSize } : {}),
  vacuum: cfg.vacuum,
});
const events = { claimed_calls: 0, claimed_rows: 0, stale: 0, errors: 0 };
worker.on("claimed", ({ count }) => {
  events.claimed_calls++;
  events.claimed_rows += count;
});
worker.on("stale", () => events.stale++);
worker.on("error", () => events.errors++);

let cpu0 = process.cpuUsage();
let rssMax = 0;
let heapMax = 0;
let acksMax = 0;
let timer: NodeJS.Timeout | undefined;
const progress = (): Progress => {
  const c = process.cpuUsage(cpu0);
  const rss = process.memoryUsage.rss() / 2 ** 20;
  const heap = process.memoryUsage().heapUsed / 2 ** 20;
  rssMax = Math.max(rssMax, rss);
  const pendingAcks = worker.stats().pendingAcks;
  acksMax = Math.max(acksMax, pendingAcks);
  heapMax = Math.max(heapMax, heap);
  return { t: "progress", finished, cpu_s: (c.user + c.system) / 1e6, rss_mb: round(rss, 1)!, heap_mb: round(heap, 1)!, pending_acks: pendingAcks, at: performance.timeOrigin + performance.now() };
};

process.on("message", async (m: { t: string }) => {
  if (m.t === "start") {
    cpu0 = process.cpuUsage();
    timer = setInterval(() => send(progress()), cfg.progressMs);
    await worker.start();
  } else if (m.t === "stop") {
    clearInterval(timer);
    send(progress());
    await worker.stop();
    await jobs.close();
    const final: Final = {
      t: "final",
      invocations,
      duplicates,
      out_of_range: outOfRange,
      finished,
      rss_max_mb: round(rssMax, 1)!,
      heap_max_mb: round(heapMax, 1)!,
      pending_acks_max: acksMax,
      started_b64: Buffer.from(started.buffer).toString("base64"),
      events,
      ...(stats ? { statements: statsObject(stats) } : {}),
    };
    // A large message (the 1M bitmap) must be flushed before the channel closes.
    process.send!(final, () => process.disconnect());
  }
});
send({ t: "loaded" });
