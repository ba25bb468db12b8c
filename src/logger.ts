import { pino } from "pino";

/** The structured logger pgjobs uses (pino): fields first, message second. */
export type Logger = pino.Logger;

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? "pgjobs",
    level: options.level ?? process.env.PGJOBS_LOG_LEVEL ?? "info",
  });
}

/** What a task handler gets as ctx.log: message first, as in Celery's logger, tagged with the task. */
export interface TaskLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export function taskLogger(base: Logger, task: { id: string; name: string; attempt: number }): TaskLogger {
  let child: Logger | null = null;
  const get = () => (child ??= base.child({ taskId: task.id, task: task.name, attempt: task.attempt }));
  return {
    debug: (m, f) => get().debug(f ?? {}, m),
    info: (m, f) => get().info(f ?? {}, m),
    warn: (m, f) => get().warn(f ?? {}, m),
    error: (m, f) => get().error(f ?? {}, m),
  };
}
