/**
 * The dashboard's pages, rendered on the server. Each page is a static part (heading, filter
 * form) and a live region that refreshes itself on the server's `change` events
 * (hx-trigger="pgjobs:change from:body"); the router sends the live region alone when htmx asks
 * for it. Everything from the database goes through the `html` template, which escapes it.
 */
import type { TaskDetails } from "../admin.js";
import type { Json } from "../json.js";
import type { ScheduleInfo } from "../scheduler.js";
import { assets } from "./assets.js";
import type {
  AttemptRow, AuditRow, ChildRow, ChordDetails, LogRow, ChordRow, GroupRow, MemberRow, QueueRow, StepRow, TaskFilter, TaskListRow,
  ThroughputRow, WorkerRow, WorkerTaskRow,
} from "./data.js";
import { html, query, raw, seg, type Html } from "./html.js";

export interface PageContext {
  /** The dashboard's root path, ending in "/" (the prefix it is mounted under). */
  base: string;
  csrf: string;
  readOnly: boolean;
  /** The current request's path and query within the dashboard, for the live region's refresh. */
  self: string;
  now: number;
}

export interface Page {
  title: string;
  nav: "overview" | "tasks" | "workflows" | "schedules" | "workers" | "audit" | "";
  /** Above the live region: headings, filter forms (not replaced on refresh). */
  head: Html;
  live: Html;
  /** Task ids the page shows that may still change: the server asks to hear when they finish. */
  watch?: string[];
}

export const TASK_STATES = ["pending", "ready", "running", "succeeded", "failed", "retrying", "cancelled"] as const;
const FINAL = new Set(["succeeded", "failed", "cancelled"]);
/** Longer JSON is cut, with a link to the whole value. */
const JSON_SHOWN_CHARS = 4_000;

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

const HTMX_CONFIG = JSON.stringify({
  // No inline <style>, no eval, no <script> from swapped content: the CSP forbids them anyway.
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  selfRequestsOnly: true,
  historyEnabled: false,
  defaultSwapStyle: "outerHTML",
});

export function layout(ctx: PageContext, page: Page): Html {
  const a = assets();
  const asset = (name: string) => `${ctx.base}assets/${a.get(name)!.hash}/${name}`;
  const nav = (id: Page["nav"], path: string, label: string) =>
    html`<a href="${ctx.base}${path}" class="${page.nav === id ? "current" : ""}">${label}</a>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content="${HTMX_CONFIG}">
<title>${page.title} · pgjobs</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${asset("dashboard.css")}">
<script src="${asset("htmx.min.js")}" defer></script>
<script src="${asset("live.js")}" defer></script>
</head>
<body data-base="${ctx.base}">
<header class="top">
  <a class="brand" href="${ctx.base}">pgjobs</a>
  <nav>
    ${nav("overview", "", "Overview")}${nav("tasks", "tasks", "Tasks")}${nav("workflows", "workflows", "Workflows")}${nav("schedules", "schedules", "Schedules")}${nav("workers", "workers", "Workers")}${nav("audit", "audit", "Audit")}
  </nav>
  ${ctx.readOnly ? html`<span class="state badge ro" title="started with --read-only: actions are hidden and refused">read-only</span>` : ""}
  <form method="get" action="${ctx.base}tasks" role="search"><input type="search" name="id" placeholder="Find task id" aria-label="Find a task by id" inputmode="numeric"></form>
  <span id="live-status" class="live">connecting</span>
</header>
<main>
${page.head}
${liveRegion(ctx, page)}
</main>
<div id="flash" class="flash hidden" role="status" aria-live="polite"></div>
</body>
</html>
`;
}

/**
 * The part of a page that refreshes itself. The #live element stays and only its content is
 * swapped (innerHTML): htmx queues a refresh asked for while one is in flight on the element
 * itself, and an element replaced by the swap would take that queued refresh with it.
 */
export function liveRegion(ctx: PageContext, page: Page): Html {
  return html`<div id="live" hx-get="${ctx.base}${ctx.self}" hx-trigger="pgjobs:change from:body" hx-swap="innerHTML">
${liveContent(page)}
</div>`;
}

/** What the router sends to htmx for a refresh of #live. */
export function liveContent(page: Page): Html {
  const watch = (page.watch ?? []).slice(0, 200).join(",");
  return html`${watch ? html`<span hidden data-watch="${watch}"></span>` : ""}${page.live}`;
}

// ---------------------------------------------------------------------------------------------
// Pieces
// ---------------------------------------------------------------------------------------------

function state(s: string | null | undefined): Html {
  if (!s) return html`<span class="muted">-</span>`;
  return html`<span class="state ${s}" data-state="${s}">${s}</span>`;
}

function n(v: number, href?: string, hot = false): Html {
  const cls = v === 0 ? "zero" : hot ? "hot" : "";
  const text = v.toLocaleString("en-US");
  return href && v > 0 ? html`<a class="${cls}" href="${href}">${text}</a>` : html`<span class="${cls}">${text}</span>`;
}

