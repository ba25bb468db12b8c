/**
 * Issue 9, the dashboard over HTTP (no browser): credentials, --read-only, cross-site requests,
 * escaping, the actions and their audit records, live events fed by NOTIFY, the task list's
 * query plans, and `pgjobs dashboard` itself. The browser flows are in dashboard-browser.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { chain, createJobs, taskLogStream, type AsyncResult, type Jobs } from "../src/index.js";
import { statement } from "../src/sql.js";
import { addSchedule } from "../src/scheduler.js";
import { useDatabase } from "./helpers/db.js";
import { csrfOf, http, openEvents, postForm, serve, startDashboardCli, until, type TestDashboard } from "./fixtures/issue9-helpers.js";
import { parseProm, total } from "./fixtures/issue10-prom.js";

const db = useDatabase();
const TOKEN = "s3cret-token-for-the-dashboard-tests";
const XSS = "<img src=x onerror=alert(1)>";

interface Ctx {
  jobs: Jobs;
  /** No credentials, actions allowed. */
  open: TestDashboard;
  /** A failed task and a ready one (queue nobody serves). */
  failedId: string;
  readyId: string;
}

let ready: Promise<Ctx> | undefined;
function setup(): Promise<Ctx> {
  return (ready ??= (async () => {
    const jobs = createJobs({ connectionString: db.url, logLevel: "silent", resultPoll: 60_000 });
    db.onClose(() => jobs.close());
    const fail = jobs.task("t.fail", (_ctx, m: string): never => {
      throw new Error(m);
    }, { queue: "t", retries: 0 });
    jobs.task("t.ok", (_ctx, x: unknown) => x, { queue: "t", retries: 0 });
    const w = await jobs.worker({ queues: ["t"], concurrency: 4, pollInterval: 200 }).start();
    const r = await fail.delay(`failure ${XSS}`);
    await r.get({ timeout: 10_000 }).catch(() => {});
    await w.stop();
    const readyId = (await db.query("select jobs.enqueue('t.ok', $1, queue => 'parked') as id", [JSON.stringify([XSS])])).rows[0].id as string;
    const open = await serve(db, { jobs, prefix: "/ops", pollInterval: 60_000, minRefreshInterval: 50 });
    return { jobs, open, failedId: r.id, readyId };
  })());
}

async function taskState(id: string): Promise<string> {
  return (await db.query("select state from jobs.tasks where id = $1", [id])).rows[0]?.state;
}

async function auditCount(): Promise<number> {
  return (await db.query("select count(*)::int as n from jobs.audit")).rows[0].n;
}

const pageHeaders = { accept: "text/html" };

test("pages render what the tables hold, escaped; large values are cut with a link to the whole", async () => {
  const c = await setup();
  for (const path of ["", "tasks", `tasks/${c.failedId}`, `tasks/${c.readyId}`, "workflows", "schedules", "workers", "audit"]) {
    const r = await http(`${c.open.url}${path}`, { headers: pageHeaders });
    assert.equal(r.status, 200, path);
    assert.match(String(r.headers["content-security-policy"]), /script-src 'self'/);
    assert.ok(!r.body.includes("<img src=x"), `${path} contains unescaped HTML`);
  }
  const page = await http(`${c.open.url}tasks/${c.readyId}`);
  assert.ok(page.body.includes("&lt;img src=x onerror=alert(1)&gt;"));
  const failed = await http(`${c.open.url}tasks/${c.failedId}`);
  assert.ok(failed.body.includes("failure &lt;img src=x onerror=alert(1)&gt;"));

  const big = "x".repeat(20_000);
  const id = (await db.query("select jobs.enqueue('t.ok', $1, queue => 'parked') as id", [JSON.stringify([big])])).rows[0].id;
  const shown = await http(`${c.open.url}tasks/${id}`);
  assert.ok(!shown.body.includes(big));
  assert.match(shown.body, /Showing 4,000 of 20,008 characters/);
  const whole = await http(`${c.open.url}tasks/${id}/args.json`);
  assert.equal(whole.headers["content-type"] as string, "application/json; charset=utf-8");
  assert.deepEqual(JSON.parse(whole.body), [big]);

  // The live region alone, as htmx asks for it.
  const fragment = await http(`${c.open.url}tasks/${c.failedId}`, { headers: { "hx-request": "true", "hx-target": "live" } });
  assert.ok(!fragment.body.includes("<html") && !fragment.body.includes('id="live"'));
  assert.match(fragment.body, new RegExp(`^<span hidden data-watch="${c.failedId}"></span>`));
  assert.match(fragment.body, /id="task-state"/);
  // Unknown pages and ids: 404 and 400, the message escaped.
  assert.equal((await http(`${c.open.url}tasks/999999`)).status, 404);
  assert.equal((await http(`${c.open.url}tasks/1%3Cb%3E`)).status, 400);
  assert.equal((await http(`${c.open.url}nope`)).status, 404);
  // Find by id.
  const find = await http(`${c.open.url}tasks?id=${c.failedId}`);
  assert.equal(find.status, 303);
  assert.equal(find.headers.location, `/ops/tasks/${c.failedId}`);
});

