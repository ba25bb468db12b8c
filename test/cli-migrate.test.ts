import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import pg from "pg";
import { loadMigrations } from "../src/migrator.js";
import { runCli, type CliResult } from "./helpers/cli.js";
import { useEmptyDatabase } from "./helpers/db.js";
import { REPO_ROOT } from "./helpers/paths.js";

const db = useEmptyDatabase();
const FILES = loadMigrations().map((m) => m.file);
/** Nothing listens on port 1: a command that reached the network would fail to connect. */
const NOWHERE = "postgres://postgres@127.0.0.1:1/nowhere";

/** A user error: exit 2, nothing on stdout, exactly one line on stderr, no stack trace. */
function assertOneLineError(r: CliResult, pattern: RegExp): string {
  assert.equal(r.code, 2, `exit code 2, got ${r.code}; stderr: ${r.stderr}`);
  assert.equal(r.stdout, "");
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^pgjobs: /);
  assert.match(lines[0]!, pattern);
  return lines[0]!;
}

test("pgjobs migrate prints one line per applied file and a summary, then finds nothing to do", async () => {
  const first = await runCli(["migrate", "--database-url", db.url]);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(first.stdout.trimEnd().split("\n"), [
    ...FILES.map((f) => `applied ${f}`),
    `schema jobs: applied ${FILES.length} migration${FILES.length === 1 ? "" : "s"}, 0 already applied`,
  ]);
  assert.deepEqual(await filesIn(db.url, "jobs"), FILES);

  // DATABASE_URL is the default for --database-url.
  const second = await runCli(["migrate"], { env: { DATABASE_URL: db.url } });
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /^schema jobs is up to date \(\d+ migrations? applied before\)\n$/);
});

test("pgjobs migrate --json prints the result object", async () => {
  const { url } = await db.createDatabase();
  const r = await runCli(["migrate", "--database-url", url, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { schema: "jobs", applied: FILES, current: [] });
  const again = await runCli(["migrate", "--database-url", url, "--json"]);
  assert.deepEqual(JSON.parse(again.stdout), { schema: "jobs", applied: [], current: FILES });
});

test("ten concurrent pgjobs migrate processes all exit 0 and apply each file once", async () => {
  const { url } = await db.createDatabase();
  const runs = await Promise.all(Array.from({ length: 10 }, () => runCli(["migrate", "--database-url", url])));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const appliedLines = runs
    .flatMap((r) => r.stdout.split("\n"))
    .filter((l) => l.startsWith("applied "))
    .sort();
  assert.deepEqual(appliedLines, FILES.map((f) => `applied ${f}`));
  assert.deepEqual(await filesIn(url, "jobs"), FILES);
});

test("pgjobs migrate --schema other sets up a second schema beside jobs", async () => {
  const { url } = await db.createDatabase();
  assert.equal((await runCli(["migrate", "--database-url", url])).code, 0);
  const r = await runCli(["migrate", "--database-url", url, "--schema", "other"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /schema other: applied/);
  assert.deepEqual(await filesIn(url, "other"), FILES);
  assert.deepEqual(await filesIn(url, "jobs"), FILES);
});

test("a schema name carrying SQL is refused before connecting", async () => {
  const r = await runCli(["migrate", "--database-url", NOWHERE, "--schema", "x; drop table y"]);
  assertOneLineError(r, /invalid schema name "x; drop table y"/);
});

test("a missing database URL says how to give one", async () => {
  const r = await runCli(["migrate"], { env: { DATABASE_URL: undefined } });
  assertOneLineError(r, /--database-url .*DATABASE_URL/);
  const json = await runCli(["migrate", "--json"], { env: { DATABASE_URL: undefined } });
  assert.equal(json.code, 2);
  assert.match(JSON.parse(json.stdout).error.message, /no database to connect to/);
});

test("a server that does not answer is one line naming where it tried, without the password", async () => {
  const r = await runCli(["migrate", "--database-url", "postgres://postgres:s3cret@127.0.0.1:1/nowhere"]);
  const line = assertOneLineError(r, /cannot connect to the database at 127\.0\.0\.1:1\/nowhere: .*ECONNREFUSED/);
  assert.ok(!line.includes("s3cret"));
});

test("an applied migration that no longer matches its file is refused and nothing changes", async () => {
  const { url } = await db.createDatabase();
  assert.equal((await runCli(["migrate", "--database-url", url])).code, 0);
  await inDatabase(url, "update jobs.migrations set hash = 'sha1:0000' where filename = $1", [FILES[0]]);
  const r = await runCli(["migrate", "--database-url", url]);
  assertOneLineError(r, new RegExp(`migration ${FILES[0]!.replace(/\./g, "\\.")} was applied to schema jobs with hash sha1:0000`));
  const rows = await inDatabase(url, "select filename, hash from jobs.migrations order by filename");
  assert.deepEqual(rows.map((x) => x.filename), FILES);
  assert.equal(rows[0].hash, "sha1:0000");
});

test("an installed package whose migration was edited refuses to migrate, naming the file", async () => {
  // A copy of the package as npm would install it, with one migration edited.
  const pkg = mkdtempSync(join(tmpdir(), "pgjobs-pkg-"));
  db.onClose(() => rmSync(pkg, { recursive: true, force: true }));
  for (const part of ["package.json", "bin", "sql", "migrations", "dist/src", "dist/cli"]) {
    cpSync(join(REPO_ROOT, part), join(pkg, part), { recursive: true });
  }
  symlinkSync(join(REPO_ROOT, "node_modules"), join(pkg, "node_modules"));
  const victim = FILES[0]!;
  const path = join(pkg, "migrations/committed", victim);
  writeFileSync(path, readFileSync(path, "utf8").replace("create table", "create unlogged table"));

  const { url } = await db.createDatabase();
  const r = await runCli(["migrate", "--database-url", url], { bin: join(pkg, "bin/run.js") });
  assertOneLineError(r, new RegExp(`migration ${victim.replace(/\./g, "\\.")} was edited`));
  assert.equal(await inDatabase(url, "select 1 from pg_namespace where nspname = 'jobs'").then((x) => x.length), 0);
});

async function inDatabase(url: string, sql: string, params: unknown[] = []): Promise<any[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

async function filesIn(url: string, schema: string): Promise<string[]> {
  return (await inDatabase(url, `select filename from ${schema}.migrations order by filename`)).map((r) => r.filename);
}