export function age(seconds: number): string {
  if (!Number.isFinite(seconds)) return "-";
  if (seconds < 0) seconds = 0;
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(seconds / 86400)}d${String(Math.floor((seconds % 86400) / 3600)).padStart(2, "0")}h`;
}

function levelName(level: number): string {
  return level >= 60 ? "fatal" : level >= 50 ? "error" : level >= 40 ? "warn" : level >= 30 ? "info" : level >= 20 ? "debug" : "trace";
}

function iso(d: Date): string {
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** "12:03:04Z · 5m ago", with the full instant in the title. */
function when(ctx: PageContext, d: Date | null | undefined): Html {
  if (!d) return html`<span class="muted">-</span>`;
  const s = (ctx.now - d.getTime()) / 1000;
  const rel = s >= 0 ? `${age(s)} ago` : `in ${age(-s)}`;
  return html`<time datetime="${d.toISOString()}" title="${iso(d)}">${rel}</time>`;
}

function whenFull(ctx: PageContext, d: Date | null | undefined): Html {
  if (!d) return html`<span class="muted">-</span>`;
  const s = (ctx.now - d.getTime()) / 1000;
  return html`<time datetime="${d.toISOString()}">${iso(d)}</time> <span class="muted">(${s >= 0 ? `${age(s)} ago` : `in ${age(-s)}`})</span>`;
}

function taskLink(ctx: PageContext, id: string | null | undefined, label?: string): Html {
  if (!id) return html`<span class="muted">-</span>`;
  return html`<a href="${ctx.base}tasks/${seg(id)}">${label ?? `#${id}`}</a>`;
}

/** A POST form that htmx sends after a confirmation; without script, the server asks instead. */
function action(ctx: PageContext, path: string, label: string, confirm: string, cls = ""): Html {
  if (ctx.readOnly) return html``;
  const url = `${ctx.base}${path}`;
  return html`<form method="post" action="${url}" hx-post="${url}" hx-confirm="${confirm}" hx-swap="none" hx-vals='{"confirmed":"1"}' data-action="${path}"><input type="hidden" name="_csrf" value="${ctx.csrf}"><button type="submit" class="${cls}">${label}</button></form>`;
}

/** Pretty JSON, cut at JSON_SHOWN_CHARS with a link to the whole value. */
function jsonBlock(value: Json | undefined, id: string, fullHref: string): Html {
  if (value === undefined || value === null) return html`<pre id="${id}" class="muted">null</pre>`;
  const text = JSON.stringify(value, null, 2);
  if (text.length <= JSON_SHOWN_CHARS) return html`<pre id="${id}">${text}</pre>`;
  const kb = (Buffer.byteLength(text) / 1024).toFixed(1);
  return html`<pre id="${id}">${text.slice(0, JSON_SHOWN_CHARS)}\n…</pre><p class="note">Showing ${JSON_SHOWN_CHARS.toLocaleString("en-US")} of ${text.length.toLocaleString("en-US")} characters. <a href="${fullHref}">The whole value (${kb} KB)</a></p>`;
}

function sparkline(rows: ThroughputRow[], label: string): Html {
  const by = new Map(rows.map((r) => [r.minute, r]));
  const max = Math.max(1, ...rows.map((r) => r.succeeded + r.failed + r.cancelled));
  const W = 2;
  const H = 22;
  const bars: Html[] = [];
  for (let m = 59; m >= 0; m--) {
    const r = by.get(m);
    const x = (59 - m) * W;
    const ok = r ? r.succeeded + r.cancelled : 0;
    const bad = r ? r.failed : 0;
    const hOk = Math.round((ok / max) * H);
    const hBad = Math.round((bad / max) * H);
    if (hOk > 0) bars.push(html`<rect class="ok" x="${x}" y="${H - hOk - hBad}" width="${W - 0.4}" height="${hOk}"><title>${m} min ago: ${ok} done, ${bad} failed</title></rect>`);
    if (hBad > 0) bars.push(html`<rect class="bad" x="${x}" y="${H - hBad}" width="${W - 0.4}" height="${hBad}"><title>${m} min ago: ${bad} failed</title></rect>`);
  }
  return html`<svg class="spark" width="${60 * W}" height="${H + 1}" viewBox="0 0 ${60 * W} ${H + 1}" role="img" aria-label="${label}"><rect class="base" x="0" y="${H}" width="${60 * W}" height="1"/>${bars}</svg>`;
}

function empty(text: string): Html {
  return html`<div class="empty">${text}</div>`;
}

// ---------------------------------------------------------------------------------------------
// Overview
// ---------------------------------------------------------------------------------------------

export function overviewPage(ctx: PageContext, counted: QueueRow[], throughput: ThroughputRow[], workers: WorkerRow[]): Page {
  const tp = new Map<string, ThroughputRow[]>();
  for (const r of throughput) {
    const list = tp.get(r.queue) ?? [];
    list.push(r);
    tp.set(r.queue, list);
  }
  const alive = workers.filter((w) => w.heartbeat_age_s < 60);
  // Every queue with a backlog, a failure, a paused flag, work done in the last hour, or a worker.
  const byName = new Map(counted.map((q) => [q.queue, q]));
  for (const name of [...tp.keys(), ...alive.flatMap((w) => w.queues)]) {
    if (!byName.has(name)) byName.set(name, { queue: name, ready: 0, scheduled: 0, running: 0, failed: 0, oldest_ready_s: null, paused: false, paused_changed_at: null, paused_changed_by: null });
  }
  const queues = [...byName.values()].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
  const sum = (k: "ready" | "scheduled" | "running" | "failed") => queues.reduce((s, q) => s + q[k], 0);
  const t = (q: string, st?: string) => `${ctx.base}tasks${query({ queue: q, state: st })}`;
  const rows = queues.map((q) => {
    const hour = tp.get(q.queue) ?? [];
    const done = hour.reduce((s, r) => s + r.succeeded, 0);
    const failed = hour.reduce((s, r) => s + r.failed, 0);
    const serving = alive.filter((w) => w.queues.includes(q.queue)).length;
    return html`<tr data-queue="${q.queue}">
  <td><a href="${t(q.queue)}">${q.queue}</a> ${q.paused ? html`<span class="state paused" title="${q.paused_changed_by ? `paused by ${q.paused_changed_by}` : "paused"}">paused</span>` : ""}</td>
  <td class="num" data-col="ready">${n(q.ready, t(q.queue, "ready"))}</td>
  <td class="num" data-col="scheduled">${n(q.scheduled, t(q.queue, "pending"))}</td>
  <td class="num" data-col="running">${n(q.running, t(q.queue, "running"))}</td>
  <td class="num" data-col="failed">${n(q.failed, t(q.queue, "failed"), true)}</td>
  <td class="num" data-col="oldest">${q.oldest_ready_s === null ? html`<span class="zero">-</span>` : age(q.oldest_ready_s)}</td>
  <td class="num" data-col="workers">${serving === 0 && q.ready > 0 ? html`<span class="hot" title="no live worker serves this queue">0</span>` : n(serving)}</td>
  <td>${sparkline(hour, `queue ${q.queue}: ${done} succeeded, ${failed} failed in the last hour`)}</td>
  <td class="num" data-col="hour">${n(done)}${failed > 0 ? html` / <span class="hot">${failed}</span>` : ""}</td>
  <td>${q.paused
      ? action(ctx, `queues/${seg(q.queue)}/resume`, "Resume", `Resume queue ${q.queue}? Workers start claiming its tasks again.`)
      : action(ctx, `queues/${seg(q.queue)}/pause`, "Pause", `Pause queue ${q.queue}? Workers stop claiming its tasks; running tasks finish.`)}</td>
