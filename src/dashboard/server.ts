/**
 * `pgjobs dashboard`: the dashboard on its own node:http server. It listens on 127.0.0.1 unless
 * told otherwise, and refuses to listen anywhere else without credentials: the dashboard can
 * retry, cancel and delete tasks, and shows their arguments, which are user data.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { PgJobsError } from "../errors.js";
import { isLoopback, parseBasicAuth } from "./auth.js";
import { createDashboard, type DashboardHandler, type DashboardOptions } from "./index.js";

export interface ServeDashboardOptions extends DashboardOptions {
  /** Default 127.0.0.1. Any other address needs `token` or `basicAuth`. */
  host?: string;
  /** Default 4545; 0 picks a free port. */
  port?: number;
}

export interface ServedDashboard {
  /** http://127.0.0.1:4545/ (with the prefix). */
  readonly url: string;
  readonly server: Server;
  readonly handler: DashboardHandler;
  /** Stop listening, end live streams and open connections, and close what the dashboard opened. */
  close(): Promise<void>;
}

/** Why the dashboard may not listen on `host` with these options, or null. Sends nothing anywhere. */
export function refuseToListen(host: string, options: Pick<DashboardOptions, "token" | "basicAuth">): string | null {
  if (isLoopback(host)) return null;
  if (options.token || parseBasicAuth(options.basicAuth)) return null;
  return `refusing to listen on ${host} without credentials: anyone who can reach it could read task arguments and retry, cancel or delete tasks: pass --token (or set PGJOBS_DASHBOARD_TOKEN) or --basic-auth user:password, or listen on 127.0.0.1`;
}

/**
 * Serve the dashboard until close().
 *
 * ```ts
 * const d = await serveDashboard({ connectionString: process.env.DATABASE_URL, port: 4545 });
 * console.log(d.url);
 * ```
 */
export async function serveDashboard(options: ServeDashboardOptions): Promise<ServedDashboard> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? 4545;
  const refusal = refuseToListen(host, options);
  if (refusal) throw new PgJobsError(refusal);
  const credentials = Boolean(options.token || parseBasicAuth(options.basicAuth));
  // Without credentials only this machine can connect; also refuse host names that are not
  // loopback names, so a web page whose domain resolves to 127.0.0.1 cannot read the dashboard.
  const allowedHosts = options.allowedHosts ?? (credentials ? undefined : ["localhost", "127.0.0.1", "[::1]", ...(isLoopback(host) ? [host.toLowerCase()] : [])]);
  const handler = createDashboard({ ...options, ...(allowedHosts ? { allowedHosts } : {}) });
  const server = createServer(handler);
  // Server-sent event streams are long-lived: no request timeout for them.
  server.requestTimeout = 0;
  server.headersTimeout = 30_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await handler.close();
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EADDRINUSE") throw new PgJobsError(`port ${port} on ${host} is in use: pass another --port (or --port 0 for any free one)`);
    if (e.code === "EADDRNOTAVAIL" || e.code === "ENOTFOUND") throw new PgJobsError(`cannot listen on ${host}: no such address on this machine: pass --host 127.0.0.1, or one of this machine's addresses`);
    if (e.code === "EACCES") throw new PgJobsError(`not allowed to listen on port ${port}: use a port above 1023`);
    throw err;
  }
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === "IPv6" || addr.address.includes(":") ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${addr.port}${handler.base}`,
    server,
    handler,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await handler.close();
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}

export { createDashboard, type DashboardHandler, type DashboardOptions } from "./index.js";
export { taskLogStream, type TaskLogStream, type TaskLogStreamOptions } from "./logs.js";
