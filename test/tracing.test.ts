/**
 * Issue 10, traces: with the OpenTelemetry SDK's in-memory exporter, one trace holds the
 * enqueuing request's span, the producer span and each attempt's consumer span; a chain's steps,
 * a chord's members and callback, and a task's subtasks are in the same trace. Without an SDK
 * nothing is recorded and nothing fails; without the API package nothing is even added.
 *
 * The tests run in order: the first two before any SDK is registered in this process.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { chain, chord, type TaskContext } from "../src/index.js";
import { instrumentTracing } from "../src/tracing.js";
import { useDatabase } from "./helpers/db.js";
import { gate, openJobs, taskRow, waitFor } from "./fixtures/issue3-util.js";

const db = useDatabase();

test("without an SDK: nothing is recorded, headers are left alone, tasks run as before", async (t) => {
  const jobs = openJobs(db);
  const tracing = await instrumentTracing(jobs);
  assert.equal(tracing.enabled, true, "@opentelemetry/api is installed here");
  const child = jobs.task("t0_child", (_ctx: TaskContext, x: number) => x + 1, { queue: "t0" });
  const parent = jobs.task("t0_parent", async (_ctx: TaskContext, x: number) => (await child.delay(x)).get({ timeout: 10_000 }), { queue: "t0" });
  await jobs.worker({ queues: ["t0"], concurrency: 2 }).start();
  const r = await jobs.context.run({ tenant: "acme" }, () => parent.delay(41));
  assert.equal(await r.get({ timeout: 10_000 }), 42);
  const { rows } = await db.query("select name, headers from jobs.tasks where queue = 't0' order by id");
  assert.deepEqual(rows, [
    { name: "t0_parent", headers: { tenant: "acme" } },
    { name: "t0_child", headers: { tenant: "acme" } },
  ], "no traceparent written without an SDK; other headers travel as before");

  // What the hooks cost per enqueue and per attempt without an SDK (figures, not thresholds).
  const hook = jobs.hooks[0]!;
  const n = 100_000;
  let t0 = performance.now();
  for (let i = 0; i < n; i++) hook.beforeEnqueue!({ names: ["t0_child"], queues: ["t0"], headers: { tenant: "acme" } });
  const perEnqueue = ((performance.now() - t0) * 1000) / n;
  const info = { id: "1", name: "t0_child", queue: "t0", attempt: 1, maxAttempts: 4, workerId: "w", runAt: new Date(), claimedAt: new Date() };
  const run = () => Promise.resolve(null);
  t0 = performance.now();
  for (let i = 0; i < n; i++) await hook.aroundAttempt!(info, { tenant: "acme" }, run);
  const perAttempt = ((performance.now() - t0) * 1000) / n;
  t.diagnostic(`without an SDK: ${perEnqueue.toFixed(2)} µs per enqueue, ${perAttempt.toFixed(2)} µs per attempt (a bare awaited call included)`);
  tracing.remove();
});

test("without @opentelemetry/api: instrumentTracing adds nothing and says so", async () => {
  const jobs = openJobs(db);
  const tracing = await instrumentTracing(jobs, { api: () => import("@opentelemetry/not-installed" as string) });
  assert.equal(tracing.enabled, false);
  assert.equal(jobs.hooks.length, 0, "no hook added");
  tracing.remove();
  const add = jobs.task("t1_add", (_ctx: TaskContext, a: number, b: number) => a + b, { queue: "t1" });
  await jobs.worker({ queues: ["t1"] }).start();
  assert.equal(await (await add.delay(2, 2)).get({ timeout: 10_000 }), 4);
});

// From here on, an SDK is registered for this process.
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();
let registered = false;
function registerSdk(): void {
  if (registered) return;
  registered = true;
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
}
after(async () => {
  trace.disable();
  context.disable();
  propagation.disable();
  await provider.shutdown();
});

const tracer = () => trace.getTracer("pgjobs-test");
const spans = () => exporter.getFinishedSpans();
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const named = (name: string) => spans().filter((s) => s.name === name);
const one = (name: string) => {
  const found = named(name);
  assert.equal(found.length, 1, `one span named ${name}: ${spans().map((s) => s.name).join(", ")}`);
  return found[0]!;
};

test("one trace holds the request's span, the producer span and each attempt's consumer span", async () => {
  registerSdk();
  exporter.reset();
  const jobs = openJobs(db);
  await instrumentTracing(jobs);
  const flaky = jobs.task("t2_flaky", (ctx: TaskContext, order: number) => {
    if (ctx.attempt === 1) throw new Error(`payment service down for order ${order}`);
    return `charged ${order}`;
  }, { queue: "t2", backoff: { delay: 20 } });
  await jobs.worker({ queues: ["t2"] }).start();

  const r = await tracer().startActiveSpan("POST /orders", { kind: SpanKind.SERVER }, async (span) => {
    try {
      return await flaky.delay(7);
    } finally {
      span.end();
    }
  });
  assert.equal(await r.get({ timeout: 10_000 }), "charged 7");
  await waitFor("two consumer spans", () => named("process t2_flaky").length === 2);

  const request = one("POST /orders");
  const producer = one("send t2_flaky");
  const attempts = named("process t2_flaky").sort((a, b) => Number(a.attributes["pgjobs.task.attempt"]) - Number(b.attributes["pgjobs.task.attempt"]));
  const traceId = request.spanContext().traceId;
  for (const s of [producer, ...attempts]) assert.equal(s.spanContext().traceId, traceId, `${s.name} is in the request's trace`);
  assert.equal(producer.kind, SpanKind.PRODUCER);
  assert.equal(parentOf(producer), request.spanContext().spanId, "the producer span is the request's child");
  for (const a of attempts) {
    assert.equal(a.kind, SpanKind.CONSUMER);
    assert.equal(parentOf(a), producer.spanContext().spanId, "each attempt is the producer's child");
    assert.equal(a.attributes["messaging.message.id"], r.id);
    assert.equal(a.attributes["messaging.destination.name"], "t2");
    assert.equal(a.attributes["messaging.system"], "pgjobs");
  }
  assert.deepEqual(attempts.map((a) => a.attributes["pgjobs.task.attempt"]), [1, 2]);
  assert.equal(attempts[0]!.status.code, SpanStatusCode.ERROR);
  assert.match(attempts[0]!.status.message ?? "", /payment service down for order 7/);
  assert.equal(attempts[0]!.events[0]?.name, "exception");
  assert.equal(attempts[1]!.status.code, SpanStatusCode.UNSET);
  // The trace context is in the row, for anyone reading it with SQL.
  const row = await taskRow(db, r.id);
  assert.equal(row.headers.traceparent, `00-${traceId}-${producer.spanContext().spanId}-01`);
});

test("a chain's steps, a chord's members and callback, and subtasks stay in the request's trace", async () => {
  registerSdk();
  exporter.reset();
  const jobs = openJobs(db);
  await instrumentTracing(jobs);
  const step = jobs.task("t3_step", (_ctx: TaskContext, acc: string, s: string) => acc + s, { queue: "t3" });
  const square = jobs.task("t3_square", (_ctx: TaskContext, x: number) => x * x, { queue: "t3" });
  const sum = jobs.task("t3_sum", (_ctx: TaskContext, xs: number[]) => xs.reduce((a, b) => a + b, 0), { queue: "t3" });
  const leaf = jobs.task("t3_leaf", (_ctx: TaskContext, x: number) => -x, { queue: "t3" });
  const spawner = jobs.task("t3_spawner", async (_ctx: TaskContext, x: number) => (await leaf.delay(x)).get({ timeout: 10_000 }), { queue: "t3" });
  await jobs.worker({ queues: ["t3"], concurrency: 4 }).start();

  const { c, d, s, traceId } = await tracer().startActiveSpan("POST /report", async (span) => {
    try {
      const c = await chain(step.s("", "a"), step.s("b"), step.s("c")).applyAsync();
      const d = await chord([1, 2, 3].map((i) => square.s(i)), sum.s()).applyAsync();
      const s = await spawner.delay(5);
      return { c, d, s, traceId: span.spanContext().traceId };
    } finally {
      span.end();
    }
  });
  assert.equal(await c.get({ timeout: 10_000 }), "abc");
  assert.equal(await d.get({ timeout: 10_000 }), 14);
  assert.equal(await s.get({ timeout: 10_000 }), -5);
  await waitFor("every consumer span", () => named("process t3_step").length === 3 && named("process t3_sum").length === 1 && named("process t3_spawner").length === 1);

  const request = one("POST /report");
  // A canvas's producer span is named after its task when it has one (the chain), else "canvas".
  const steps = named("process t3_step");
  assert.equal(steps.length, 3);
  const chainProducer = spans().find((x) => x.spanContext().spanId === parentOf(steps[0]!));
  assert.ok(chainProducer, "the chain's first step has its producer span as parent");
  assert.equal(chainProducer.name, "send t3_step");
  const chordProducer = one("send canvas");
  assert.deepEqual(chordProducer.attributes["pgjobs.task.names"], ["t3_square", "t3_sum"]);
  for (const p of [chainProducer, chordProducer]) {
    assert.equal(p.kind, SpanKind.PRODUCER);
    assert.equal(parentOf(p), request.spanContext().spanId);
  }
  for (const st of steps) {
    assert.equal(st.spanContext().traceId, traceId, "chain steps share the request's trace");
    assert.equal(parentOf(st), chainProducer.spanContext().spanId, "each step under the chain's producer span");
  }
  for (const m of [...named("process t3_square"), one("process t3_sum")]) {
    assert.equal(m.spanContext().traceId, traceId, `${m.name} shares the request's trace`);
    assert.equal(parentOf(m), chordProducer.spanContext().spanId, "chord members and callback under the chord's producer span");
  }
  assert.equal(named("process t3_square").length, 3);

  // request -> send t3_spawner -> process t3_spawner -> send t3_leaf -> process t3_leaf
  const sendSpawner = one("send t3_spawner");
  const runSpawner = one("process t3_spawner");
  const sendLeaf = one("send t3_leaf");
  const runLeaf = one("process t3_leaf");
  assert.equal(parentOf(sendSpawner), request.spanContext().spanId);
  assert.equal(parentOf(runSpawner), sendSpawner.spanContext().spanId);
  assert.equal(parentOf(sendLeaf), runSpawner.spanContext().spanId, "a subtask's producer span is under its parent's attempt");
  assert.equal(parentOf(runLeaf), sendLeaf.spanContext().spanId);
  for (const x of [sendSpawner, runSpawner, sendLeaf, runLeaf]) assert.equal(x.spanContext().traceId, traceId);
});

test("an attempt that outlives its timeout ends its span with the worker's verdict", async () => {
  registerSdk();
  exporter.reset();
  const jobs = openJobs(db);
  await instrumentTracing(jobs);
  const release = gate();
  const stubborn = jobs.task("t4_stubborn", async () => {
    await release.promise; // ignores ctx.signal
    return "too late";
  }, { queue: "t4", timeout: "150ms", retries: 0 });
  await jobs.worker({ queues: ["t4"], shutdownGrace: "2s" }).start();
  const r = await stubborn.delay();
  await assert.rejects(r.get({ timeout: 10_000 }), /TimeoutError/);
  const span = await waitFor("the attempt's span", () => named("process t4_stubborn")[0]);
  assert.equal(span.status.code, SpanStatusCode.ERROR);
  assert.match(span.status.message ?? "", /TimeoutError: task t4_stubborn .* timed out after 150 ms/);
  release.open();
});

test("a canvas makes one producer span, and defining a schedule makes none", async () => {
  // JobsHook.beforeEnqueue is documented as "called once per enqueue call (or canvas)". Today
  // canvas.ts (sigNode) and scheduler.ts (defineSchedule) validate signatures with
  // jobs.buildRow(), which also runs the hooks: one extra producer span per signature of a
  // canvas, and one per schedule definition, parented to nothing that runs.
  const jobs = openJobs(db);
  const calls: string[][] = [];
  jobs.addHook({ beforeEnqueue: ({ names }) => void calls.push(names) });
  const a = jobs.task("t5_a", (_ctx: TaskContext, x: number) => x, { queue: "t5" });
  jobs.schedule("t5_hourly", { every: "1h" }, a.s(1));
  assert.deepEqual(calls, [], "defining a schedule enqueues nothing");
  await chain(a.s(1), a.s(), a.s()).applyAsync();
  assert.deepEqual(calls, [["t5_a"]], "one call for the whole chain");
});