</tr>`;
  });
  const live = html`<table id="queues">
<thead><tr><th>Queue</th><th class="num">Ready</th><th class="num">Scheduled</th><th class="num">Running</th><th class="num">Failed</th><th class="num">Oldest ready</th><th class="num">Workers</th><th>Last hour</th><th class="num">Done / failed</th><th></th></tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="10" class="muted">No tasks yet.</td></tr>`}</tbody>
${queues.length > 1 ? html`<tfoot><tr><td class="muted">all queues</td><td class="num">${n(sum("ready"))}</td><td class="num">${n(sum("scheduled"))}</td><td class="num">${n(sum("running"))}</td><td class="num">${n(sum("failed"), undefined, true)}</td><td></td><td></td><td></td><td></td><td></td></tr></tfoot>` : ""}
</table>
<p class="note"><a href="${ctx.base}workers">${alive.length} worker${alive.length === 1 ? "" : "s"}</a> alive${workers.length > alive.length ? html`, <span class="hot">${workers.length - alive.length} silent for over a minute</span>` : ""}. Scheduled: waiting for a countdown or a retry's backoff. Failed: failed for good, kept until pruned. The same counts in SQL: <code>select queue, state, count(*) from jobs.tasks group by 1, 2</code>.</p>`;
  return { title: "Overview", nav: "overview", head: html`<h1>Overview</h1>`, live };
}

// ---------------------------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------------------------

function toLocalInput(d: Date | null): string {
  return d ? d.toISOString().slice(0, 16) : "";
}

