/**
 * A database of its own for each test file, so files run in parallel and a failed file's data can
 * be inspected.
 *
 * ```ts
 * import { test } from "node:test";
 * import { useDatabase } from "./helpers/db.js";
 * const db = useDatabase();                 // at the top of the file: registers before/after hooks
 * test("enqueue", async () => {
 *   const { rows } = await db.query("select jobs.enqueue('add', '[2,2]') as id");
 *   ...
 * });
 * ```
 *
 * `useDatabase()` clones the template that `npm test` migrated (schema "jobs"), named
 * `pgjobs_t_<file>_<pid>`; `useEmptyDatabase()` gives an empty one (migration tests). The file's
 * `after` hook then, in this order:
 *   1. runs the `db.onClose(fn)` callbacks, last registered first (stop workers, end app pools);
 *   2. ends `db.pool` and every `db.connect()` client;
 *   3. checks for leaks: anything still open that was not open when the file loaded (a pool,
 *      client, socket, timer, child process) fails the file, naming what leaked;
 *   4. drops the databases (kept, and printed, when a test failed and PGJOBS_KEEP_DB=1).
 * node:test runs a file's top-level `after` hooks in the order they were registered, so one that
 * a file registers after calling useDatabase() runs after the leak check: stop resources with
 * db.onClose(fn), or in an `after` inside a `describe` (which runs before the file's own).
 *
 * Environment (set by `npm test`, i.e. test/run.ts): PGJOBS_TEST_SERVER_URL (the server's
 * maintenance database), PGJOBS_TEST_TEMPLATE (the migrated template). Run a file directly with
 * `DATABASE_URL=... node --test dist/test/x.test.js`: without a template it migrates its own.
 */
import { after, afterEach, before } from "node:test";
import { basename } from "node:path";
import pg from "pg";
import { migrate } from "../../src/migrator.js";
import { assertNoLeaks, snapshotResources } from "./leaks.js";
import { databaseUrl } from "./server.js";

export const TEST_SCHEMA = "jobs";

export interface TestDatabase {
  /** The database's name, e.g. pgjobs_t_sql_api_12345. */
  readonly name: string;
  readonly url: string;
  /** The schema the template was migrated into: "jobs". */
  readonly schema: string;
  /** A pool on this database, ended by the harness. */
  readonly pool: pg.Pool;
  /** The server's maintenance database (for CREATE DATABASE and the like). */
  readonly serverUrl: string;
  query<R extends pg.QueryResultRow = any>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** A dedicated session (LISTEN, concurrent transactions), ended by the harness. */
  connect(): Promise<pg.Client>;
  /** Another database for this file, empty or migrated, dropped with the file's own. */
  createDatabase(options?: { migrated?: boolean }): Promise<{ name: string; url: string }>;
  /** Run at teardown, before the leak check; last registered runs first. */
  onClose(fn: () => unknown): void;
}

export interface UseDatabaseOptions {
  /** An empty database instead of a clone of the migrated template. */
  empty?: boolean;
}

export function useEmptyDatabase(): TestDatabase {
  return useDatabase({ empty: true });
}

