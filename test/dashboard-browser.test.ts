/**
 * Issue 9, the dashboard in a real browser: headless Chromium (Debian's `chromium`, driven by
 * playwright-core) against the dashboard mounted under /ops in a node:http server, with workers
 * running in this process. The pages' live updates here come from NOTIFY alone: the slow poll is
 * set to a minute, longer than any wait below. Each page's screenshot is saved (in
 * docs/screenshots/ with PGJOBS_UPDATE_SCREENSHOTS=1, else in a temp directory: SCREENSHOTS).
 *
 * HTTP-level checks (credentials, --read-only, CSRF, the CLI, query plans) are in
 * dashboard.test.ts.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { join } from "node:path";
import { test } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { pino } from "pino";
import { chord, createJobs, taskLogStream, type AsyncResult, type Jobs, type Worker } from "../src/index.js";
import { addSchedule } from "../src/scheduler.js";
import { useDatabase } from "./helpers/db.js";
import { CHROMIUM, ensureChromium, SCREENSHOTS, serve, until, type TestDashboard } from "./fixtures/issue9-helpers.js";

// Code passed to page.evaluate runs in the browser (tsconfig has no DOM library).
declare const document: { querySelector(s: string): { textContent: string | null; getAttribute(n: string): string | null } | null; querySelectorAll(s: string): Iterable<{ getAttribute(n: string): string | null; querySelector(s: string): { textContent: string | null } | null }> };
declare const window: unknown;

const db = useDatabase();
const XSS = "<img src=x onerror=alert(1)>";

interface Ctx {
  jobs: Jobs;
  dash: TestDashboard;
  browser: Browser;
  page: Page;
  /** Dialogs other than our own confirmations: alert() from an injected script would land here. */
  dialogs: string[];
  gates: Array<() => void>;
  tasks: ReturnType<typeof defineTasks>;
}

function defineTasks(jobs: Jobs, gates: Array<() => void>) {
  const failedOnce = new Set<string>();
  const gateWaits = new Map<number, Promise<void>>();
  const gate = (i: number) => {
    let p = gateWaits.get(i);
    if (!p) {
      p = new Promise<void>((resolve) => (gates[i] = resolve));
      gateWaits.set(i, p);
    }
    return p;
  };
  for (let i = 0; i < 3; i++) gate(i);
  return {
    /** Fails its first attempt (for each key), succeeds after. */
    flaky: jobs.task("dash.flaky", (ctx, key: string) => {
      ctx.log.info(`rendering ${key}`, { key, attempt: ctx.attempt });
      if (!failedOnce.has(key)) {
        failedOnce.add(key);
        throw new Error(`flaky: the first attempt of ${key} fails`);
      }
      return `ok ${key}`;
    }, { queue: "later", retries: 0 }),
    /** Waits until the test opens gate i. */
    gated: jobs.task("dash.gated", async (_ctx, i: number) => {
      await gate(i);
      return i * 10;
    }, { queue: "dash", retries: 0 }),
    sum: jobs.task("dash.sum", (_ctx, xs: number[]) => xs.reduce((s, x) => s + x, 0), { queue: "dash", retries: 0 }),
    echo: jobs.task("dash.echo", (_ctx, x: unknown) => x, { queue: "dash", retries: 0 }),
    boom: jobs.task("dash.boom", (_ctx, message: string): never => {
      throw new Error(message);
    }, { queue: "dash", retries: 0 }),
  };
}

let ready: Promise<Ctx> | undefined;
function setup(): Promise<Ctx> {
  return (ready ??= (async () => {
    ensureChromium();
    // The handlers' log lines go to the database too, for the task page.
    const logs = taskLogStream({ pool: db.pool, flushInterval: 50 });
    db.onClose(() => logs.close());
    const logger = pino({ level: "info" }, pino.multistream([{ stream: logs }]));
    const jobs = createJobs({ connectionString: db.url, logger, resultPoll: 60_000 });
    db.onClose(() => jobs.close());
    const gates: Array<() => void> = [];
    const tasks = defineTasks(jobs, gates);
    await jobs.worker({ queues: ["dash"], concurrency: 10, pollInterval: 200 }).start();
    const dash = await serve(db, { jobs, prefix: "/ops", pollInterval: 60_000, minRefreshInterval: 200 });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
    db.onClose(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      if (d.type() === "confirm") return void d.accept();
      dialogs.push(`${d.type()}: ${d.message()}`);
      void d.dismiss();
    });
    return { jobs, dash, browser, page, dialogs, gates, tasks };
  })());
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Wait until the element's text contains `text` (the page updating itself). */
async function waitText(page: Page, selector: string, text: string, timeout = 15_000): Promise<void> {
  await page.waitForFunction(
    ([sel, t]) => (document.querySelector(sel!)?.textContent ?? "").includes(t!),
    [selector, text] as const,
    { timeout, polling: 50 },
  );
}