export function tasksPage(ctx: PageContext, f: TaskFilter, rows: TaskListRow[], pager: { newer: string | null; older: string | null }): Page {
  const filters = { queue: f.queue, state: f.state, name: f.name, from: f.from?.toISOString(), to: f.to?.toISOString() };
  const head = html`<h1>Tasks</h1>
<form class="filters" method="get" action="${ctx.base}tasks">
  <label>Queue <input name="queue" value="${f.queue ?? ""}" size="12"></label>
  <label>State <select name="state"><option value="">any</option>${TASK_STATES.map((s) => html`<option value="${s}"${f.state === s ? raw(" selected") : ""}>${s}</option>`)}</select></label>
  <label>Name starts with <input name="name" value="${f.name ?? ""}" size="18"></label>
  <label>Created from (UTC) <input type="datetime-local" name="from" value="${toLocalInput(f.from)}"></label>
  <label>to (UTC) <input type="datetime-local" name="to" value="${toLocalInput(f.to)}"></label>
  <button type="submit" class="primary">Filter</button>
  <a class="button" href="${ctx.base}tasks">Clear</a>
</form>`;
  const body = rows.map(
    (r) => html`<tr data-id="${r.id}">
  <td class="num mono">${taskLink(ctx, r.id, r.id)}</td>
  <td class="clip">${taskLink(ctx, r.id, r.name)}</td>
  <td><a href="${ctx.base}tasks${query({ ...filters, queue: r.queue })}">${r.queue}</a></td>
  <td>${state(r.state)}</td>
  <td class="num">${r.attempts}/${r.max_attempts}</td>
  <td>${when(ctx, r.created_at)}</td>
  <td>${FINAL.has(r.state) ? when(ctx, r.finished_at) : r.state === "running" ? when(ctx, r.started_at) : when(ctx, r.run_at)}</td>
  <td class="clip mono">${r.args_preview}</td>
  <td class="clip">${r.error_name ? html`<span class="hot">${r.error_name}</span>: ${r.error_message}` : ""}</td>
</tr>`,
  );
  const pagerHtml = html`<div class="pager">
${pager.newer ? html`<a href="${ctx.base}tasks${query({ ...filters, after: pager.newer })}" rel="prev">← Newer</a>` : html`<span class="muted">← Newer</span>`}
${pager.older ? html`<a href="${ctx.base}tasks${query({ ...filters, before: pager.older })}" rel="next">Older →</a>` : html`<span class="muted">Older →</span>`}
<a href="${ctx.base}tasks${query(filters)}">Newest</a>
</div>`;
  const live = rows.length
    ? html`<table id="tasks"><thead><tr><th class="num">Id</th><th>Name</th><th>Queue</th><th>State</th><th class="num">Attempts</th><th>Created</th><th>Finished / runs</th><th>Arguments</th><th>Error</th></tr></thead>
<tbody>${body}</tbody></table>${pagerHtml}`
    : html`${empty("No tasks match.")}${pagerHtml}`;
  return { title: "Tasks", nav: "tasks", head, live };
}

// ---------------------------------------------------------------------------------------------
// One task
// ---------------------------------------------------------------------------------------------

export interface TaskPageData {
  task: TaskDetails;
  children: ChildRow[];
  before: StepRow[];
  after: Array<{ id: string | null; name: string; kind: string; row?: StepRow }>;
  attempts: AttemptRow[] | null;
  logs: LogRow[] | null;
  chord: ChordRow | null;
  audit: AuditRow[];
}

function errorBlock(err: TaskDetails["error"] | AttemptRow["error"], id: string): Html {
  if (!err) return html``;
  const { name, message, stack, ...rest } = err as { name?: string; message?: string; stack?: string; [k: string]: unknown };
  const extra = Object.keys(rest).length > 0 ? html`<pre class="mono">${JSON.stringify(rest, null, 2)}</pre>` : "";
  return html`<div id="${id}"><p class="errhead">${name ?? "Error"}: ${message ?? ""}</p>${stack ? html`<pre class="error stack">${stack}</pre>` : ""}${extra}</div>`;
}

