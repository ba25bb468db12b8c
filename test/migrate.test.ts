import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import pg from "pg";
import { InvalidInputError, PgJobsError } from "../src/errors.js";
import { loadMigrations, migrate, migrationHash } from "../src/migrator.js";
import { useEmptyDatabase } from "./helpers/db.js";
import { MIGRATIONS_COMMITTED } from "./helpers/paths.js";

const db = useEmptyDatabase();
const FILES = loadMigrations().map((m) => m.file);

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function tablesIn(url: string, schema: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ table_name: string }>(
      "select table_name from information_schema.tables where table_schema = $1 order by 1",
      [schema],
    );
    return rows.map((r) => r.table_name);
  });
}

async function appliedFiles(url: string, schema: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ filename: string }>(`select filename from ${schema}.migrations order by filename`);
    return rows.map((r) => r.filename);
  });
}

async function schemaExists(url: string, schema: string): Promise<boolean> {
  return withClient(url, async (c) => (await c.query("select 1 from pg_namespace where nspname = $1", [schema])).rowCount === 1);
}

/** A copy of migrations/committed to edit, removed when the file's tests end. */
function copyOfMigrations(): string {
  const dir = mkdtempSync(join(tmpdir(), "pgjobs-migrations-"));
  db.onClose(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(MIGRATIONS_COMMITTED, dir, { recursive: true });
  return dir + "/";
}

test("migrate on an empty database creates the schema, and running it again applies nothing", async () => {
  const first = await migrate(db.url);
  assert.deepEqual(first, { schema: "jobs", applied: FILES, current: [] });
  const tables = await tablesIn(db.url, "jobs");
  for (const t of ["tasks", "workers", "chords", "schedules", "migrations"]) assert.ok(tables.includes(t), `jobs.${t} exists (have ${tables})`);

  const second = await migrate(db.url);
  assert.deepEqual(second, { schema: "jobs", applied: [], current: FILES });
  assert.deepEqual(await appliedFiles(db.url, "jobs"), FILES);
});

test("ten concurrent migrate() calls on separate connections all succeed and apply each file once", async () => {
  const { url } = await db.createDatabase();
  const results = await Promise.all(Array.from({ length: 10 }, () => migrate(url)));
  // Every run either applied a file or found it applied: never both, never twice.
  const applied = results.flatMap((r) => r.applied).sort();
  assert.deepEqual(applied, FILES);
  for (const r of results) assert.deepEqual([...r.applied, ...r.current].sort(), FILES);
  assert.deepEqual(await appliedFiles(url, "jobs"), FILES);
});

test("a committed migration edited after release is refused, naming the file, and nothing is applied", async () => {
  const { url } = await db.createDatabase();
  const dir = copyOfMigrations();
  const victim = FILES[FILES.length - 1]!;
  writeFileSync(dir + victim, readFileSync(dir + victim, "utf8") + "\ncreate table :SCHEMA.sneaky (id int);\n");

  await assert.rejects(migrate(url, { dir }), (err: Error) => {
    assert.ok(err instanceof PgJobsError, `a PgJobsError, got ${err}`);
    assert.ok(err.message.includes(victim), err.message);
    assert.match(err.message, /edited/);
    assert.ok(!err.message.includes("\n"), "one line");
    return true;
  });
  assert.equal(await schemaExists(url, "jobs"), false, "refused before touching the database");
});

test("an applied migration whose file changed (with a valid new hash) is refused and nothing changes", async () => {
  const { url } = await db.createDatabase();
  await migrate(url);
  const dir = copyOfMigrations();
  const victim = FILES[FILES.length - 1]!;
  // Rewrite the last file as a release with a different body would: consistent headers and chain,
  // so only the comparison with what the database applied can catch it.
  const original = loadMigrations(dir).find((m) => m.file === victim)!;
  const body = original.body + "\ncreate table :SCHEMA.sneaky (id int);\n";
  const hash = migrationHash(body, original.previousHash);
  writeFileSync(dir + victim, `--! Previous: ${original.previousHash ?? "-"}\n--! Hash: ${hash}\n\n${body}`);
  assert.deepEqual(loadMigrations(dir).map((m) => m.file), FILES, "the edited folder itself is consistent");

  await assert.rejects(migrate(url, { dir }), (err: Error) => {
    assert.ok(err instanceof PgJobsError, `a PgJobsError, got ${err}`);
    assert.ok(err.message.includes(victim), err.message);
    assert.match(err.message, /applied/);
    return true;
  });
  assert.ok(!(await tablesIn(url, "jobs")).includes("sneaky"), "the edited body did not run");
  assert.deepEqual(await appliedFiles(url, "jobs"), FILES);
});

test("a custom schema works, and two schemas coexist in one database", async () => {
  const { url } = await db.createDatabase();
  await migrate(url, { schema: "jobs" });
  const other = await migrate(url, { schema: "other" });
  assert.deepEqual(other.applied, FILES, "the second schema gets its own full history");
  assert.deepEqual(await appliedFiles(url, "other"), FILES);

  await withClient(url, async (c) => {
    const { rows } = await c.query("select other.enqueue('in_other', '[1]') as id");
    assert.ok(rows[0].id);
    const counts = await c.query(
      "select (select count(*)::int from other.tasks) as other, (select count(*)::int from jobs.tasks) as jobs",
    );
    assert.deepEqual(counts.rows[0], { other: 1, jobs: 0 });
  });
  for (const s of ["jobs", "other"]) {
    const tables = await tablesIn(url, s);
    for (const t of ["tasks", "workers", "chords", "schedules"]) assert.ok(tables.includes(t), `${s}.${t}`);
  }
});

test("a schema name carrying SQL is refused before connecting", async () => {
  // Nothing listens on port 1: reaching the network would fail with ECONNREFUSED instead.
  await assert.rejects(
    migrate("postgres://postgres@127.0.0.1:1/nowhere", { schema: "x; drop table y" }),
    (err: Error) => err instanceof InvalidInputError && /invalid schema name/.test(err.message),
  );
});

test("an application's own graphile-migrate history is left alone", async () => {
  const { url } = await db.createDatabase();
  const app = mkdtempSync(join(tmpdir(), "pgjobs-gm-app-"));
  db.onClose(() => rmSync(app, { recursive: true, force: true }));
  mkdirSync(join(app, "migrations/committed"), { recursive: true });
  writeFileSync(join(app, ".gmrc"), JSON.stringify({ migrationsFolder: "./migrations" }));
  const body = "create table public.orders (id serial primary key, total numeric not null);\n";
  writeFileSync(
    join(app, "migrations/committed/000001.sql"),
    `--! Previous: -\n--! Hash: ${migrationHash(body, null)}\n\n${body}`,
  );
  await runGraphileMigrate(app, url);

  const snapshot = () =>
    withClient(url, async (c) => (await c.query("select * from graphile_migrate.migrations order by filename")).rows);
  const before = await snapshot();
  assert.equal(before.length, 1, "graphile-migrate recorded the app's migration");

  const result = await migrate(url);
  assert.deepEqual(result.applied, FILES);
  assert.deepEqual(await snapshot(), before, "graphile_migrate.migrations unchanged");
  assert.deepEqual(await appliedFiles(url, "jobs"), FILES);
  assert.ok((await tablesIn(url, "public")).includes("orders"));
  // And the app can keep using graphile-migrate afterwards.
  await runGraphileMigrate(app, url);
  assert.deepEqual(await snapshot(), before);
});

/** graphile-migrate's own CLI, as an application runs it (a child process: it keeps a pool alive briefly). */
function runGraphileMigrate(cwd: string, url: string): Promise<void> {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve("graphile-migrate/package.json");
  const bin = (JSON.parse(readFileSync(pkgPath, "utf8")) as { bin: Record<string, string> }).bin["graphile-migrate"]!;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(dirname(pkgPath), bin), "migrate"], {
      cwd,
      env: { ...process.env, DATABASE_URL: url, ROOT_DATABASE_URL: undefined, SHADOW_DATABASE_URL: undefined },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`graphile-migrate migrate exited ${code}: ${out}`))));
  });
}

// A .sql file whose name the migrator's pattern skips would silently never be applied.
test("the committed migrations folder is what the tests apply", () => {
  const onDisk = readdirSync(MIGRATIONS_COMMITTED).filter((f) => f.endsWith(".sql")).sort();
  assert.deepEqual(FILES, onDisk);
});