/** Open a page and wait until its live stream is connected. */
async function open(c: Ctx, path: string): Promise<void> {
  await c.page.goto(`${c.dash.url}${path}`);
  await waitText(c.page, "#live-status", "live");
}

/** Set a marker that a reload or navigation would wipe out, and count navigations. */
async function markNoReload(page: Page): Promise<() => Promise<void>> {
  await page.evaluate(() => ((window as unknown as { __noReload: number }).__noReload = 42));
  let navigations = 0;
  const onNav = (frame: { parentFrame(): unknown }) => {
    if (!frame.parentFrame()) navigations++;
  };
  page.on("framenavigated", onNav);
  return async () => {
    page.off("framenavigated", onNav);
    assert.equal(navigations, 0, "the page navigated");
    assert.equal(await page.evaluate(() => (window as unknown as { __noReload?: number }).__noReload), 42, "the page was reloaded");
  };
}

async function runOn(jobs: Jobs, queue: string, fn: (w: Worker) => Promise<void>): Promise<void> {
  const w = jobs.worker({ queues: [queue], concurrency: 4, pollInterval: 200 });
  await w.start();
  try {
    await fn(w);
  } finally {
    await w.stop();
  }
}

test("the overview's counts equal what SQL says", async () => {
  const c = await setup();
  // A mix of states: ready on a queue nobody serves, scheduled, failed, succeeded, cancelled.
  for (let i = 0; i < 5; i++) await db.query("select jobs.enqueue('dash.echo', $1, queue => 'idle')", [JSON.stringify([i])]);
  await db.query("select jobs.enqueue('dash.echo', '[1]', queue => 'idle', delay => interval '1 hour')");
  const ok = await Promise.all([1, 2, 3, 4].map((i) => c.tasks.echo.delay(i)));
  const bad = await Promise.all([1, 2].map((i) => c.tasks.boom.delay(`boom ${i}`)));
  await Promise.all(ok.map((r) => r.get({ timeout: 10_000 })));
  await Promise.all(bad.map((r) => r.get({ timeout: 10_000 }).catch(() => {})));
  await c.tasks.echo.applyAsync(["cancel me"], { queue: "idle" }).then((r) => r.revoke());

  const { rows } = await db.query(`select queue,
      count(*) filter (where state = 'ready')::int as ready,
      count(*) filter (where state in ('pending', 'retrying'))::int as scheduled,
      count(*) filter (where state = 'running')::int as running,
      count(*) filter (where state = 'failed')::int as failed
    from jobs.tasks group by queue order by queue`);
  assert.deepEqual(rows.map((r) => r.queue), ["dash", "idle"]);
  assert.ok(rows.find((r) => r.queue === "dash").failed === 2 && rows.find((r) => r.queue === "idle").ready === 5);

  await open(c, "");
  const shown = async () =>
    c.page.evaluate(() =>
      [...document.querySelectorAll("#queues tbody tr[data-queue]")].map((tr) => {
        const cell = (col: string) => Number((tr.querySelector(`[data-col="${col}"]`)?.textContent ?? "").replace(/,/g, ""));
        return {
          queue: tr.getAttribute("data-queue"),
          ready: cell("ready"), scheduled: cell("scheduled"), running: cell("running"), failed: cell("failed"),
        };
      }),
    );
  assert.deepEqual(await shown(), rows);
  // The oldest ready task's age, and the last hour's throughput chart, are there too.
  assert.match(await c.page.textContent('tr[data-queue="idle"] [data-col="oldest"]') ?? "", /\d(ms|s)/);
  assert.equal(await c.page.locator('tr[data-queue="dash"] svg.spark rect.ok').count() > 0, true);
  await shot(c.page, "overview");
});