export function taskPage(ctx: PageContext, d: TaskPageData): Page {
  const t = d.task;
  const base = `${ctx.base}tasks/${seg(t.id)}`;
  const actions: Html[] = [];
  if (t.state === "failed" || t.state === "cancelled") actions.push(action(ctx, `tasks/${seg(t.id)}/retry`, "Retry", `Retry task ${t.id} (${t.name})? It runs again from a fresh attempt count.`, "primary"));
  if (!FINAL.has(t.state)) actions.push(action(ctx, `tasks/${seg(t.id)}/cancel`, "Cancel", `Cancel task ${t.id} (${t.name})?${t.state === "running" ? " Its handler's signal is aborted." : ""}`, "danger"));
  if (FINAL.has(t.state)) actions.push(action(ctx, `tasks/${seg(t.id)}/delete`, "Delete", `Delete task ${t.id} (${t.name})? This cannot be undone.`, "danger"));
  const progress = t.progress as { value?: Json; meta?: Json } | null;
  const workflow: Html[] = [];
  if (d.before.length > 0 || d.after.length > 0) {
    const total = d.before.length + 1 + d.after.length;
    const pos = d.before.length + 1;
    const step = (id: string | null, name: string, st: string | null, here = false) =>
      html`<span class="step${here ? " here" : ""}">${id ? taskLink(ctx, id, name) : name} ${st ? state(st) : html`<span class="state" data-state="not-enqueued">not yet enqueued</span>`}</span>`;
    const parts: Html[] = [];
    for (const s of d.before) parts.push(step(s.id, s.name, s.state), html`<span class="arrow">→</span>`);
    parts.push(step(t.id, t.name, t.state, true));
    for (const s of d.after) parts.push(html`<span class="arrow">→</span>`, step(s.row ? s.id : null, s.kind === "sig" ? s.name : `(${s.kind}) ${s.name}`, s.row?.state ?? null));
    workflow.push(html`<p id="chain-position">Chain: step ${pos} of ${total}</p><div class="steps">${parts}</div>`);
  }
  if (d.chord) {
    workflow.push(html`<p>Member of <a href="${ctx.base}workflows/chords/${seg(d.chord.chord_id)}">chord ${d.chord.chord_id.slice(0, 8)}</a>: ${d.chord.completed} of ${d.chord.total} done, ${state(d.chord.state)}${d.chord.callback_id ? html`, callback ${taskLink(ctx, d.chord.callback_id)}` : ""}</p>`);
  } else if (t.group_id) {
    workflow.push(html`<p>Member of <a href="${ctx.base}workflows/groups/${seg(t.group_id)}">group ${t.group_id.slice(0, 8)}</a></p>`);
  }
  if (t.parent_id && !d.before.some((s) => s.id === t.parent_id)) workflow.push(html`<p>Enqueued by ${taskLink(ctx, t.parent_id)}</p>`);
  if (d.children.length > 0) {
    workflow.push(html`<p>Enqueued ${d.children.length}${d.children.length >= 200 ? "+" : ""} task${d.children.length === 1 ? "" : "s"}:</p>
<table id="children"><thead><tr><th class="num">Id</th><th>Name</th><th>Queue</th><th>State</th><th>Created</th></tr></thead><tbody>${d.children.map((c) => html`<tr><td class="num mono">${taskLink(ctx, c.id, c.id)}</td><td>${c.name}</td><td>${c.queue}</td><td>${state(c.state)}</td><td>${when(ctx, c.created_at)}</td></tr>`)}</tbody></table>`);
  }

  const attemptsHtml = d.attempts === null
    ? html`<p class="note">Attempt ${t.attempts} of ${t.max_attempts}${t.worker_name ? html` on worker ${t.worker_name}` : t.worker_id ? html` on worker <span class="mono">${t.worker_id}</span>` : ""}. (This schema keeps no attempt history: apply the dashboard migration.)</p>`
    : d.attempts.length === 0 && t.state !== "running"
      ? html`<p class="note">No attempt has ended yet.</p>`
      : html`<table id="attempts"><thead><tr><th class="num">Attempt</th><th>Worker</th><th>Started</th><th>Took</th><th>Ended as</th><th>Error</th></tr></thead><tbody>
${d.attempts.map((a) => html`<tr><td class="num">${a.attempt}</td><td>${a.worker_name ?? html`<span class="mono muted">${a.worker_id ? a.worker_id.slice(0, 8) : "-"}</span>`}</td><td>${whenFull(ctx, a.started_at)}</td><td class="num">${a.started_at ? age((a.ended_at.getTime() - a.started_at.getTime()) / 1000) : "-"}</td><td>${state(a.outcome)}</td><td class="clip">${a.error ? html`${a.error.name ?? "Error"}: ${a.error.message ?? ""}` : ""}</td></tr>`)}
${t.state === "running" ? html`<tr><td class="num">${t.attempts}</td><td>${t.worker_name ?? html`<span class="mono muted">${t.worker_id?.slice(0, 8) ?? "-"}</span>`}</td><td>${whenFull(ctx, t.started_at)}</td><td class="num">${t.started_at ? age((ctx.now - t.started_at.getTime()) / 1000) : "-"}</td><td>${state("running")}</td><td></td></tr>` : ""}
</tbody></table>`;

  const live = html`<div class="actions">${actions}</div>
<div class="grid2">
<section>
<h2>Task</h2>
<dl class="props" id="props">
  <dt>State</dt><dd id="task-state">${state(t.state)}</dd>
  <dt>Name</dt><dd><a href="${ctx.base}tasks${query({ name: t.name })}">${t.name}</a></dd>
  <dt>Queue</dt><dd><a href="${ctx.base}tasks${query({ queue: t.queue })}">${t.queue}</a></dd>
  <dt>Priority</dt><dd>${t.priority}</dd>
  <dt>Attempts</dt><dd>${t.attempts} of ${t.max_attempts}</dd>
  <dt>Created</dt><dd>${whenFull(ctx, t.created_at)}</dd>
  <dt>Runs at</dt><dd>${whenFull(ctx, t.run_at)}</dd>
  <dt>Started</dt><dd>${whenFull(ctx, t.started_at)}</dd>
  <dt>Finished</dt><dd>${whenFull(ctx, t.finished_at)}</dd>
  <dt>Worker</dt><dd>${t.worker_name ?? (t.worker_id ? html`<span class="mono">${t.worker_id}</span>` : html`<span class="muted">-</span>`)}${t.lease_until ? html` <span class="muted">(lease until ${iso(t.lease_until)})</span>` : ""}</dd>
  ${t.timeout_ms !== null ? html`<dt>Timeout</dt><dd>${age(t.timeout_ms / 1000)}</dd>` : ""}
  ${t.key !== null ? html`<dt>Dedup key</dt><dd class="mono">${t.key}</dd>` : ""}
  ${t.parent_id ? html`<dt>Parent</dt><dd>${taskLink(ctx, t.parent_id)}</dd>` : ""}
  ${t.group_id ? html`<dt>Group</dt><dd><a class="mono" href="${ctx.base}workflows/groups/${seg(t.group_id)}">${t.group_id}</a></dd>` : ""}
  ${t.chord_id ? html`<dt>Chord</dt><dd><a class="mono" href="${ctx.base}workflows/chords/${seg(t.chord_id)}">${t.chord_id}</a></dd>` : ""}
</dl>
${progress ? html`<h2>Progress</h2>${jsonBlock(progress as Json, "progress", `${base}/progress.json`)}` : ""}
</section>
<section>
${t.error ? html`<h2>${t.state === "succeeded" ? "Last error" : "Error"}</h2>${errorBlock(t.error, "error")}` : ""}
${t.state === "succeeded" ? html`<h2>Result</h2>${jsonBlock(t.result, "result", `${base}/result.json`)}` : ""}
<h2>Arguments</h2>
${jsonBlock(t.args, "args", `${base}/args.json`)}
<h2>Headers</h2>
${jsonBlock(t.headers, "headers", `${base}/headers.json`)}
</section>
</div>
${workflow.length ? html`<h2>Workflow</h2><div id="workflow">${workflow}</div>` : ""}
<h2>Attempts</h2>
${attemptsHtml}
<h2>Logs</h2>
${d.logs && d.logs.length > 0
    ? html`<table id="logs"><thead><tr><th>At</th><th class="num">Attempt</th><th>Level</th><th>Message</th><th>Fields</th></tr></thead><tbody>
${d.logs.map((l) => html`<tr class="log-${levelName(l.level)}"><td class="mono">${iso(l.at)}</td><td class="num">${l.attempt ?? ""}</td><td>${levelName(l.level)}</td><td class="log-message">${l.message}</td><td class="mono clip">${Object.keys(l.fields).length ? JSON.stringify(l.fields) : ""}</td></tr>`)}
</tbody></table>${d.logs.length >= 1000 ? html`<p class="note">The first 1,000 lines.</p>` : ""}`
    : html`<p class="note">${d.logs === null ? "This database keeps no task logs." : "No log lines stored for this task."} A handler's <code>ctx.log</code> lines go to its worker's log, tagged <code>taskId=${t.id}</code>; they are kept here too when the app also sends its log to <code>taskLogStream()</code> (docs/dashboard.md).</p>`}
${d.audit.length ? html`<h2>Operator actions</h2><table id="task-audit"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Outcome</th></tr></thead><tbody>${d.audit.map((a) => html`<tr><td>${whenFull(ctx, a.at)}</td><td>${a.actor}</td><td>${a.action}</td><td>${a.outcome}</td></tr>`)}</tbody></table>` : ""}`;

  const watch = [t.id, ...d.after.filter((s) => s.id).map((s) => s.id!), ...d.children.filter((c) => !FINAL.has(c.state)).map((c) => c.id)];
  return {
    title: `Task ${t.id} ${t.name}`,
    nav: "tasks",
    head: html`<h1>Task ${t.id} <span class="sub">${t.name}</span></h1>`,
    live,
    watch,
  };
}