export function useDatabase(options: UseDatabaseOptions = {}): TestDatabase {
  // Taken at file load, before the tests open anything: what is open here is node:test's own.
  const baseline = snapshotResources();
  const serverUrl = process.env.PGJOBS_TEST_SERVER_URL || process.env.DATABASE_URL;
  const baseName = fileDatabaseName();
  const databases: string[] = [];
  const clients = new Set<pg.Client>();
  const closers: (() => unknown)[] = [];
  let pool: pg.Pool | undefined;
  let name: string | undefined;
  let failed = false;

  const ready = () => {
    if (!pool || !name) throw new Error("useDatabase(): the database exists from the file's before() hook on: use it inside a test or hook");
    return { pool, name };
  };
  const create = async (migrated: boolean): Promise<{ name: string; url: string }> => {
    if (!serverUrl) throw new Error("no test database server: run the tests with `npm test` (it starts one), or set DATABASE_URL");
    const dbName = databases.length === 0 ? baseName : `${baseName.slice(0, 58)}_${databases.length + 1}`;
    await createDatabase(serverUrl, dbName, migrated ? process.env.PGJOBS_TEST_TEMPLATE : undefined);
    databases.push(dbName);
    // Tagged with the run, so the runner can drop it even if this file's process is killed (a
    // timeout) before its after() hook runs.
    const run = process.env.PGJOBS_TEST_RUN;
    if (run) await withAdmin(serverUrl, (c) => c.query(`comment on database "${dbName}" is 'pgjobs test run ${run.replace(/'/g, "")}'`));
    const url = databaseUrl(serverUrl, dbName);
    // Run directly (no runner, so no template): migrate this database itself.
    if (migrated && !process.env.PGJOBS_TEST_TEMPLATE) await migrate(url, { schema: TEST_SCHEMA });
    return { name: dbName, url };
  };

  const handle: TestDatabase = {
    get name() {
      return ready().name;
    },
    get url() {
      return databaseUrl(serverUrl!, ready().name);
    },
    schema: TEST_SCHEMA,
    get pool() {
      return ready().pool;
    },
    get serverUrl() {
      if (!serverUrl) throw new Error("no test database server: run the tests with `npm test`, or set DATABASE_URL");
      return serverUrl;
    },
    query(text, params) {
      return ready().pool.query(text, params as unknown[]);
    },
    async connect() {
      const client = new pg.Client({ connectionString: handle.url, application_name: "pgjobs-test" });
      // A test may terminate this session on purpose; an unhandled 'error' event would crash the file.
      client.on("error", () => {});
      await client.connect();
      clients.add(client);
      return client;
    },
    createDatabase(opts = {}) {
      return create(opts.migrated ?? false);
    },
    onClose(fn) {
      closers.push(fn);
    },
  };

  before(async () => {
    const db = await create(!options.empty);
    name = db.name;
    pool = new pg.Pool({ connectionString: db.url, max: 10, application_name: "pgjobs-test" });
    pool.on("error", () => {}); // idle clients killed by a test (pg_terminate_backend) must not crash the file
  });

  afterEach((t) => {
    // `passed` exists on the test context from Node 20.12 / 21.7 on; older Nodes never keep databases.
    if ((t as { passed?: boolean }).passed === false) failed = true;
  });

  after(async () => {
    const errors: unknown[] = [];
    for (const fn of closers.reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    await pool?.end().catch((err) => errors.push(err));
    await Promise.all([...clients].map((c) => c.end().catch(() => {})));
    // Before dropping: the drop's own admin session would otherwise be counted, and a leaked
    // session on the database is the likeliest reason a drop fails.
    const leak = await assertNoLeaks(baseline).then(
      () => undefined,
      (err: unknown) => err,
    );
    if (serverUrl && databases.length > 0) {
      if (failed && process.env.PGJOBS_KEEP_DB === "1") {
        const throwaway = ["embedded", "testcontainers"].includes(process.env.PGJOBS_TEST_SERVER_KIND ?? "")
          ? " (on a throwaway server that stops with the run: set DATABASE_URL to keep them)"
          : "";
        process.stderr.write(`kept test databases for inspection: ${databases.map((d) => databaseUrl(serverUrl, d)).join(" ")}${throwaway}\n`);
      } else {
        for (const d of databases) await dropDatabase(serverUrl, d, { force: leak !== undefined }).catch((err) => errors.push(err));
      }
    }
    if (leak) errors.unshift(leak);
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, errors.map((e) => (e instanceof Error ? e.message : String(e))).join("; "));
  });

  return handle;
}

/** pgjobs_t_<file>_<pid>: unique per file and per run, at most 63 bytes (NAMEDATALEN). */
function fileDatabaseName(): string {
  const file = basename(process.argv[1] ?? "test").replace(/\.test\.[cm]?js$|\.[cm]?js$/, "");
  const slug = file.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "") || "test";
  const suffix = `_${process.pid}`;
  return `pgjobs_t_${slug}`.slice(0, 55 - suffix.length) + suffix;
}

async function withAdmin<T>(serverUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl, application_name: "pgjobs-test-admin" });
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** SQLSTATE 55006 object_in_use: "source database ... is being accessed by other users". */
const OBJECT_IN_USE = "55006";

export async function createDatabase(serverUrl: string, name: string, template?: string): Promise<void> {
  await withAdmin(serverUrl, async (client) => {
    // A database left by an earlier run whose process had the same pid.
    await client.query(`drop database if exists "${name}"`);
    const sql = template ? `create database "${name}" template "${template}"` : `create database "${name}"`;
    // The template is busy for a moment after the runner's migration session closes (its backend
    // exits asynchronously), so retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(sql);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== OBJECT_IN_USE || attempt >= 100) throw err;
        await sleep(100);
      }
    }
  });
}

export async function dropDatabase(serverUrl: string, name: string, options: { force?: boolean } = {}): Promise<void> {
  await withAdmin(serverUrl, async (client) => {
    // A leaked session would hold the database forever: end it (Postgres 13+).
    if (options.force) {
      await client.query(`drop database if exists "${name}" with (force)`);
      return;
    }
    // Backends of sessions we just ended may take a moment to exit.
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(`drop database if exists "${name}"`);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== OBJECT_IN_USE || attempt >= 50) throw err;
        await sleep(100);
      }
    }
  });
}