test("a failed task's page shows its error and stack; retry makes it runnable, a worker completes it, and the page shows it without a reload", async () => {
  const c = await setup();
  const r = await c.tasks.flaky.delay("report-42");
  await runOn(c.jobs, "later", async () => {
    await assert.rejects(r.get({ timeout: 10_000 }), /flaky: the first attempt of report-42 fails/);
  });
  await until(async () => (await db.query("select count(*)::int as n from jobs.task_logs where task_id = $1", [r.id])).rows[0].n === 1, "the log line");
  await open(c, `tasks/${r.id}`);
  assert.equal(await c.page.textContent("#task-state"), "failed");
  assert.equal(await c.page.textContent("#logs .log-message"), "rendering report-42");
  assert.equal(await c.page.textContent("#error .errhead"), "Error: flaky: the first attempt of report-42 fails");
  const stack = (await c.page.textContent("#error .stack")) ?? "";
  assert.match(stack, /^Error: flaky: the first attempt of report-42 fails\n\s+at /);
  assert.match(stack, /dashboard-browser\.test\.js/);
  assert.equal(await c.page.textContent("#attempts tbody tr td:nth-child(5)"), "failed");
  await shot(c.page, "task-failed");

  const unchanged = await markNoReload(c.page);
  await c.page.click('form[data-action$="/retry"] button');
  // Runnable: nobody serves "later" now, so it waits in ready.
  await waitText(c.page, "#task-state", "ready");
  assert.equal((await db.query("select state from jobs.tasks where id = $1", [r.id])).rows[0].state, "ready");
  assert.equal(await c.page.locator('form[data-action$="/retry"]').count(), 0);
  await runOn(c.jobs, "later", async () => {
    await waitText(c.page, "#task-state", "succeeded");
  });
  await unchanged();
  assert.equal(await c.page.textContent("#result"), '"ok report-42"');
  const row = (await db.query("select state, attempts, result from jobs.tasks where id = $1", [r.id])).rows[0];
  assert.deepEqual(row, { state: "succeeded", attempts: 1, result: "ok report-42" });
  const audit = (await db.query("select actor, action, target, outcome from jobs.audit where target = $1", [r.id])).rows;
  assert.deepEqual(audit, [{ actor: "anonymous", action: "task.retry", target: r.id, outcome: "done" }]);
  await shot(c.page, "task-succeeded");
});

test("a chord in flight shows k of N, then its callback", async () => {
  const c = await setup();
  const result = (await chord([0, 1, 2].map((i) => c.tasks.gated.s(i)), c.tasks.sum.s()).applyAsync()) as AsyncResult<number>;
  const { rows } = await db.query("select id from jobs.chords where callback->'node'->>'id' = $1", [result.id]);
  const chordId = rows[0].id as string;
  await until(async () => (await db.query("select count(*)::int as n from jobs.tasks where chord_id = $1 and state = 'running'", [chordId])).rows[0].n === 3, "the members to run");

  await open(c, `workflows/chords/${chordId}`);
  assert.equal(await c.page.textContent("#chord-progress .chord-count"), "0 of 3");
  const unchanged = await markNoReload(c.page);
  c.gates[0]!();
  await waitText(c.page, "#chord-progress", "1 of 3");
  await unchanged();
  assert.equal(await c.page.locator('#members tr[data-id] .state[data-state="succeeded"]').count(), 1);
  await shot(c.page, "chord");

  // The workers page, while two members still run.
  await open(c, "workers");
  assert.equal(await c.page.locator("#workers tbody tr").count(), 1);
  assert.match((await c.page.textContent("#workers")) ?? "", /dash\.gated/);
  await shot(c.page, "workers");

  await open(c, `workflows/chords/${chordId}`);
  const unchanged2 = await markNoReload(c.page);
  c.gates[1]!();
  await waitText(c.page, "#chord-progress", "2 of 3");
  c.gates[2]!();
  await waitText(c.page, "#chord-progress", "3 of 3");
  await waitText(c.page, "#chord-callback", `#${result.id}`);
  await waitText(c.page, "#chord-callback", "succeeded");
  await unchanged2();
  assert.equal(await result.get({ timeout: 5_000 }), 30);
  assert.equal(await c.page.textContent("#chord-state"), "fired");

  await open(c, "workflows");
  assert.match((await c.page.textContent(`#chords tr[data-chord="${chordId}"]`)) ?? "", /3 of 3/);
  await shot(c.page, "workflows");
});