// ---------------------------------------------------------------------------------------------
// Workflows
// ---------------------------------------------------------------------------------------------

function chordProgress(c: { completed: number; total: number }): Html {
  return html`<span class="chord-count">${c.completed} of ${c.total}</span> <progress max="${Math.max(1, c.total)}" value="${c.completed}"></progress>`;
}

export function workflowsPage(ctx: PageContext, chords: ChordRow[], groups: GroupRow[]): Page {
  const chordRows = chords.map(
    (c) => html`<tr data-chord="${c.chord_id}">
  <td class="mono"><a href="${ctx.base}workflows/chords/${seg(c.chord_id)}">${c.chord_id.slice(0, 8)}</a></td>
  <td>${chordProgress(c)}${c.failed > 0 ? html` <span class="hot">${c.failed} failed</span>` : ""}</td>
  <td>${state(c.state)}</td>
  <td>${c.callback_name ?? c.callback_kind ?? ""} ${c.callback_id ? taskLink(ctx, c.callback_id) : ""}</td>
  <td>${when(ctx, c.created_at)}</td>
  <td>${c.finished_at ? when(ctx, c.finished_at) : ""}</td>
</tr>`,
  );
  const groupRows = groups.map(
    (g) => html`<tr data-group="${g.group_id}">
  <td class="mono"><a href="${ctx.base}workflows/groups/${seg(g.group_id)}">${g.group_id.slice(0, 8)}</a></td>
  <td class="num">${g.total}</td>
  <td class="num">${n(g.succeeded)}</td>
  <td class="num">${n(g.running)}</td>
  <td class="num">${n(g.failed, undefined, true)}</td>
  <td class="num">${n(g.cancelled)}</td>
  <td>${g.chord_id ? html`header of <a href="${ctx.base}workflows/chords/${seg(g.chord_id)}">chord ${g.chord_id.slice(0, 8)}</a>` : ""}</td>
  <td>${when(ctx, g.created_at)}</td>
</tr>`,
  );
  const live = html`<h2>Chords</h2>
${chords.length ? html`<table id="chords"><thead><tr><th>Chord</th><th>Members done</th><th>State</th><th>Callback</th><th>Created</th><th>Finished</th></tr></thead><tbody>${chordRows}</tbody></table>` : empty("No chords.")}
<h2>Groups</h2>
${groups.length ? html`<table id="groups"><thead><tr><th>Group</th><th class="num">Members</th><th class="num">Succeeded</th><th class="num">Running</th><th class="num">Failed</th><th class="num">Cancelled</th><th></th><th>Created</th></tr></thead><tbody>${groupRows}</tbody></table>` : empty("No groups among the newest 100,000 tasks.")}
<p class="note">Chains have no row of their own: a task's page shows the chain it belongs to, step by step.</p>`;
  return { title: "Workflows", nav: "workflows", head: html`<h1>Workflows</h1>`, live };
}

