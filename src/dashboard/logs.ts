/**
 * Keep task handlers' log lines in the database, for the dashboard's task page: a pino
 * destination that takes the lines carrying a `taskId` (every `ctx.log` line does) and writes
 * them to `<schema>.task_logs` in batches. Opt-in, next to wherever the log goes already:
 *
 * ```ts
 * import { pino } from "pino";
 * const logs = taskLogStream({ connectionString: process.env.DATABASE_URL });
 * const jobs = createJobs({
 *   connectionString: process.env.DATABASE_URL,
 *   logger: pino({ level: "info" }, pino.multistream([{ stream: process.stdout }, { stream: logs }])),
 * });
 * // at shutdown, after jobs.close(): await logs.close();
 * ```
 *
 * A line that cannot be written (the database is away) is dropped after a warning on stderr:
 * the log is diagnostics, and a worker must not block or grow without bound because of it.
 */
import { Writable } from "node:stream";
import pg from "pg";
import { runPrepared } from "../db.js";
import { toMs, type Duration } from "../duration.js";
import { validateSchema } from "../identifiers.js";
import { statement } from "../sql.js";

export interface TaskLogStreamOptions {
  pool?: pg.Pool;
  connectionString?: string;
  schema?: string;
  /** Lowest pino level kept: 10 trace, 20 debug, 30 info (default), 40 warn, 50 error. */
  level?: number;
  /** How often lines are written. Default 500 ms. */
  flushInterval?: Duration;
  /** Lines older than this are deleted (checked once a minute). Default 7 days, as a worker's retention. */
  retention?: Duration;
  /** Longest message kept, in characters. Default 4000. */
  maxMessageLength?: number;
}

export interface TaskLogStream extends Writable {
  /** Write what is buffered now. */
  flush(): Promise<void>;
  /** Flush, stop the timers, and end the pool if the stream created it. Idempotent. */
  close(): Promise<void>;
}

interface Line {
  taskId: string;
  attempt: number | null;
  at: string;
  level: number;
  message: string;
  fields: string;
}

/** Keys pino and the task logger add to every line: not worth storing again as fields. */
const STANDARD = new Set(["level", "time", "msg", "pid", "hostname", "name", "taskId", "task", "attempt", "v"]);
const MAX_BUFFERED = 10_000;
const BATCH = 1_000;

export function taskLogStream(options: TaskLogStreamOptions): TaskLogStream {
  const schema = validateSchema(options.schema ?? "jobs");
  const ownsPool = !options.pool;
  if (!options.pool && !options.connectionString) throw new Error("taskLogStream needs a pool or a connectionString");
  const pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString, max: 2 });
  if (ownsPool) pool.on("error", () => {});
  const minLevel = options.level ?? 30;
  const maxLen = options.maxMessageLength ?? 4_000;
  const retentionS = toMs(options.retention ?? "7d", "retention") / 1000;
  let buffer: Line[] = [];
  let pending = "";
  let flushing: Promise<void> = Promise.resolve();
  let dropped = 0;
  let lastPrune = 0;
  let closed: Promise<void> | null = null;

  const take = (text: string) => {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    const id = rec.taskId;
    if ((typeof id !== "string" && typeof id !== "number") || !/^\d{1,19}$/.test(String(id))) return;
    const level = typeof rec.level === "number" ? rec.level : 30;
    if (level < minLevel) return;
    if (buffer.length >= MAX_BUFFERED) {
      dropped++;
      return;
    }
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rec)) if (!STANDARD.has(k)) fields[k] = v;
    const msg = typeof rec.msg === "string" ? rec.msg : "";
    buffer.push({
      taskId: String(id),
      attempt: typeof rec.attempt === "number" ? rec.attempt : null,
      at: new Date(typeof rec.time === "number" ? rec.time : Date.now()).toISOString(),
      level,
      message: msg.length > maxLen ? `${msg.slice(0, maxLen)}…` : msg,
      fields: JSON.stringify(fields),
    });
    if (buffer.length >= BATCH) void stream.flush();
  };

  const writeBatch = async () => {
    while (buffer.length > 0) {
      const batch = buffer.slice(0, BATCH);
      buffer = buffer.slice(BATCH);
      try {
        await runPrepared(pool, statement(schema, "dashboard_task_log_add"), [
          batch.map((l) => l.taskId), batch.map((l) => l.attempt), batch.map((l) => l.at),
          batch.map((l) => l.level), batch.map((l) => l.message), batch.map((l) => l.fields),
        ]);
      } catch (err) {
        process.stderr.write(`pgjobs: dropped ${batch.length} task log lines: ${(err as Error).message}\n`);
      }
    }
    if (dropped > 0) {
      process.stderr.write(`pgjobs: dropped ${dropped} task log lines: more than ${MAX_BUFFERED} waiting to be written\n`);
      dropped = 0;
    }
    if (Date.now() - lastPrune > 60_000) {
      lastPrune = Date.now();
      await runPrepared(pool, statement(schema, "dashboard_task_log_prune"), [retentionS, 10_000]).catch(() => {});
    }
  };

  const stream = new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _enc, cb) {
      pending += typeof chunk === "string" ? chunk : chunk.toString("utf8");
      let i: number;
      while ((i = pending.indexOf("\n")) >= 0) {
        take(pending.slice(0, i));
        pending = pending.slice(i + 1);
      }
      cb();
    },
  }) as TaskLogStream;

  const timer = setInterval(() => void stream.flush(), toMs(options.flushInterval ?? 500, "flushInterval"));
  timer.unref();

  stream.flush = () => {
    flushing = flushing.then(writeBatch);
    return flushing;
  };
  stream.close = () =>
    (closed ??= (async () => {
      clearInterval(timer);
      if (pending.trim()) take(pending);
      pending = "";
      await stream.flush();
      stream.end();
      if (ownsPool) await pool.end();
    })());
  return stream;
}
