/**
 * Errors a user can hit. Each message says what went wrong and what to do, in one line.
 */
export class PgJobsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PgJobsError";
  }
}

/** Bad input refused before anything was written. */
export class InvalidInputError extends PgJobsError {
  constructor(message: string) {
    super(message);
    this.name = "InvalidInputError";
  }
}

/** `AsyncResult.get()` gave up waiting. */
export class TimeoutError extends PgJobsError {
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/** The error a failed task recorded, re-raised in the process that waits for its result. */
export class TaskFailedError extends PgJobsError {
  readonly taskId: string;
  readonly taskName: string;
  /** The recorded error's own name, message and stack, as the handler threw it. */
  override readonly cause: { name: string; message: string; stack?: string; [k: string]: unknown };
  constructor(taskName: string, taskId: string, cause: TaskFailedError["cause"]) {
    super(`task ${taskName} (id ${taskId}) failed: ${cause.name}: ${cause.message}`);
    this.name = "TaskFailedError";
    this.taskId = taskId;
    this.taskName = taskName;
    this.cause = cause;
    if (cause.stack) this.stack = `${this.name}: ${this.message}\n--- recorded stack ---\n${cause.stack}`;
  }
}

/** Turn anything a handler threw into the JSON the tasks table keeps in `error`. */
/** jsonb cannot hold U+0000; an error message may. Written out as the text "\u0000". */
const noNul = (s: string): string => (s.includes("\u0000") ? s.replaceAll("\u0000", "\\u0000") : s);

export function serializeError(err: unknown): { name: string; message: string; stack?: string } {
  const out = serializeErrorRaw(err);
  const clean: typeof out & { code?: unknown } = { ...out, name: noNul(out.name), message: noNul(out.message) };
  if (out.stack !== undefined) clean.stack = noNul(out.stack);
  const code = (out as { code?: unknown }).code;
  if (typeof code === "string") clean.code = noNul(code);
  return clean;
}

function serializeErrorRaw(err: unknown): { name: string; message: string; stack?: string } {
  if (err instanceof Error) {
    const out: { name: string; message: string; stack?: string; [k: string]: unknown } = {
      name: err.name || "Error",
      message: err.message,
    };
    if (err.stack) out.stack = err.stack;
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" || typeof code === "number") out.code = code;
    return out;
  }
  let message: string;
  try {
    message = typeof err === "string" ? err : JSON.stringify(err) ?? String(err);
  } catch {
    message = String(err);
  }
  return { name: "NonErrorThrown", message };
}