function membersTable(ctx: PageContext, members: MemberRow[], chord: boolean): Html {
  return html`<table id="members"><thead><tr>${chord ? html`<th class="num">#</th>` : ""}<th class="num">Id</th><th>Name</th><th>Queue</th><th>State</th><th class="num">Attempts</th><th>Finished</th><th>Error</th></tr></thead><tbody>
${members.map((m) => html`<tr data-id="${m.id}">${chord ? html`<td class="num">${m.chord_index ?? ""}</td>` : ""}<td class="num mono">${taskLink(ctx, m.id, m.id)}</td><td>${m.name}</td><td>${m.queue}</td><td>${state(m.state)}</td><td class="num">${m.attempts}/${m.max_attempts}</td><td>${when(ctx, m.finished_at)}</td><td class="clip">${m.error_name ? html`<span class="hot">${m.error_name}</span>: ${m.error_message}` : ""}</td></tr>`)}
</tbody></table>`;
}

export function chordPage(ctx: PageContext, c: ChordDetails, members: MemberRow[]): Page {
  const live = html`<dl class="props" id="chord">
  <dt>Members done</dt><dd id="chord-progress">${chordProgress(c)}</dd>
  <dt>State</dt><dd id="chord-state">${state(c.state)}</dd>
  ${c.failed > 0 ? html`<dt>Failed members</dt><dd class="hot">${c.failed}</dd>` : ""}
  <dt>Callback</dt><dd id="chord-callback">${c.callback_name ?? c.callback_kind ?? ""} ${c.callback_id ? html`${taskLink(ctx, c.callback_id)} ${state(c.callback_state)}` : html`<span class="muted">runs when all ${c.total} members have succeeded</span>`}</dd>
  ${c.parent_id ? html`<dt>Enqueued by</dt><dd>${taskLink(ctx, c.parent_id)}</dd>` : ""}
  <dt>Created</dt><dd>${whenFull(ctx, c.created_at)}</dd>
  <dt>Finished</dt><dd>${whenFull(ctx, c.finished_at)}</dd>
</dl>
<h2>Members</h2>
${members.length ? membersTable(ctx, members, true) : empty("No members.")}`;
  const watch = [...members.filter((m) => !FINAL.has(m.state)).map((m) => m.id), ...(c.callback_id ? [c.callback_id] : [])];
  return {
    title: `Chord ${c.chord_id.slice(0, 8)}`,
    nav: "workflows",
    head: html`<h1>Chord <span class="sub mono">${c.chord_id}</span></h1>`,
    live,
    watch,
  };
}

export function groupPage(ctx: PageContext, groupId: string, members: MemberRow[]): Page {
  const done = members.filter((m) => m.state === "succeeded").length;
  const live = html`<p id="group-progress">${done} of ${members.length} members succeeded.</p>
${members.length ? membersTable(ctx, members, false) : empty("No members: the group's tasks were deleted, or the id is wrong.")}`;
  return {
    title: `Group ${groupId.slice(0, 8)}`,
    nav: "workflows",
    head: html`<h1>Group <span class="sub mono">${groupId}</span></h1>`,
    live,
    watch: members.filter((m) => !FINAL.has(m.state)).map((m) => m.id),
  };
}

// ---------------------------------------------------------------------------------------------
// Schedules, workers, audit
// ---------------------------------------------------------------------------------------------

export function schedulesPage(ctx: PageContext, schedules: ScheduleInfo[]): Page {
  const rows = schedules.map(
    (s) => html`<tr data-schedule="${s.name}">
  <td>${s.name}</td>
  <td><a href="${ctx.base}tasks${query({ name: s.task })}">${s.task}</a></td>
  <td class="mono">${s.cron ?? `every ${s.every}`} <span class="muted">${s.timezone}</span></td>
  <td>${s.queue}</td>
  <td data-col="status">${s.enabled ? html`<span class="state succeeded">running</span>` : html`<span class="state paused">paused</span>`}</td>
  <td>${s.enabled ? whenFull(ctx, s.next_run_at) : html`<span class="muted">-</span>`}</td>
  <td>${whenFull(ctx, s.last_run_at)}</td>
  <td class="mono clip">${JSON.stringify(s.args)}</td>
  <td>${s.enabled
      ? action(ctx, `schedules/${seg(s.name)}/pause`, "Pause", `Pause schedule ${s.name}? No tick fires until it is resumed.`)
      : action(ctx, `schedules/${seg(s.name)}/resume`, "Resume", `Resume schedule ${s.name}? It fires from its next tick; ticks missed while paused are not caught up.`)}</td>
</tr>`,
  );
  const live = schedules.length
    ? html`<table id="schedules"><thead><tr><th>Name</th><th>Task</th><th>When</th><th>Queue</th><th>Status</th><th>Next tick</th><th>Last tick</th><th>Arguments</th><th></th></tr></thead><tbody>${rows}</tbody></table>`
    : empty("No schedules. Define them in code with jobs.schedule(...) or add one with pgjobs schedule add.");
  return { title: "Schedules", nav: "schedules", head: html`<h1>Schedules</h1>`, live };
}

export function workersPage(ctx: PageContext, workers: WorkerRow[], running: WorkerTaskRow[]): Page {
  const by = new Map<string, WorkerTaskRow[]>();
  for (const r of running) {
    const list = by.get(r.worker_id) ?? [];
    list.push(r);
    by.set(r.worker_id, list);
  }
  const rows = workers.map((w) => {
    const tasks = by.get(w.id) ?? [];
    const alive = w.heartbeat_age_s < 60;
    return html`<tr data-worker="${w.id}">
  <td>${w.name}<div class="muted mono">${w.id.slice(0, 8)}</div></td>
  <td>${w.hostname}</td>
  <td class="num">${w.pid}</td>
  <td>${w.queues.map((q, i) => html`${i ? ", " : ""}<a href="${ctx.base}tasks${query({ queue: q })}">${q}</a>`)}</td>
  <td class="num">${w.running} / ${w.concurrency}</td>
  <td>${alive ? html`<span class="state succeeded">alive</span>` : html`<span class="state failed">silent</span>`} <span class="muted">${age(w.heartbeat_age_s)} ago</span></td>
  <td>${when(ctx, w.started_at)}</td>
  <td>${tasks.length ? tasks.map((t) => html`<div>${taskLink(ctx, t.id)} ${t.name} <span class="muted">attempt ${t.attempts}, for ${t.started_at ? age((ctx.now - t.started_at.getTime()) / 1000) : "-"}</span></div>`) : html`<span class="muted">idle</span>`}</td>
</tr>`;
  });
  const live = workers.length
    ? html`<table id="workers"><thead><tr><th>Worker</th><th>Host</th><th class="num">Pid</th><th>Queues</th><th class="num">Running</th><th>Heartbeat</th><th>Started</th><th>Running now</th></tr></thead><tbody>${rows}</tbody></table>
<p class="note">A worker silent for longer than its lease has crashed or lost its connection: its tasks run again once their leases lapse.</p>`
    : empty("No workers registered. Start one with pgjobs worker --app ./dist/tasks.js.");
  return { title: "Workers", nav: "workers", head: html`<h1>Workers</h1>`, live };
}

export function auditPage(ctx: PageContext, rows: AuditRow[], older: string | null, target: string | null): Page {
  const link = (a: AuditRow) =>
    a.action.startsWith("task.") && a.outcome !== "refused" && a.action !== "task.delete"
      ? taskLink(ctx, a.target)
      : a.action.startsWith("task.")
        ? html`<span class="mono">#${a.target}</span>`
        : a.action.startsWith("queue.")
          ? html`queue <a href="${ctx.base}tasks${query({ queue: a.target })}">${a.target}</a>`
          : html`schedule ${a.target}`;
  const body = rows.map(
    (a) => html`<tr data-audit="${a.id}">
  <td>${whenFull(ctx, a.at)}</td>
  <td>${a.actor}</td>
  <td class="mono">${a.address ?? ""}</td>
  <td>${a.action}</td>
  <td>${link(a)}</td>
  <td><span class="state ${a.outcome === "refused" ? "failed" : a.outcome === "done" ? "succeeded" : ""}">${a.outcome}</span></td>
  <td class="clip">${typeof a.detail.reason === "string" ? a.detail.reason : Object.keys(a.detail).length ? JSON.stringify(a.detail) : ""}</td>
</tr>`,
  );
  const live = rows.length
    ? html`<table id="audit"><thead><tr><th>When</th><th>Who</th><th>From</th><th>Action</th><th>Target</th><th>Outcome</th><th>Detail</th></tr></thead><tbody>${body}</tbody></table>
${older ? html`<div class="pager"><a href="${ctx.base}audit${query({ before: older, target })}">Older →</a></div>` : ""}`
    : empty("No actions yet.");
  return {
    title: "Audit",
    nav: "audit",
    head: html`<h1>Audit log</h1><p class="note">Every action taken here, who took it and when: <code>select * from jobs.audit order by id desc</code>.</p>`,
    live,
  };
}