test("a task's log lines, kept by taskLogStream, show on its page, escaped", async () => {
  const c = await setup();
  const logs = taskLogStream({ pool: db.pool, flushInterval: 50 });
  const jobs = createJobs({ connectionString: db.url, logger: pino({ level: "info" }, pino.multistream([{ stream: logs }])) });
  const logged = jobs.task("t.logged", async (ctx, n: number) => {
    ctx.log.info(`fetching <b>page</b> ${n}`, { page: n });
    ctx.log.debug("not kept: below info");
    ctx.log.warn("slow answer");
    return n;
  }, { queue: "logged" });
  const w = await jobs.worker({ queues: ["logged"], pollInterval: 200 }).start();
  const r = await logged.delay(2);
  assert.equal(await r.get({ timeout: 10_000 }), 2);
  await w.stop();
  await jobs.close();
  await logs.close();
  const rows = (await db.query("select attempt, level, message, fields from jobs.task_logs where task_id = $1 order by at", [r.id])).rows;
  assert.deepEqual(rows, [
    { attempt: 1, level: 30, message: "fetching <b>page</b> 2", fields: { page: 2 } },
    { attempt: 1, level: 40, message: "slow answer", fields: {} },
  ]);
  const page = (await http(`${c.open.url}tasks/${r.id}`)).body;
  assert.match(page, /<td class="log-message">fetching &lt;b&gt;page&lt;\/b&gt; 2<\/td>/);
  assert.match(page, /<tr class="log-warn">/);
  assert.ok(!page.includes("not kept"));
});

