import pg from "pg";
import type { Logger } from "./logger.js";
import { reconnectDelay } from "./backoff.js";

export interface ListenerOptions {
  connection: pg.ClientConfig;
  log: Logger;
  /** How often to probe the connection for a half-open socket. */
  probeIntervalMs?: number;
  /** How long a probe may take before the socket is declared dead and replaced. */
  probeTimeoutMs?: number;
}

type Handler = (payload: string) => void;

/**
 * The process's one LISTEN connection, shared by every worker and result waiter.
 *
 * NOTIFY is a hint, never the truth (STYLE.md 8): after every (re)connect the listener tells its
 * subscribers to catch up (re-read the rows), since notifications sent while it was away are lost.
 * A probe query runs periodically so a half-open socket (the server vanished without a FIN) is
 * noticed within probeInterval + probeTimeout instead of never; reconnects back off with jitter,
 * capped at 5 s, so a restarting server is not hammered.
 */
export class Listener {
  private client: pg.Client | null = null;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly reconnectHandlers = new Set<() => void>();
  private connecting: Promise<void> | null = null;
  private stopped = false;
  private failures = 0;
  private probeTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private wakeRetry: (() => void) | null = null;
  private connectedOnce = false;

  /** The connection's statements, one after another (see serial). */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: ListenerOptions) {}

  /**
   * Run `sql` on `client` after whatever this listener sent it before: several subscribers
   * starting together (a worker subscribes to three channels at once) must not stack queries in
   * node-postgres' own queue, which pg 8 deprecates (a warning on stderr) and pg 9 removes.
   */
  private serial(client: pg.Client, sql: string): Promise<unknown> {
    const run = this.tail.then(() => client.query(sql));
    this.tail = run.catch(() => {});
    return run;
  }

  /** LISTEN on `channel` (once per process) and call `fn` with each payload. Resolves when listening. */
  async subscribe(channel: string, fn: Handler): Promise<() => void> {
    let set = this.handlers.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(fn);
    await this.ensureConnected();
    if (first && this.client) {
      try {
        await this.serial(this.client, `listen ${pg.escapeIdentifier(channel)}`);
      } catch (err) {
        // The connection broke under us: the reconnect re-LISTENs every channel.
        this.opts.log.warn({ err }, "listen failed; reconnecting");
        this.reset();
        await this.ensureConnected();
      }
    }
    return () => {
      set!.delete(fn);
    };
  }

  /** Called after each reconnect: subscribers re-read what they were waiting for. */
  onReconnect(fn: () => void): () => void {
    this.reconnectHandlers.add(fn);
    return () => this.reconnectHandlers.delete(fn);
  }

  private ensureConnected(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error("pgjobs: the listener was stopped (jobs.close() was called)"));
    if (this.client) return Promise.resolve();
    if (!this.connecting) {
      this.connecting = this.connect().finally(() => {
        this.connecting = null;
      });
    }
    return this.connecting;
  }

  private async connect(): Promise<void> {
    for (;;) {
      if (this.stopped) throw new Error("pgjobs: the listener was stopped");
      const client = new pg.Client({ ...this.opts.connection, keepAlive: true });
      try {
        client.on("error", (err) => {
          this.opts.log.warn({ err: err.message }, "LISTEN connection error; reconnecting");
          if (this.client === client) this.reset();
        });
        client.on("end", () => {
          if (this.client === client) this.reset();
        });
        client.on("notification", (msg) => {
          const set = this.handlers.get(msg.channel);
          if (!set) return;
          for (const fn of set) {
            try {
              fn(msg.payload ?? "");
            } catch (err) {
              this.opts.log.error({ err }, "notification handler threw");
            }
          }
        });
        await client.connect();
        for (const channel of this.handlers.keys()) {
          await client.query(`listen ${pg.escapeIdentifier(channel)}`);
        }
        if (this.stopped) {
          await client.end().catch(() => {});
          throw new Error("pgjobs: the listener was stopped");
        }
        this.client = client;
        this.failures = 0;
        this.startProbe(client);
        if (this.connectedOnce) {
          this.opts.log.info("LISTEN connection re-established; catching up");
          for (const fn of this.reconnectHandlers) fn();
        }
        this.connectedOnce = true;
        return;
      } catch (err) {
        client.removeAllListeners("end");
        await client.end().catch(() => {});
        if (this.stopped) throw err;
        this.failures++;
        const delay = reconnectDelay(this.failures);
        this.opts.log.warn({ err: (err as Error).message, retryInMs: delay }, "LISTEN connection failed");
        await new Promise<void>((resolve) => {
          this.retryTimer = setTimeout(resolve, delay);
          // stop() ends the wait, or `await this.connecting` would hang while the server is down.
          this.wakeRetry = resolve;
        });
        this.retryTimer = null;
        this.wakeRetry = null;
      }
    }
  }

  private startProbe(client: pg.Client): void {
    const every = this.opts.probeIntervalMs ?? 10_000;
    const timeout = this.opts.probeTimeoutMs ?? 5_000;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = setInterval(() => {
      if (this.client !== client) return;
      let timer: NodeJS.Timeout | undefined;
      const dead = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`probe unanswered after ${timeout} ms`)), timeout);
      });
      Promise.race([this.serial(client, "select 1"), dead])
        .catch((err: Error) => {
          if (this.client !== client) return;
          this.opts.log.warn({ err: err.message }, "LISTEN connection probe failed; reconnecting");
          // Destroy the socket: end() would wait for an answer that never comes.
          (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
          this.reset();
        })
        .finally(() => clearTimeout(timer));
    }, every);
    this.probeTimer.unref();
  }

  /** Drop the current connection and reconnect in the background. */
  private reset(): void {
    const old = this.client;
    this.client = null;
    // A statement stuck on the dead connection must not hold up the next one's.
    this.tail = Promise.resolve();
    if (this.probeTimer) {
      clearInterval(this.probeTimer);
      this.probeTimer = null;
    }
    if (old) {
      old.removeAllListeners("notification");
      old.end().catch(() => {});
    }
    if (!this.stopped && this.handlers.size > 0) {
      this.ensureConnected().catch(() => {});
    }
  }

  /** Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = null;
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
    if (this.connecting) await this.connecting.catch(() => {});
  }
}

