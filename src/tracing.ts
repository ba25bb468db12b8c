/**
 * OpenTelemetry traces through the standard API package, `@opentelemetry/api` (an optional peer
 * dependency): a producer span when a task (or a canvas) is enqueued, a consumer span around
 * each attempt, linked by W3C trace context carried in the task's `headers`.
 *
 * How a trace is shaped:
 * - `send <task>` (PRODUCER) is a child of whatever span is active where the task was enqueued
 *   (an HTTP request's span, or the consumer span of the task that enqueued it).
 * - `process <task>` (CONSUMER), one per attempt, is a child of that producer span: a retried
 *   task shows its attempts side by side under one producer.
 * - A canvas (chain, group, chord) is one enqueue, so one producer span (`send canvas`). Its
 *   later steps and a chord's callback are enqueued by the database trigger with the headers of
 *   the task that finished, which carry that same trace context: every step, member and callback
 *   is a child of the canvas's producer span, in the same trace. (The trigger runs in SQL, where
 *   no span exists to be a parent; the steps' order shows in their start times and in the
 *   `pgjobs.task.parent_id` links of the rows.)
 * - Tasks a handler enqueues get producer spans under that handler's consumer span, so a trace
 *   follows a request into its task and on into the tasks that task started.
 *
 * Without an SDK (no tracer provider registered), the API hands out non-recording spans: nothing
 * is recorded, headers are left as they are, and the cost is a couple of function calls per
 * enqueue and attempt. Without `@opentelemetry/api` installed, `instrumentTracing` adds nothing.
 *
 * ```ts
 * import { instrumentTracing } from "pgjobs";
 * const jobs = createJobs({ connectionString: process.env.DATABASE_URL });
 * await instrumentTracing(jobs);   // after (or before) your OpenTelemetry SDK starts
 * ```
 */
import { readFileSync } from "node:fs";
import type * as OtelApi from "@opentelemetry/api";
import type { Jobs } from "./client.js";
import type { Headers } from "./context.js";
import type { JobsHook } from "./hooks.js";
import { PACKAGE_ROOT } from "./sql.js";

type Api = typeof OtelApi;

export interface TracingOptions {
  /** A tracer provider to use instead of the global one (`trace.getTracerProvider()`). */
  tracerProvider?: { getTracer(name: string, version?: string): unknown };
  /**
   * How to load `@opentelemetry/api`: the module itself, or a loader. Default: a dynamic import
   * that tolerates the package's absence. (Bundlers that cannot see dynamic imports pass it.)
   */
  api?: unknown | (() => Promise<unknown>);
}

export interface Tracing {
  /** False when `@opentelemetry/api` could not be loaded: nothing was added. */
  readonly enabled: boolean;
  /** Remove the hooks. Idempotent. */
  remove(): void;
}

/** Attempts whose end we never saw (cancelled, stale acknowledgements) are ended past this. */
const MAX_OPEN_SPANS = 10_000;

let version = "0.0.0";
try {
  version = (JSON.parse(readFileSync(`${PACKAGE_ROOT}package.json`, "utf8")) as { version: string }).version;
} catch {
  // A package without its package.json still traces; the tracer's version is only a label.
}

async function loadApi(api: TracingOptions["api"]): Promise<Api | null> {
  try {
    const mod = typeof api === "function" ? await (api as () => Promise<unknown>)() : (api ?? (await import("@opentelemetry/api")));
    const m = mod as Api & { default?: Api };
    const resolved = typeof m.trace?.getTracer === "function" ? m : m.default;
    return resolved && typeof resolved.trace?.getTracer === "function" ? resolved : null;
  } catch {
    return null;
  }
}

/**
 * Trace `jobs`' enqueues and attempts with OpenTelemetry (see the module comment for the shape
 * of a trace). Resolves with `{ enabled: false }` when `@opentelemetry/api` is not installed.
 *
 * ```ts
 * const tracing = await instrumentTracing(jobs);
 * // ... later, to stop tracing:
 * tracing.remove();
 * ```
 */