test("a chain step's page shows its position, the steps before it and the steps to come", async () => {
  const c = await setup();
  const ok = c.jobs.getTask("t.ok")!;
  const q = { queue: "chainq" };
  const last = (await chain(ok.signature([1], q), ok.signature([], q), ok.signature([], q)).applyAsync()) as AsyncResult<unknown>;
  const [first] = (await db.query("select id from jobs.tasks where queue = 'chainq'")).rows.map((r) => r.id as string);
  const steps = (body: string) => [...body.matchAll(/<span class="step( here)?">(?:<a href="\/ops\/tasks\/(\d+)">)?([^<]*)(?:<\/a>)? <span class="state[^"]*" data-state="([^"]+)"/g)].map((m) => [m[2] ?? null, m[4], m[1] ? "here" : ""]);
  let body = (await http(`${c.open.url}tasks/${first}`)).body;
  assert.match(body, /Chain: step 1 of 3/);
  assert.deepEqual(steps(body), [[first, "ready", "here"], [null, "not-enqueued", ""], [null, "not-enqueued", ""]]);
  const w = await c.jobs.worker({ queues: ["chainq"], pollInterval: 200 }).start();
  try {
    assert.equal(await last.get({ timeout: 10_000 }), 1);
  } finally {
    await w.stop();
  }
  const ids = (await db.query("select id from jobs.tasks where queue = 'chainq' order by id")).rows.map((r) => r.id as string);
  assert.equal(ids.length, 3);
  body = (await http(`${c.open.url}tasks/${ids[1]}`)).body;
  assert.match(body, /Chain: step 2 of 3/);
  assert.deepEqual(steps(body), [[ids[0], "succeeded", ""], [ids[1], "succeeded", "here"], [ids[2], "succeeded", ""]]);
  body = (await http(`${c.open.url}tasks/${last.id}`)).body;
  assert.match(body, /Chain: step 3 of 3/);
});

test("mounted under a prefix: node:http passes the whole path, Express strips the prefix; both work", async () => {
  const c = await setup();
  assert.equal((await http(`${c.open.origin}/ops`)).status, 301);
  assert.equal((await http(`${c.open.origin}/ops`)).headers.location, "/ops/");
  const handler = c.open.handler;
  assert.equal(handler.base, "/ops/");
  // Express' app.use("/ops", handler) calls it with req.url "/tasks".
  const { createServer } = await import("node:http");
  const server = createServer((req, res) => {
    req.url = req.url!.replace(/^\/ops/, "") || "/";
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const port = (server.address() as { port: number }).port;
    const r = await http(`http://127.0.0.1:${port}/ops/tasks`);
    assert.equal(r.status, 200);
    assert.match(r.body, /href="\/ops\/tasks\/\d+"/);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  assert.equal((await http(`${c.open.origin}/app`)).body, "the app's own page");
});

test("actions: retry, cancel, delete, queues and schedules, each audited; refused ones change nothing and say why", async () => {
  const c = await setup();
  const page = await http(`${c.open.url}`);
  const csrf = csrfOf(page.body);
  const hx = { "hx-request": "true" };
  const post = (path: string, extra: Record<string, string> = {}) => postForm(`${c.open.url}${path}`, { _csrf: csrf, confirmed: "1" }, { ...hx, ...extra });

  const ids = (await db.query("select id from jobs.enqueue_many(array['t.ok', 't.ok', 't.ok'], queues => array['parked', 'parked', 'parked'])")).rows.map((r) => r.id as string);
  // Cancel a ready task, then delete it; deleting a ready task is refused.
  let r = await post(`tasks/${ids[0]}/cancel`);
  assert.equal(r.status, 200);
  assert.match(r.headers["hx-trigger"] as string, /"pgjobs:flash":\{"text":"cancelled task \d+ \(it was ready\)","level":"ok"\}/);
  assert.equal(await taskState(ids[0]!), "cancelled");
  r = await post(`tasks/${ids[1]}/delete`);
  assert.equal(r.status, 409);
  assert.match(r.body, /was not deleted: it is ready: cancel it first/);
  assert.equal(await taskState(ids[1]!), "ready");
  r = await post(`tasks/${ids[0]}/delete`);
  assert.equal(r.status, 200);
  assert.equal(await taskState(ids[0]!), undefined);
  // Retrying a ready task is refused, naming its state.
  r = await post(`tasks/${ids[2]}/retry`);
  assert.equal(r.status, 409);
  assert.match(r.body, /is ready: only failed or cancelled tasks can be retried/);

  r = await post("queues/parked/pause");
  assert.equal(r.status, 200);
  assert.equal((await db.query("select paused from jobs.queues where name = 'parked'")).rows[0].paused, true);
  assert.equal((await post("queues/parked/pause")).status, 200);
  assert.match((await http(`${c.open.url}`)).body, /data-action="queues\/parked\/resume"/);
  assert.equal((await post("queues/parked/resume")).status, 200);
  assert.equal((await db.query("select paused from jobs.queues where name = 'parked'")).rows[0].paused, false);

  await addSchedule(db.pool, "jobs", { name: "hourly.report", every: "1h", task: "t.ok", args: "[]", queue: "t" }, { force: true });
  assert.equal((await post(`schedules/${encodeURIComponent("hourly.report")}/pause`)).status, 200);
  assert.equal((await db.query("select enabled from jobs.schedules")).rows[0].enabled, false);
  assert.equal((await post(`schedules/${encodeURIComponent("hourly.report")}/resume`)).status, 200);
  assert.equal((await db.query("select enabled from jobs.schedules")).rows[0].enabled, true);
  assert.equal((await post("schedules/nope/pause")).status, 409);

  const audit = (await db.query("select actor, address, action, target, outcome from jobs.audit order by id")).rows;
  assert.deepEqual(audit.map((a) => [a.action, a.target, a.outcome]), [
    ["task.cancel", ids[0], "done"],
    ["task.delete", ids[1], "refused"],
    ["task.delete", ids[0], "done"],
    ["task.retry", ids[2], "refused"],
    ["queue.pause", "parked", "done"],
    ["queue.pause", "parked", "unchanged"],
    ["queue.resume", "parked", "done"],
    ["schedule.pause", "hourly.report", "done"],
    ["schedule.resume", "hourly.report", "done"],
    ["schedule.pause", "nope", "refused"],
  ]);
  assert.ok(audit.every((a) => a.actor === "anonymous" && a.address === "127.0.0.1"));
  const auditPage = await http(`${c.open.url}audit`);
  assert.ok(auditPage.body.includes("schedule hourly.report"));

  // Without script: the form is answered with a confirmation page, then a redirect.
  const confirm = await postForm(`${c.open.url}tasks/${ids[2]}/cancel`, { _csrf: csrf });
  assert.equal(confirm.status, 200);
  assert.match(confirm.body, /Cancel task \d+\?/);
  assert.equal(await taskState(ids[2]!), "ready");
  const done = await postForm(`${c.open.url}tasks/${ids[2]}/cancel`, { _csrf: csrf, confirmed: "1" });
  assert.equal(done.status, 303);
  assert.equal(done.headers.location, `/ops/tasks/${ids[2]}`);
  assert.equal(await taskState(ids[2]!), "cancelled");
});

test("cross-site and forged POSTs are refused and change nothing", async () => {
  const c = await setup();
  const csrf = csrfOf((await http(`${c.open.url}`)).body);
  const url = `${c.open.url}tasks/${c.failedId}/retry`;
  const before = await auditCount();
  const attempts = [
    postForm(url, { confirmed: "1" }),
    postForm(url, { _csrf: "guessed", confirmed: "1" }),
    postForm(url, { _csrf: csrf, confirmed: "1" }, { origin: "https://evil.example" }),
    postForm(url, { _csrf: csrf, confirmed: "1" }, { "sec-fetch-site": "cross-site" }),
    postForm(url, { _csrf: csrf, confirmed: "1" }, { "sec-fetch-site": "same-site" }),
    http(url, { method: "POST", headers: { "content-type": "text/plain" }, body: `_csrf=${csrf}` }),
  ];
  for (const r of await Promise.all(attempts)) assert.ok(r.status === 403 || r.status === 415, `status ${r.status}`);
  assert.equal(await taskState(c.failedId), "failed");
  assert.equal(await auditCount(), before);
  // GET never changes anything.
  assert.equal((await http(url)).status, 404);
  assert.equal(await taskState(c.failedId), "failed");
});

test("with a token, a request without it gets 401 and changes nothing; the token, its cookie and basic auth let in", async () => {
  const c = await setup();
  const d = await serve(db, { pool: db.pool, schema: "jobs", token: TOKEN, basicAuth: "ops:pa55word-for-tests", prefix: "/ops", pollInterval: 60_000 });
  const before = await auditCount();
  for (const path of ["", "tasks", `tasks/${c.failedId}`, "events", `tasks/${c.failedId}/args.json`, "metrics"]) {
    assert.equal((await http(`${d.url}${path}`)).status, 401, path);
  }
  const csrf = csrfOf((await http(`${d.url}`, { headers: { authorization: `Bearer ${TOKEN}` } })).body);
  const retry = `${d.url}tasks/${c.failedId}/retry`;
  assert.equal((await postForm(retry, { _csrf: csrf, confirmed: "1" }, { "hx-request": "true" })).status, 401);
  assert.equal((await postForm(retry, { _csrf: csrf, confirmed: "1" }, { authorization: "Bearer wrong-token-wrong-token" })).status, 401);
  assert.equal((await postForm(retry, { _csrf: csrf, confirmed: "1" }, { authorization: `Basic ${Buffer.from("ops:nope").toString("base64")}` })).status, 401);
  assert.equal(await taskState(c.failedId), "failed");
  assert.equal(await auditCount(), before);
  // A browser gets the sign-in form, and basic auth's challenge.
  const login = await http(`${d.url}`, { headers: pageHeaders });
  assert.equal(login.status, 401);
  assert.match(login.headers["www-authenticate"] as string, /^Basic realm="pgjobs dashboard"/);
  assert.match(login.body, /name="token"/);
  // The sign-in form's token is not the actions' token.
  assert.notEqual(csrfOf(login.body), csrf);
  assert.equal((await postForm(retry, { _csrf: csrfOf(login.body), confirmed: "1" }, { authorization: `Bearer ${TOKEN}`, "hx-request": "true" })).status, 403);
  // ?token= sets a cookie (derived from the token, not the token) and drops it from the address.
  const viaQuery = await http(`${d.url}tasks?token=${TOKEN}&state=failed`);
  assert.equal(viaQuery.status, 303);
  assert.equal(viaQuery.headers.location, "/ops/tasks?state=failed");
  const cookie = (viaQuery.headers["set-cookie"]![0] ?? "").split(";")[0]!;
  assert.ok(!cookie.includes(TOKEN));
  assert.match(viaQuery.headers["set-cookie"]![0]!, /HttpOnly; SameSite=Strict/);
  assert.equal((await http(`${d.url}tasks`, { headers: { cookie } })).status, 200);
  // The sign-in form.
  const signIn = await postForm(`${d.url}login`, { _csrf: csrfOf(login.body), token: TOKEN });
  assert.equal(signIn.status, 303);
  assert.equal((await postForm(`${d.url}login`, { _csrf: csrfOf(login.body), token: "not-the-token-at-all" })).status, 401);
  // Basic auth, and its user named in the audit log.
  const basic = { authorization: `Basic ${Buffer.from("ops:pa55word-for-tests").toString("base64")}` };
  const r = await postForm(retry, { _csrf: csrf, confirmed: "1" }, { ...basic, "hx-request": "true" });
  assert.equal(r.status, 200);
  assert.equal(await taskState(c.failedId), "ready");
  const [row] = (await db.query("select actor, action from jobs.audit order by id desc limit 1")).rows;
  assert.deepEqual(row, { actor: "ops", action: "task.retry" });
  await db.query("update jobs.tasks set state = 'failed', finished_at = now() where id = $1", [c.failedId]);
  // Static assets need no credentials (the sign-in page uses the stylesheet); they hold nothing.
  const css = /href="(\/ops\/assets\/[^"]+\.css)"/.exec(login.body)![1]!;
  assert.equal((await http(`${d.origin}${css}`)).status, 200);
  await d.close();
});

test("the dashboard serves Prometheus metrics at /metrics (per-queue counts equal SQL); metrics: false serves none", async () => {
  await setup();
  const d = await serve(db, { pool: db.pool, schema: "jobs", token: TOKEN, pollInterval: 60_000 });
  const scrape = await http(`${d.url}metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(scrape.status, 200);
  assert.match(scrape.headers["content-type"] as string, /^text\/plain/);
  const samples = parseProm(scrape.body);
  const { rows } = await db.query<{ queue: string; state: string; n: number }>(
    "select queue, state::text, count(*)::int as n from jobs.tasks where state in ('ready', 'failed') group by 1, 2");
  assert.ok(rows.length > 0);
  for (const r of rows) assert.equal(total(samples, "pgjobs_queue_tasks", { queue: r.queue, state: r.state }), r.n, `${r.queue} ${r.state}`);
  assert.ok(samples.some((x) => x.name === "pgjobs_pool_connections"), "and the dashboard's own pool");
  await d.close();
  const off = await serve(db, { pool: db.pool, schema: "jobs", pollInterval: 60_000, metrics: false });
  assert.equal((await http(`${off.url}metrics`)).status, 404);
  await off.close();
});

test("--read-only hides every action and refuses each with 403", async () => {
  const c = await setup();
  const d = await serve(db, { jobs: c.jobs, readOnly: true, pollInterval: 60_000 });
  await addSchedule(db.pool, "jobs", { name: "ro-schedule", every: "1h", task: "t.ok", args: "[]", queue: "t" }, { force: true }).catch(() => {});
  await db.query("select jobs.pause_queue('rq')");
  const before = await auditCount();
  for (const path of ["", `tasks/${c.failedId}`, `tasks/${c.readyId}`, "schedules"]) {
    const page = await http(`${d.url}${path}`);
    assert.equal(page.status, 200);
    assert.ok(!/<form method="post"/.test(page.body), `${path} shows an action`);
    assert.match(page.body, /read-only/);
  }
  const anyCsrf = csrfOf((await http(`${c.open.url}`)).body);
  const paths = [`tasks/${c.failedId}/retry`, `tasks/${c.readyId}/cancel`, `tasks/${c.failedId}/delete`, "queues/t/pause", "queues/rq/resume", "schedules/ro-schedule/pause"];
  for (const p of paths) {
    const r = await postForm(`${d.url}${p}`, { _csrf: anyCsrf, confirmed: "1" }, { "hx-request": "true" });
    assert.equal(r.status, 403, p);
    assert.match(r.body, /read-only/);
  }
  assert.equal(await taskState(c.failedId), "failed");
  assert.equal(await taskState(c.readyId), "ready");
  assert.equal((await db.query("select paused from jobs.queues where name = 'rq'")).rows[0].paused, true);
  assert.equal(await auditCount(), before);
  await d.close();
});

test("live: an event stream gets a change when a watched task finishes, and when tasks are enqueued (NOTIFY, not the poll)", async () => {
  const c = await setup();
  const id = (await db.query("select jobs.enqueue('t.ok', '[1]', queue => 'live') as id")).rows[0].id as string;
  const events = await openEvents(`${c.open.url}events?watch=${id}`);
  try {
    assert.equal(events.status, 200);
    // Registered as a waiter, then a catch-up change. (A change of something else may come before
    // the registration lands: CI once saw one, on a loaded machine; so wait for the row itself.)
    await until(async () => (await db.query("select count(*)::int as n from jobs.result_waiters where task_id = $1", [id])).rows[0].n === 1, "the watched task to be registered");
    await events.next("change");
    // The catch-up may trail the registration by the stream's minimum gap (50 ms here): the
    // changes waited for below are those sent after this instant.
    await sleep(200);
    // A worker finishing it notifies, because the dashboard registered as a waiter.
    let since = Date.now();
    const w = await c.jobs.worker({ queues: ["live"], concurrency: 1, pollInterval: 200 }).start();
    try {
      await events.next("change", 5_000, since);
      await until(async () => (await taskState(id)) === "succeeded", "the task to succeed");
    } finally {
      await w.stop();
    }
    await sleep(200);
    since = Date.now();
    await db.query("select jobs.enqueue('t.ok', '[2]', queue => 'parked')");
    await events.next("change", 5_000, since);
  } finally {
    events.close();
  }
  // The stream's close forgets the registration.
  await until(async () => (await db.query("select count(*)::int as n from jobs.result_waiters where task_id = $1", [id])).rows[0].n === 0, "the waiter to be removed");
});

test("the task list is keyset-paged, and its plans use the primary key, generic or custom", async () => {
  const c = await setup();
  await db.query(`insert into jobs.tasks (name, queue, state, args, finished_at)
                  select 'bulk.' || (i % 7), case when i % 2 = 0 then 'a' else 'b' end,
                         (array['succeeded', 'failed', 'ready'])[1 + i % 3]::jobs.task_state, jsonb_build_array(i),
                         case when i % 3 <> 2 then now() end
                    from generate_series(1, 30000) i`);
  await db.query("analyze jobs.tasks");
  const list = statement("jobs", "dashboard_task_list");
  const newer = statement("jobs", "dashboard_task_list_newer");
  const client = await db.connect();
  const plan = async (text: string, params: unknown[], mode: "force_generic_plan" | "force_custom_plan") => {
    await client.query(`set plan_cache_mode = ${mode}`);
    await client.query("deallocate all");
    const types = ["bigint", "text", "text", "text", "timestamptz", "timestamptz", "int"];
    await client.query(`prepare p(${types.join(", ")}) as ${text.replace(/^--.*$/gm, "")}`);
    const lit = params.map((p) => (p === null ? "null" : typeof p === "number" ? String(p) : `'${p}'`));
    const { rows } = await client.query(`explain (format json) execute p(${lit.join(", ")})`);
    return JSON.stringify(rows[0]["QUERY PLAN"]);
  };
  const maxId = Number((await db.query("select max(id) as m from jobs.tasks")).rows[0].m);
  for (const mode of ["force_generic_plan", "force_custom_plan"] as const) {
    for (const [text, params] of [
      [list.text, [null, null, null, null, null, null, 50]],
      [list.text, [maxId - 20000, null, null, null, null, null, 50]],
      [list.text, [maxId - 20000, "a", "failed", "bulk.", null, null, 50]],
      [newer.text, [maxId - 20000, null, null, null, null, null, 50]],
    ] as const) {
      const p = await plan(text, [...params], mode);
      assert.match(p, /"Index Name":"tasks_pkey"/, `${mode}: ${p}`);
      assert.ok(!/"Node Type":"Sort"/.test(p) && !/"Node Type":"Seq Scan"/.test(p), `${mode}: ${p}`);
      if (params[0] !== null) assert.match(p, /"Index Cond":"\(id [<>] /, `${mode}: the cursor is not an index condition: ${p}`);
    }
  }
  await client.query("deallocate all");

  // Walking the pages with the links the page gives: every row once, newest first.
  const seen: string[] = [];
  let url: string | null = `${c.open.url}tasks?queue=a&state=failed`;
  while (url) {
    const body: string = (await http(url)).body;
    seen.push(...[...body.matchAll(/<tr data-id="(\d+)"/g)].map((m) => m[1]!));
    const next: string | undefined = /href="([^"]+)" rel="next"/.exec(body)?.[1];
    url = next ? `${c.open.origin}${next.replace(/&amp;/g, "&")}` : null;
  }
  const expected = (await db.query("select id from jobs.tasks where queue = 'a' and state = 'failed' order by id desc")).rows.map((r) => r.id);
  assert.equal(expected.length, 5000);
  assert.deepEqual(seen, expected);
  // And back: the "newer" link of the second page leads to the first.
  const second = (await http(`${c.open.url}tasks?queue=a&state=failed&before=${expected[49]}`)).body;
  const prev = /href="([^"]+)" rel="prev"/.exec(second)![1]!.replace(/&amp;/g, "&");
  const first = (await http(`${c.open.origin}${prev}`)).body;
  assert.deepEqual([...first.matchAll(/<tr data-id="(\d+)"/g)].map((m) => m[1]), expected.slice(0, 50));
  await db.query("delete from jobs.tasks where name like 'bulk.%'");
});

test("pgjobs dashboard: refuses to listen beyond localhost without credentials; with a token, 401 without it", async () => {
  const c = await setup();
  const env = { DATABASE_URL: db.url, PGJOBS_DASHBOARD_TOKEN: undefined, PGJOBS_DASHBOARD_BASIC_AUTH: undefined };
  const refused = await startDashboardCli(["--host", "0.0.0.0", "--port", "0"], env);
  assert.equal(refused.url, null);
  assert.equal(await refused.code, 2);
  assert.match(refused.stderr(), /^pgjobs: refusing to listen on 0\.0\.0\.0 without credentials: .*--token.*\n$/);
  assert.equal(refused.stderr().trim().split("\n").length, 1);
  const short = await startDashboardCli(["--host", "0.0.0.0", "--port", "0", "--token", "short"], env);
  assert.equal(await short.code, 2);
  assert.match(short.stderr(), /^pgjobs: the dashboard token is 5 characters long: use at least 16/);

  const served = await startDashboardCli(["--host", "0.0.0.0", "--port", "0"], { ...env, PGJOBS_DASHBOARD_TOKEN: TOKEN });
  try {
    assert.ok(served.url, served.stderr());
    const url = served.url!.replace("0.0.0.0", "127.0.0.1");
    assert.equal((await http(url)).status, 401);
    assert.equal((await postForm(`${url}tasks/${c.failedId}/retry`, { confirmed: "1" }, { "hx-request": "true" })).status, 401);
    assert.equal(await taskState(c.failedId), "failed");
    assert.equal((await http(url, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  } finally {
    assert.equal(await served.stop(), 0);
  }

  // On 127.0.0.1 without credentials: it serves, but only to loopback host names (DNS rebinding).
  const local = await startDashboardCli(["--port", "0", "--read-only"], env);
  try {
    assert.ok(local.url, local.stderr());
    assert.match(local.stdout(), /\(read-only\)/);
    assert.equal((await http(local.url!)).status, 200);
    assert.equal((await http(local.url!, { headers: { host: "evil.example:4545" } })).status, 421);
  } finally {
    assert.equal(await local.stop(), 0);
  }
});
