// pgjobs adapter for the peers harness (../shared/peers, bench.mjs / suite.mjs), public API only:
// createJobs / migrate / task / delay / enqueueMany / worker. It imports this repository's build
// (dist/src/index.js, relative to this file), so `npx tsc -p tsconfig.json` first.
//
// Like the peers' adapters, producing and working use two instances on the same database (a
// producer process and a worker process in a deployment): the producer's pool is pgjobs' default
// (10); the worker's pool is max(10, N + 2), the number both peers' workers get.
//
// Knobs set (everything else is the library default: poll 2 s, lease 15 s, prefetch (0 before
// 9f0702e, "auto" since), batchSize = concurrency + prefetch, batched acknowledgements,
// LISTEN/NOTIFY wake-up always on):
//   "default"    worker({ queues: ["default"], concurrency: N })
//   "prefetch"   worker({ queues: ["default"], concurrency: N, prefetch: N })
//                (always claims up to N ahead, like graphile-worker's localQueue; a side check)
// Retention: finished tasks are kept (state 'succeeded' with their result), as pg-boss keeps them.
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { pino } from "pino";
import { createJobs } from "../dist/src/index.js";

const version = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version;

// "prefetch" is a side check (like graphile-worker's batched-2n): run it with --variant prefetch.
export const variants = ["default"];
const KNOWN = ["default", "prefetch"];

export default function createAdapter({ variant = "default", onLog = () => {} } = {}) {
  if (!KNOWN.includes(variant)) throw new Error(`pgjobs: unknown variant ${variant}`);
  // pgjobs logs through pino: keep warnings and errors (level >= 40) for the harness.
  const logger = pino(
    { level: "warn" },
    new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split("\n")) {
          if (!line) continue;
          try {
            const o = JSON.parse(line);
            onLog(o.level >= 50 ? "error" : "warning", `${o.msg}${o.err ? `: ${typeof o.err === "string" ? o.err : o.err.message}` : ""}`);
          } catch {
            onLog("warning", line);
          }
        }
        done();
      },
    }),
  );
  const workerOpts = (concurrency) => ({
    queues: ["default"],
    concurrency,
    ...(variant === "prefetch" ? { prefetch: concurrency } : {}),
  });
  const poolSize = (concurrency) => Math.max(10, concurrency + 2);
  let url, producer, noop;
  const workers = [];
  return {
    name: "pgjobs",
    variant,
    version,
    knobs: (concurrency) => ({ producer: { pool: "default (10)" }, workerPool: poolSize(concurrency), worker: workerOpts(concurrency) }),

    async setup(dbUrl) {
      url = dbUrl;
      producer = createJobs({ connectionString: dbUrl, logger });
      await producer.migrate();
      // Empty the queue so a reused database starts clean (a fresh one is already empty).
      await producer.pool.query("truncate jobs.tasks");
      noop = producer.task("noop", async () => null);
    },

    enqueueOne: (payload) => noop.delay(payload),
    enqueueBatch: (payloads) => producer.enqueueMany(payloads.map((p) => noop.s(p))),

    async startWorker({ concurrency, handler }) {
      const jobs = createJobs({ connectionString: url, logger, poolSize: poolSize(concurrency) });
      jobs.task("noop", async (_ctx, payload) => {
        await handler(payload);
        return null;
      });
      const worker = jobs.worker(workerOpts(concurrency));
      workers.push(jobs);
      await worker.start();
      return async () => {
        await worker.stop();
        await jobs.close();
      };
    },

    // pending: every task not succeeded (ready, running, retrying, failed, ...); pgjobs keeps
    // finished tasks, so completed is counted from the table.
    async counts(query) {
      const [r] = await query(`select count(*) filter (where state = 'succeeded')::int as completed,
          count(*) filter (where state <> 'succeeded')::int as pending,
          count(*) filter (where state = 'failed')::int as failed
        from jobs.tasks`);
      return r;
    },

    async teardown() {
      for (const j of workers) await j.close();
      await producer?.close();
    },
  };
}
