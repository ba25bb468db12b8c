/**
 * pgjobs: a Postgres-only job queue with Celery's workflow power and a SQL-first design.
 * This file is the whole public API.
 */
export { createJobs, Jobs, type JobsOptions } from "./client.js";
export type { Task, TaskContext, TaskOptions, ApplyOptions, Signature, SignatureOptions, Handler, Backoff } from "./task.js";
export { AsyncResult, type TaskRecord, type TaskState } from "./result.js";
export { Worker, type WorkerOptions, type WorkerEvents } from "./worker.js";
export type { JobsEvents, TaskEventInfo, AttemptInfo } from "./events.js";
export { context, type Headers } from "./context.js";
export { migrate, type MigrateOptions, type MigrateResult } from "./migrator.js";
export { PgJobsError, InvalidInputError, TimeoutError, TaskFailedError } from "./errors.js";
export type { Json } from "./json.js";
export type { Duration } from "./duration.js";
export type { DbLike } from "./db.js";
export { group, chain, chord, map, starmap, chunks, applyCanvas, Group, Chain, Chord, GroupResult, type Canvas, type CanvasResult, type ResultHandle } from "./canvas.js";
export type { BoundSignature, SignatureMethods, TailArgs } from "./task.js";
export { Scheduler, nextFireTimes, type ScheduleSpec, type SchedulerOptions, type MisfirePolicy, type ScheduleDefinition } from "./scheduler.js";
export { status, showTask, retryTask, cancelTask, purge, enqueueByName, checkEnqueue, type Status, type AdminTarget, type TaskDetails } from "./admin.js";
export type { JobsHook } from "./hooks.js";
export { createDashboard, serveDashboard, taskLogStream, type DashboardHandler, type DashboardOptions, type ServeDashboardOptions, type ServedDashboard, type TaskLogStream, type TaskLogStreamOptions } from "./dashboard/server.js";
export { createMetrics, serveMetrics, type Metrics, type MetricsOptions } from "./metrics.js";
export { instrumentTracing, type Tracing, type TracingOptions } from "./tracing.js";
export { doctor, DEFAULT_THRESHOLDS, type DoctorReport, type DoctorCheck, type DoctorThresholds, type DoctorOptions, type Verdict } from "./doctor.js";
