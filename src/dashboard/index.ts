/**
 * The web dashboard: see and steer queues, tasks, workflows, schedules and workers from a
 * browser. A plain `(req, res)` handler, so it runs under `pgjobs dashboard` (node:http, see
 * server.ts) or inside an app's own server, under a path prefix:
 *
 * ```ts
 * import { createServer } from "node:http";
 * import { createDashboard } from "pgjobs";
 * const dashboard = createDashboard({ jobs, prefix: "/admin/jobs", token: process.env.DASHBOARD_TOKEN });
 * createServer((req, res) => req.url?.startsWith("/admin/jobs") ? dashboard(req, res) : app(req, res)).listen(3000);
 * // Express: app.use("/admin/jobs", dashboard)      (give the same prefix: links are built from it)
 * // on shutdown: await dashboard.close();
 * ```
 *
 * Pages are HTML rendered here, enhanced by htmx (served from its npm package) and a small
 * script that turns server-sent events into refreshes of each page's live region.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type pg from "pg";
import { parseTaskId } from "../admin.js";
import { createJobs, type Jobs } from "../client.js";
import { toMs, type Duration } from "../duration.js";
import { InvalidInputError, PgJobsError } from "../errors.js";
import { validateQueue, validateSchema } from "../identifiers.js";
import type { Json } from "../json.js";
import type { Logger } from "../logger.js";
import { createMetrics, type MetricsOptions } from "../metrics.js";
import { ACTIONS, checkTarget, perform, type ActionName } from "./actions.js";
import { assets } from "./assets.js";
import { authenticate, checkToken, cookieValue, COOKIE, Csrf, hostAllowed, parseBasicAuth, type AuthConfig, type BasicAuth } from "./auth.js";
import { DashboardData, PAGE_SIZE, type ChordRow, type StepRow, type TaskFilter } from "./data.js";
import { LiveHub } from "./live.js";
import {
  auditPage, chordPage, confirmPage, groupPage, layout, liveContent, loginPage, messagePage, overviewPage, schedulesPage, TASK_STATES,
  taskPage, tasksPage, workersPage, workflowsPage, type Page, type PageContext, type TaskPageData,
} from "./pages.js";

export interface DashboardOptions {
  /** A Jobs instance to use (its pool, schema and LISTEN connection). Or give `pool` or `connectionString`. */
  jobs?: Jobs;
  /** A node-postgres pool (not ended by close()). */
  pool?: pg.Pool;
  connectionString?: string;
  /** Schema of pgjobs' tables, with `pool` or `connectionString`. Default "jobs". */
  schema?: string;
  /** The path the dashboard is served under, e.g. "/admin/jobs". Default: the root. */
  prefix?: string;
  /** Hide every action and refuse it (403). */
  readOnly?: boolean;
  /** Require this token (at least 16 characters): `Authorization: Bearer`, the sign-in form, or `?token=`. */
  token?: string;
  /** Require HTTP basic auth: "user:password" or { username, password }. */
  basicAuth?: string | BasicAuth;
  /** Who the audit log names for a request (e.g. your app's session user). Default: the basic-auth user, "token", or "anonymous". */
  actor?: (req: IncomingMessage) => string | undefined | null;
  /** Host names (without port) requests may address; others get 421. Default: any. */
  allowedHosts?: string[];
  /** The slow poll: how often open pages refresh when no notification came. Default 5 s. */
  pollInterval?: Duration;
  /** The fewest milliseconds between two refreshes of one page. Default 1000. */
  minRefreshInterval?: number;
  /**
   * Serve Prometheus metrics at `<prefix>/metrics`, behind the same sign-in (a scraper sends the
   * token as `Authorization: Bearer`): per-queue counts and the oldest ready task's age from SQL
   * (cached 5 s), and this process's pool. Options as createMetrics takes them. Default true;
   * false serves none.
   */
  metrics?: boolean | MetricsOptions;
  logger?: Logger;
}

/** A `(req, res)` handler with a `close()` that ends live streams and what the dashboard opened. */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** "/admin/jobs/" or "/". */
  readonly base: string;
  readonly readOnly: boolean;
  /** Open live streams (server-sent events). */
  readonly streams: number;
  close(): Promise<void>;
}

