/**
 * Live updates: one LISTEN connection (the Jobs instance's listener) feeds every open page
 * through server-sent events. A page's script turns each `change` event into an htmx refresh of
 * its live regions; nothing reloads a whole page.
 *
 * NOTIFY is a hint (STYLE.md 8), and not every change sends one: a worker that finishes a task
 * notifies only where a result waiter is registered, a claim notifies nobody. So:
 *  - the channels heard are <schema>.ready (enqueues, retries, hand-backs, resumed queues),
 *    <schema>.done (finished tasks someone waits on) and <schema>.dashboard (actions, pauses);
 *  - the tasks a page shows that may still change (its `?watch=` list) are registered in
 *    jobs.result_waiters under this dashboard's own id, so their finish does notify;
 *  - a slow poll sends a `change` to every stream anyway, every pollMs (default 5 s).
 * Bursts are coalesced: a stream gets at most one `change` per minGapMs (default 1 s), the last
 * one always delivered, so 10,000 enqueues in a second cost each open page one refresh.
 */
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type pg from "pg";
import { runPrepared } from "../db.js";
import type { Listener } from "../listener.js";
import type { Logger } from "../logger.js";
import { channels, statement } from "../sql.js";

interface Stream {
  res: ServerResponse;
  watch: string[];
  last: number;
  timer: NodeJS.Timeout | null;
}

export interface LiveOptions {
  pool: pg.Pool;
  schema: string;
  listener: () => Listener;
  log: Logger;
  pollMs: number;
  minGapMs: number;
}

/** Re-register watched tasks well inside result_waiter_prune's hour. */
const REFRESH_WATCH_MS = 10 * 60_000;
const KEEPALIVE_MS = 15_000;

export class LiveHub {
  private readonly streams = new Set<Stream>();
  private readonly watched = new Map<string, number>();
  private readonly token = randomUUID();
  /** Registrations and removals run in order: a removal overtaking a later registration of the
   * same id (a page reconnecting with a new watch list) would leave it unwatched. */
  private registry: Promise<void> = Promise.resolve();
  private started: Promise<void> | null = null;
  private unsubscribe: Array<() => void> = [];
  private pollTimer: NodeJS.Timeout | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Changes heard (tests and metrics). */
  heard = 0;

  constructor(private readonly opts: LiveOptions) {}

  private start(): Promise<void> {
    this.started ??= (async () => {
      const ch = channels(this.opts.schema);
      const listener = this.opts.listener();
      const onChange = () => {
        this.heard++;
        this.broadcast();
      };
      for (const c of [ch.ready, ch.done, `${this.opts.schema}.dashboard`]) {
        this.unsubscribe.push(await listener.subscribe(c, onChange));
      }
      // Notifications sent while the LISTEN connection was away are lost: refresh everything.
      this.unsubscribe.push(listener.onReconnect(onChange));
      this.pollTimer = setInterval(() => this.broadcast(), this.opts.pollMs);
      this.keepaliveTimer = setInterval(() => {
        // A comment line: keeps proxies from closing an idle stream, and finds dead sockets.
        for (const s of this.streams) s.res.write(": keepalive\n\n");
      }, KEEPALIVE_MS);
      this.refreshTimer = setInterval(() => {
        const ids = [...this.watched.keys()];
        if (ids.length > 0) void this.register(ids);
      }, REFRESH_WATCH_MS);
    })();
    return this.started;
  }

  /** Serve GET /events: an event stream until the client goes away or the dashboard closes. */
  async open(res: ServerResponse, watch: string[]): Promise<void> {
    if (this.closed) {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      // Tell nginx not to buffer the stream.
      "x-accel-buffering": "no",
    });
    // A reconnecting EventSource waits this long; the first line also flushes the headers.
    res.write("retry: 3000\n\n");
    res.on("error", () => {});
    // Its watch list counts from the moment it is registered, below.
    const stream: Stream = { res, watch: [], last: 0, timer: null };
    this.streams.add(stream);
    res.on("close", () => {
      this.streams.delete(stream);
      if (stream.timer) clearTimeout(stream.timer);
      this.dropWatch(stream.watch);
    });
    try {
      await this.start();
    } catch (err) {
      // The database is unreachable: the poll keeps the page fresh once it is back.
      this.opts.log.warn({ err: (err as Error).message }, "dashboard: LISTEN failed; pages refresh by polling");
      this.started = null;
    }
    if (watch.length > 0 && this.streams.has(stream)) {
      stream.watch = watch;
      await this.addWatch(watch);
      // Listening and registered: whatever finished since the page was rendered would have sent
      // no notification to us, so the page catches up once (STYLE.md 8).
      if (this.streams.has(stream)) this.send(stream);
    }
  }

  /** Tell every open page that something changed (coalesced per stream). */
  broadcast(): void {
    for (const s of this.streams) this.send(s);
  }

  private send(s: Stream): void {
    if (s.timer) return; // a send is already scheduled: it will carry this change too
    const wait = s.last + this.opts.minGapMs - Date.now();
    if (wait > 0) {
      s.timer = setTimeout(() => {
        s.timer = null;
        this.send(s);
      }, wait);
      return;
    }
    s.last = Date.now();
    s.res.write(`event: change\ndata: ${s.last}\n\n`);
  }

  private async addWatch(ids: string[]): Promise<void> {
    const fresh: string[] = [];
    for (const id of ids) {
      const n = this.watched.get(id) ?? 0;
      this.watched.set(id, n + 1);
      if (n === 0) fresh.push(id);
    }
    if (fresh.length > 0) await this.register(fresh);
  }

  private dropWatch(ids: string[]): void {
    const gone: string[] = [];
    for (const id of ids) {
      const n = (this.watched.get(id) ?? 1) - 1;
      if (n <= 0) {
        this.watched.delete(id);
        gone.push(id);
      } else this.watched.set(id, n);
    }
    if (gone.length > 0 && !this.closed) {
      this.registry = this.registry.then(() =>
        runPrepared(this.opts.pool, statement(this.opts.schema, "result_waiter_remove"), [gone, this.token]).then(() => {}, () => {}),
      );
    }
  }

  private register(ids: string[]): Promise<void> {
    this.registry = this.registry.then(() =>
      runPrepared(this.opts.pool, statement(this.opts.schema, "result_waiter_add"), [ids, this.token]).then(
        () => {},
        (err: Error) => this.opts.log.warn({ err: err.message }, "dashboard: could not register watched tasks; the poll covers them"),
      ),
    );
    return this.registry;
  }

  /** End every stream, stop listening, and forget the watched tasks. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of [this.pollTimer, this.keepaliveTimer, this.refreshTimer]) if (t) clearInterval(t);
    for (const s of this.streams) {
      if (s.timer) clearTimeout(s.timer);
      s.res.end();
    }
    this.streams.clear();
    await this.started?.catch(() => {});
    await this.registry;
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    const ids = [...this.watched.keys()];
    this.watched.clear();
    if (ids.length > 0) {
      await runPrepared(this.opts.pool, statement(this.opts.schema, "result_waiter_remove"), [ids, this.token]).catch(() => {});
    }
  }

  /** Open streams (tests). */
  get size(): number {
    return this.streams.size;
  }
}