test("pausing a queue stops a worker from claiming from it; resuming lets it", async () => {
  const c = await setup();
  const results = await Promise.all([1, 2, 3].map((i) => c.tasks.echo.applyAsync([i], { queue: "pausable" })));
  await open(c, "");
  await c.page.click('tr[data-queue="pausable"] form[data-action$="/pause"] button');
  await waitText(c.page, 'tr[data-queue="pausable"]', "paused");
  assert.equal((await db.query("select paused from jobs.queues where name = 'pausable'")).rows[0].paused, true);

  const w = c.jobs.worker({ queues: ["pausable"], concurrency: 4, pollInterval: 200 });
  const idle = once(w, "idle");
  await w.start();
  try {
    // The worker's first claim came back empty, and so do its polls.
    await idle;
    const states = (await db.query("select state, count(*)::int as n from jobs.tasks where queue = 'pausable' group by 1")).rows;
    assert.deepEqual(states, [{ state: "ready", n: 3 }]);

    await c.page.click('tr[data-queue="pausable"] form[data-action$="/resume"] button');
    assert.deepEqual(await Promise.all(results.map((r) => r.get({ timeout: 10_000 }))), [1, 2, 3]);
  } finally {
    await w.stop();
  }
  const audit = (await db.query("select action, outcome from jobs.audit where target = 'pausable' order by id")).rows;
  assert.deepEqual(audit, [{ action: "queue.pause", outcome: "done" }, { action: "queue.resume", outcome: "done" }]);
});

test("a task whose argument is HTML shows it as text, and no script runs", async () => {
  const c = await setup();
  const r = await c.tasks.echo.applyAsync([XSS], { queue: "idle" });
  const failed = await c.tasks.boom.delay(`<script>alert(2)</script>${XSS}`);
  await failed.get({ timeout: 10_000 }).catch(() => {});
  const { rows } = await db.query("select jobs.enqueue($1, $2, queue => 'idle') as id", [`odd<img src=x onerror=alert(3)>name`, JSON.stringify([{ html: XSS }])]);

  await open(c, `tasks?queue=idle`);
  assert.ok(((await c.page.textContent("#tasks")) ?? "").includes(XSS));
  assert.ok(((await c.page.textContent("#tasks")) ?? "").includes("odd<img src=x onerror=alert(3)>name"));
  await shot(c.page, "tasks");

  await open(c, `tasks/${r.id}`);
  assert.equal(await c.page.textContent("#args"), JSON.stringify([XSS], null, 2));
  await open(c, `tasks/${failed.id}`);
  assert.equal(await c.page.textContent("#error .errhead"), `Error: <script>alert(2)</script>${XSS}`);
  await open(c, `tasks/${rows[0].id}`);
  assert.ok(((await c.page.textContent("h1")) ?? "").includes("odd<img src=x onerror=alert(3)>name"));
  // A live refresh swaps the same content in again: still text.
  await c.jobs.pool.query("select pg_notify('jobs.dashboard', 'test')");
  await c.page.waitForTimeout(400);
  assert.equal(await c.page.locator("main img, main script").count(), 0);
  assert.deepEqual(c.dialogs, []);
});

test("the schedules and audit pages", async () => {
  const c = await setup();
  await addSchedule(db.pool, "jobs", { name: "nightly-report", cron: "0 2 * * *", timezone: "Europe/Berlin", task: "dash.echo", args: '["today"]', queue: "dash" }, { force: true });
  await addSchedule(db.pool, "jobs", { name: "heartbeat", every: "10m", task: "dash.echo", args: "[]", queue: "dash" }, { force: true });
  await open(c, "schedules");
  await c.page.click('tr[data-schedule="heartbeat"] form[data-action$="/pause"] button');
  await waitText(c.page, 'tr[data-schedule="heartbeat"] [data-col="status"]', "paused");
  assert.equal((await db.query("select enabled from jobs.schedules where name = 'heartbeat'")).rows[0].enabled, false);
  await shot(c.page, "schedules");
  await open(c, "audit");
  assert.ok(((await c.page.textContent("#audit")) ?? "").includes("schedule.pause"));
  await shot(c.page, "audit");
});