const SECURITY_HEADERS: Record<string, string> = {
  // No inline script or style anywhere: whatever a task's arguments contain cannot run.
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const ACTION_RE = /^(tasks|queues|schedules)\/([^/]+)\/(retry|cancel|delete|pause|resume)$/;
const JSON_FIELDS = new Set(["args", "result", "error", "headers", "progress", "workflow"]);
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_FORM_BYTES = 16 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Create the dashboard's handler.
 *
 * ```ts
 * const dashboard = createDashboard({ jobs, prefix: "/jobs", readOnly: true });
 * http.createServer(dashboard).listen(4545, "127.0.0.1");
 * ```
 */
export function createDashboard(options: DashboardOptions): DashboardHandler {
  const prefix = normalizePrefix(options.prefix ?? "");
  const base = `${prefix}/`;
  const readOnly = options.readOnly === true;
  const auth: AuthConfig = {
    token: checkToken(options.token),
    basic: parseBasicAuth(options.basicAuth),
    allowedHosts: options.allowedHosts ? options.allowedHosts.map((h) => h.toLowerCase()) : null,
  };
  let ownJobs = false;
  let jobs: Jobs;
  if (options.jobs) jobs = options.jobs;
  else if (options.pool || options.connectionString) {
    jobs = createJobs({
      ...(options.pool ? { pool: options.pool } : { connectionString: options.connectionString!, poolSize: 5 }),
      schema: validateSchema(options.schema ?? "jobs"),
      ...(options.logger ? { logger: options.logger } : { logLevel: "warn" }),
    });
    ownJobs = true;
  } else {
    throw new InvalidInputError("createDashboard needs jobs, a pool or a connectionString: e.g. createDashboard({ jobs })");
  }
  const log = options.logger ?? jobs.log;
  const data = new DashboardData(jobs.pool, jobs.schema);
  const metrics = options.metrics === false ? null : createMetrics(jobs, typeof options.metrics === "object" ? options.metrics : {});
  const csrf = new Csrf();
  // The sign-in form has a token of its own: the actions' token is shown to signed-in users only.
  const loginCsrf = new Csrf();
  const hub = new LiveHub({
    pool: jobs.pool,
    schema: jobs.schema,
    listener: () => jobs.listener(),
    log,
    pollMs: toMs(options.pollInterval ?? 5_000, "pollInterval"),
    minGapMs: options.minRefreshInterval ?? 1_000,
  });
  let closed = false;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    const url = new URL(req.url ?? "/", "http://dashboard.invalid");
    let path = url.pathname;
    // Under node:http the prefix is still on the path; Express' app.use(prefix, ...) strips it.
    if (prefix && (path === prefix || path.startsWith(base))) path = path.slice(prefix.length);
    if (path === "" ) {
      res.writeHead(301, { location: base + url.search }).end();
      return;
    }
    path = path.slice(1);
    const method = req.method ?? "GET";

    if (!hostAllowed(req, auth)) {
      // Not one of our names: a DNS-rebinding page, or a misconfigured proxy.
      send(res, 421, "text/plain; charset=utf-8", "pgjobs dashboard: this server does not answer for that host name\n");
      return;
    }
    if ((method === "GET" || method === "HEAD") && path.startsWith("assets/")) return serveAsset(req, res, path.slice("assets/".length));
    if (closed) {
      send(res, 503, "text/plain; charset=utf-8", "pgjobs dashboard: shutting down\n");
      return;
    }

    if (method === "POST" && path === "login") return login(req, res);
    const queryToken = url.searchParams.get("token");
    const who = authenticate(req, auth, queryToken);
    if (!who.ok) return unauthorized(req, res, who.reason === "wrong");
    if (queryToken !== null && auth.token) {
      // Opened with ?token=: keep it in a cookie and drop it from the address bar and history.
      url.searchParams.delete("token");
      res.setHeader("set-cookie", cookieHeader(req, auth.token));
      res.writeHead(303, { location: `${base}${path}${url.search}` }).end();
      return;
    }
    const actor = options.actor?.(req) ?? who.actor ?? "anonymous";

    const ctx: PageContext = {
      base,
      csrf: csrf.token,
      readOnly,
      self: `${path}${url.search}`,
      now: Date.now(),
    };

    if (method === "POST") {
      const m = ACTION_RE.exec(path);
      if (!m) throw new HttpError(404, "no such action");
      return act(req, res, ctx, m, actor);
    }
    if (method !== "GET" && method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD, POST");
      throw new HttpError(405, `method ${method} is not allowed`);
    }
    if (path === "metrics" && metrics) return metrics.handler(req, res);
    if (path === "events") {
      const watch = (url.searchParams.get("watch") ?? "").split(",").filter((id) => /^\d{1,19}$/.test(id)).slice(0, 200);
      return hub.open(res, watch);
    }
    const tm = /^tasks\/([^/]+)\/(\w+)\.json$/.exec(path);
    if (tm && JSON_FIELDS.has(tm[2]!)) return rawJson(res, tm[1]!, tm[2]!);

    const page = await route(path, url.searchParams, ctx, res);
    if (!page) return;
    const fragment = req.headers["hx-request"] === "true" && req.headers["hx-target"] === "live";
    send(res, 200, "text/html; charset=utf-8", (fragment ? liveContent(page) : layout(ctx, page)).value, method === "HEAD");
  };

  async function route(path: string, q: URLSearchParams, ctx: PageContext, res: ServerResponse): Promise<Page | null> {
    if (path === "") {
      const [{ queues, throughput }, workers] = await Promise.all([data.overview(), data.workers()]);
      return overviewPage(ctx, queues, throughput, workers);
    }
    if (path === "tasks") {
      const find = q.get("id")?.trim();
      if (find) {
        if (UUID_RE.test(find)) {
          const chord = await data.chord(find);
          res.writeHead(303, { location: `${base}workflows/${chord ? "chords" : "groups"}/${find}` }).end();
          return null;
        }
        res.writeHead(303, { location: `${base}tasks/${parseTaskIdOr400(find)}` }).end();
        return null;
      }
      const f = taskFilter(q);
      const before = q.get("before") ? parseTaskIdOr400(q.get("before")!) : null;
      const after = before === null && q.get("after") ? parseTaskIdOr400(q.get("after")!) : null;
      const rows = await data.tasks(f, { before, after });
      const first = rows[0]?.id ?? null;
      const last = rows[rows.length - 1]?.id ?? null;
      let newer: string | null = null;
      let older: string | null = null;
      if (rows.length > 0) {
        if (before !== null || after !== null) newer = (await data.hasMore(f, "newer", first!)) ? first : null;
        older = rows.length === PAGE_SIZE || after !== null ? ((await data.hasMore(f, "older", last!)) ? last : null) : null;
      } else if (after !== null) older = after;
      return tasksPage(ctx, f, rows, { newer, older });
    }
    const tp = /^tasks\/([^/]+)$/.exec(path);
    if (tp) return taskPage(ctx, await taskPageData(parseTaskIdOr400(decodeURIComponent(tp[1]!))));
    if (path === "workflows") {
      const [chords, groups] = await Promise.all([data.chords(), data.groups()]);
      return workflowsPage(ctx, chords, groups);
    }
    const wc = /^workflows\/(chords|groups)\/([^/]+)$/.exec(path);
    if (wc) {
      const id = decodeURIComponent(wc[2]!);
      if (!UUID_RE.test(id)) throw new HttpError(400, `${JSON.stringify(id)} is not a ${wc[1] === "chords" ? "chord" : "group"} id (a UUID)`);
      if (wc[1] === "chords") {
        const chord = await data.chord(id);
        if (!chord) throw new HttpError(404, `no chord ${id}`);
        return chordPage(ctx, chord, await data.members(chord.group_id));
      }
      return groupPage(ctx, id, await data.members(id));
    }
    if (path === "schedules") return schedulesPage(ctx, await data.schedules());
    if (path === "workers") {
      const [workers, running] = await Promise.all([data.workers(), data.workerTasks()]);
      return workersPage(ctx, workers, running);
    }
    if (path === "audit") {
      const before = q.get("before") ? parseTaskIdOr400(q.get("before")!) : null;
      const target = q.get("target") || null;
      const rows = await data.audit(before, target);
      const older = rows.length === PAGE_SIZE ? rows[rows.length - 1]!.id : null;
      return auditPage(ctx, rows, older, target);
    }
    throw new HttpError(404, `no page ${JSON.stringify(`/${path}`)}`);
  }

  async function taskPageData(id: string): Promise<TaskPageData> {
    let task;
    try {
      task = await data.task(id);
    } catch (err) {
      if (err instanceof InvalidInputError) throw new HttpError(404, err.message);
      throw err;
    }
    const wf = (task.workflow ?? {}) as { next?: CanvasNode; report?: { chord?: string } };
    const after = wf.next ? chainSteps(wf.next) : [];
    const chordId = task.chord_id ?? wf.report?.chord ?? null;
    const [children, before, attempts, logs, afterRows, chord, audit] = await Promise.all([
      data.children(id),
      task.parent_id ? data.chainBefore(id) : Promise.resolve([] as StepRow[]),
      data.attempts(id),
      data.logs(id),
      data.tasksById(after.filter((s) => s.id !== null).map((s) => s.id!)),
      chordId && UUID_RE.test(chordId) ? data.chord(chordId) : Promise.resolve(undefined),
      data.audit(null, id, 20),
    ]);
    const rowsById = new Map(afterRows.map((r) => [r.id, r]));
    return {
      task,
      children,
      before,
      after: after.map((s) => ({ ...s, ...(s.id && rowsById.has(s.id) ? { row: rowsById.get(s.id)! } : {}) })),
      attempts,
      logs,
      chord: (chord as ChordRow | undefined) ?? null,
      audit,
    };
  }

  async function rawJson(res: ServerResponse, idText: string, field: string): Promise<void> {
    const id = parseTaskIdOr400(decodeURIComponent(idText));
    let task;
    try {
      task = await data.task(id);
    } catch (err) {
      if (err instanceof InvalidInputError) throw new HttpError(404, err.message);
      throw err;
    }
    const value = (task as unknown as Record<string, Json>)[field] ?? null;
    res.setHeader("content-disposition", `inline; filename="task-${id}-${field}.json"`);
    send(res, 200, "application/json; charset=utf-8", JSON.stringify(value, null, 2));
  }

  async function act(req: IncomingMessage, res: ServerResponse, ctx: PageContext, m: RegExpExecArray, actor: string): Promise<void> {
    const kind = m[1] === "tasks" ? "task" : m[1] === "queues" ? "queue" : "schedule";
    const name = `${kind}.${m[3]}` as ActionName;
    if (!(ACTIONS as readonly string[]).includes(name)) throw new HttpError(404, `no action ${m[3]} for a ${kind}`);
    if (readOnly) throw new HttpError(403, "this dashboard is read-only (--read-only): actions are refused");
    const form = await readForm(req);
    const why = csrf.check(req, form.get("_csrf") ?? undefined);
    if (why !== null) throw new HttpError(403, `refused a cross-site or forged request (${why})`);
    let target: string;
    try {
      target = checkTarget(name, decodeURIComponent(m[2]!));
    } catch (err) {
      if (err instanceof PgJobsError) throw new HttpError(400, err.message);
      throw err;
    }
    const back = kind === "task" ? (name === "task.delete" ? "tasks" : `tasks/${target}`) : kind === "queue" ? "" : "schedules";
    const htmx = req.headers["hx-request"] === "true";
    if (!htmx && form.get("confirmed") !== "1") {
      const page = confirmPage(ctx, `${m[1]}/${m[2]}/${m[3]}`, `${m[3]![0]!.toUpperCase()}${m[3]!.slice(1)} ${kind} ${target}?`);
      send(res, 200, "text/html; charset=utf-8", layout(ctx, page).value);
      return;
    }
    const out = await perform(jobs.pool, jobs.schema, name, target, { actor, address: req.socket.remoteAddress ?? null });
    data.invalidate();
    hub.broadcast();
    const status = out.outcome === "refused" ? 409 : 200;
    if (htmx) {
      // The task's page is gone: go to the list rather than refresh a page that answers 404.
      if (name === "task.delete" && out.outcome === "done") res.setHeader("hx-redirect", `${base}tasks`);
      res.setHeader("hx-trigger", asciiJson({ "pgjobs:change": true, "pgjobs:flash": { text: out.message, level: out.outcome === "refused" ? "error" : "ok" } }));
      send(res, status, "text/plain; charset=utf-8", `${out.message}\n`);
      return;
    }
    if (out.outcome === "refused") {
      send(res, status, "text/html; charset=utf-8", layout(ctx, messagePage(ctx, "Refused", out.message)).value);
      return;
    }
    res.writeHead(303, { location: `${base}${back}` }).end();
  }

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    const why = loginCsrf.check(req, form.get("_csrf") ?? undefined);
    if (why !== null) throw new HttpError(403, `refused a cross-site or forged request (${why})`);
    if (!auth.token) {
      res.writeHead(303, { location: base }).end();
      return;
    }
    const who = authenticate({ headers: { authorization: `Bearer ${form.get("token") ?? ""}` } } as IncomingMessage, { ...auth, basic: null }, null);
    if (!who.ok) {
      send(res, 401, "text/html; charset=utf-8", loginPage(base, loginCsrf.token, true).value);
      return;
    }
    res.setHeader("set-cookie", cookieHeader(req, auth.token));
    res.writeHead(303, { location: base }).end();
  }

  function unauthorized(req: IncomingMessage, res: ServerResponse, wrong: boolean): void {
    if (auth.basic) res.setHeader("www-authenticate", 'Basic realm="pgjobs dashboard", charset="UTF-8"');
    else res.setHeader("www-authenticate", 'Bearer realm="pgjobs dashboard"');
    const wantsHtml = (req.headers.accept ?? "").includes("text/html") && req.method === "GET";
    if (wantsHtml && auth.token) {
      send(res, 401, "text/html; charset=utf-8", loginPage(base, loginCsrf.token, wrong).value);
      return;
    }
    send(res, 401, "text/plain; charset=utf-8", "pgjobs dashboard: credentials required\n");
  }

  function cookieHeader(req: IncomingMessage, token: string): string {
    const secure = (req.socket as { encrypted?: boolean }).encrypted || req.headers["x-forwarded-proto"] === "https";
    return `${COOKIE}=${cookieValue(token)}; Path=${base}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
  }

  function serveAsset(req: IncomingMessage, res: ServerResponse, rest: string): void {
    const [hash, file] = rest.split("/");
    const a = file ? assets().get(file) : undefined;
    if (!a) {
      send(res, 404, "text/plain; charset=utf-8", "not found\n");
      return;
    }
    // The hash in the URL changes with the content: cache for a year.
    res.setHeader("cache-control", hash === a.hash ? "public, max-age=31536000, immutable" : "no-cache");
    res.setHeader("vary", "accept-encoding");
    const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    const body = gzip ? a.gzip : a.body;
    res.writeHead(200, { "content-type": a.type, "content-length": body.length, ...(gzip ? { "content-encoding": "gzip" } : {}) });
    res.end(req.method === "HEAD" ? undefined : body);
  }

  function taskFilter(q: URLSearchParams): TaskFilter {
    const queue = q.get("queue")?.trim() || null;
    const st = q.get("state")?.trim() || null;
    const name = q.get("name")?.trim() || null;
    try {
      if (queue !== null) validateQueue(queue);
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    if (st !== null && !(TASK_STATES as readonly string[]).includes(st)) throw new HttpError(400, `unknown state ${JSON.stringify(st)}: use one of ${TASK_STATES.join(", ")}`);
    return { queue, state: st, name, from: parseTime(q.get("from"), "from"), to: parseTime(q.get("to"), "to") };
  }

  const handler = ((req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof HttpError ? err.message : "the dashboard failed to answer: see its log";
      if (status === 500) log.error({ err }, "dashboard request failed");
      const ctx: PageContext = { base, csrf: csrf.token, readOnly, self: "", now: Date.now() };
      if (req.headers["hx-request"] === "true") {
        res.setHeader("hx-trigger", asciiJson({ "pgjobs:flash": { text: message, level: "error" } }));
        send(res, status, "text/plain; charset=utf-8", `${message}\n`);
      } else if ((req.headers.accept ?? "").includes("text/html")) {
        send(res, status, "text/html; charset=utf-8", layout(ctx, messagePage(ctx, status === 404 ? "Not found" : status === 403 ? "Refused" : "Error", message)).value);
      } else {
        send(res, status, "text/plain; charset=utf-8", `${message}\n`);
      }
    });
  }) as DashboardHandler;

  Object.defineProperties(handler, {
    base: { value: base },
    readOnly: { value: readOnly },
    streams: { get: () => hub.size },
    close: {
      value: async () => {
        if (closed) return;
        closed = true;
        metrics?.close();
        await hub.close();
        if (ownJobs) await jobs.close();
      },
    },
  });
  return handler;
}

// ---------------------------------------------------------------------------------------------

interface CanvasNode {
  t: "sig" | "chain" | "group" | "chord";
  id?: string | number;
  name?: string;
  steps?: CanvasNode[];
  members?: CanvasNode[];
  header?: CanvasNode[];
  body?: CanvasNode;
}

/** The steps after a chain step, from its workflow's `next` (ids were given out up front). */
function chainSteps(next: CanvasNode): Array<{ id: string | null; name: string; kind: string }> {
  const nodes = next.t === "chain" ? next.steps ?? [] : [next];
  return nodes.map((s) => {
    if (s.t === "sig") return { id: s.id === undefined || s.id === null ? null : String(s.id), name: s.name ?? "?", kind: "sig" };
    if (s.t === "chord") return { id: null, name: `${s.header?.length ?? 0} members → ${s.body?.t === "sig" ? s.body.name : s.body?.t ?? "?"}`, kind: "chord" };
    if (s.t === "group") return { id: null, name: `${s.members?.length ?? 0} members`, kind: "group" };
    return { id: null, name: `${s.steps?.length ?? 0} steps`, kind: s.t };
  });
}

function normalizePrefix(p: string): string {
  if (p === "" || p === "/") return "";
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(p)) throw new InvalidInputError(`invalid dashboard prefix ${JSON.stringify(p)}: give a path such as /admin/jobs`);
  return p.replace(/\/+$/, "");
}

function parseTaskIdOr400(s: string): string {
  try {
    return parseTaskId(s);
  } catch (err) {
    throw new HttpError(400, (err as Error).message);
  }
}

function parseTime(v: string | null, what: string): Date | null {
  if (!v || !v.trim()) return null;
  const s = v.trim();
  // datetime-local sends "2026-01-31T12:00" without a zone: the form says UTC.
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`);
  if (Number.isNaN(d.getTime())) throw new HttpError(400, `${what}: ${JSON.stringify(v)} is not a date and time (e.g. 2026-01-31T12:00)`);
  return d;
}

function send(res: ServerResponse, status: number, type: string, body: string, head = false): void {
  const buf = Buffer.from(body, "utf8");
  if (!res.hasHeader("cache-control")) res.setHeader("cache-control", "no-store");
  res.writeHead(status, { "content-type": type, "content-length": buf.length });
  res.end(head ? undefined : buf);
}

/** JSON for a response header: non-ASCII escaped, as header values must be Latin-1. */
function asciiJson(v: unknown): string {
  return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const type = req.headers["content-type"] ?? "";
    if (!type.startsWith("application/x-www-form-urlencoded")) {
      // Drain it: an unread body would stall the connection.
      req.resume();
      reject(new HttpError(415, "send the form as application/x-www-form-urlencoded"));
      return;
    }
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_FORM_BYTES) {
        reject(new HttpError(413, "form too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(new URLSearchParams(Buffer.concat(chunks).toString("utf8"))));
    req.on("error", reject);
  });
}