export async function instrumentTracing(jobs: Jobs, options: TracingOptions = {}): Promise<Tracing> {
  const api = await loadApi(options.api);
  if (!api) {
    jobs.log.debug("tracing: @opentelemetry/api is not installed; pgjobs records no spans");
    return { enabled: false, remove() {} };
  }
  const { trace, context, propagation, SpanKind, SpanStatusCode, ROOT_CONTEXT } = api;
  const tracer = ((options.tracerProvider as OtelApi.TracerProvider | undefined) ?? trace).getTracer("pgjobs", version);

  const hook: JobsHook = {
    beforeEnqueue({ names, queues, headers }) {
      const single = names.length === 1;
      const span = tracer.startSpan(single ? `send ${names[0]}` : "send canvas", {
        kind: SpanKind.PRODUCER,
        attributes: {
          "messaging.system": "pgjobs",
          "messaging.operation.type": "send",
          "messaging.operation.name": "send",
          ...(queues.length === 1 ? { "messaging.destination.name": queues[0] } : {}),
          ...(single ? { "pgjobs.task.name": names[0] } : { "pgjobs.task.names": names }),
        },
      });
      const sc = span.spanContext();
      // No SDK: a non-recording span with an invalid context. Leave the headers alone.
      if (!span.isRecording() && !trace.isSpanContextValid(sc)) return;
      const carrier: Record<string, unknown> = { ...headers };
      // A handler's headers arrive in its children's: replace the parent's trace context.
      delete carrier.traceparent;
      delete carrier.tracestate;
      propagation.inject(trace.setSpan(context.active(), span), carrier);
      // pgjobs' own traces must link whatever propagator the app configured (or none): W3C
      // trace context is written when the global propagator wrote nothing.
      if (typeof carrier.traceparent !== "string" && trace.isSpanContextValid(sc)) carrier.traceparent = formatTraceparent(sc);
      span.end();
      return carrier as Headers;
    },

    aroundAttempt(info, headers, run) {
      let parent = propagation.extract(ROOT_CONTEXT, headers);
      if (!trace.getSpanContext(parent) && typeof headers.traceparent === "string") {
        const sc = parseTraceparent(headers.traceparent);
        if (sc) parent = trace.setSpanContext(parent, sc);
      }
      const span = tracer.startSpan(
        `process ${info.name}`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            "messaging.system": "pgjobs",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": info.queue,
            "messaging.message.id": info.id,
            "pgjobs.task.name": info.name,
            "pgjobs.task.attempt": info.attempt,
            "pgjobs.task.max_attempts": info.maxAttempts,
            "pgjobs.task.wait_ms": Math.max(0, info.claimedAt.getTime() - info.runAt.getTime()),
            "pgjobs.worker.id": info.workerId,
          },
        },
        parent,
      );
      if (!span.isRecording()) return context.with(trace.setSpan(parent, span), run);
      const key = `${info.id}:${info.attempt}`;
      if (open.size >= MAX_OPEN_SPANS) {
        const [oldest, s] = open.entries().next().value!;
        open.delete(oldest);
        s.end();
      }
      open.set(key, span);
      return context.with(trace.setSpan(parent, span), async () => {
        try {
          return await run();
        } catch (err) {
          if (open.delete(key)) {
            span.recordException(err as Error);
            span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
            span.end();
          }
          throw err;
        } finally {
          if (open.delete(key)) span.end();
        }
      });
    },
  };

  // A handler that ignores its signal outlives its timeout: the worker fails the attempt while
  // run() never settles. The attempt's span ends with the worker's verdict then.
  const open = new Map<string, OtelApi.Span>();
  const onFailure = (e: { id: string; attempt: number; error: { name: string; message: string } }) => {
    const span = open.get(`${e.id}:${e.attempt}`);
    if (!span) return;
    open.delete(`${e.id}:${e.attempt}`);
    span.recordException({ name: e.error.name, message: e.error.message });
    span.setStatus({ code: SpanStatusCode.ERROR, message: `${e.error.name}: ${e.error.message}` });
    span.end();
  };
  jobs.on("failed", onFailure);
  jobs.on("retrying", onFailure);
  const removeHook = jobs.addHook(hook);
  let removed = false;
  return {
    enabled: true,
    remove() {
      if (removed) return;
      removed = true;
      removeHook();
      jobs.off("failed", onFailure);
      jobs.off("retrying", onFailure);
    },
  };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function formatTraceparent(sc: OtelApi.SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & 1).toString(16)}`;
}

/** W3C traceparent, version 00 (https://www.w3.org/TR/trace-context/#traceparent-header). */
function parseTraceparent(value: string): OtelApi.SpanContext | null {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value.trim());
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return null;
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) & 1, isRemote: true };
}