// ---------------------------------------------------------------------------------------------
// Whole pages outside the layout's live region
// ---------------------------------------------------------------------------------------------

export function messagePage(ctx: PageContext, title: string, message: string): Page {
  return { title, nav: "", head: html`<h1>${title}</h1>`, live: html`<p>${message}</p><p><a href="${ctx.base}">Back to the overview</a></p>` };
}

/** Asked when an action's form is sent without script (htmx asks with a dialog instead). */
export function confirmPage(ctx: PageContext, path: string, question: string): Page {
  return {
    title: "Confirm",
    nav: "",
    head: html`<h1>Confirm</h1>`,
    live: html`<p>${question}</p><form method="post" action="${ctx.base}${path}"><input type="hidden" name="_csrf" value="${ctx.csrf}"><input type="hidden" name="confirmed" value="1"><button type="submit" class="primary">Yes</button> <a href="${ctx.base}">No, back to the overview</a></form>`,
  };
}

export function loginPage(base: string, csrf: string, wrong: boolean): Html {
  const a = assets();
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · pgjobs</title><link rel="stylesheet" href="${base}assets/${a.get("dashboard.css")!.hash}/dashboard.css"></head>
<body><form class="login" method="post" action="${base}login">
<h1>pgjobs dashboard</h1>
<p class="note">${wrong ? "That token is not the dashboard's." : "This dashboard needs its access token (pgjobs dashboard --token)."}</p>
<input type="hidden" name="_csrf" value="${csrf}">
<label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button type="submit" class="primary">Sign in</button>
</form></body></html>
`;
}
