import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import pg from "pg";
import { PgJobsError } from "./errors.js";
import { validateSchema, } from "./identifiers.js";
import { PACKAGE_ROOT, withSchema } from "./sql.js";

/**
 * The migration runner behind `pgjobs migrate` and `jobs.migrate()`.
 *
 * Migrations are authored with graphile-migrate (migrations/committed, hash-chained), but applied
 * here: graphile-migrate's runtime keeps its state in a fixed `graphile_migrate` schema that would
 * collide with an application using graphile-migrate itself, cannot reuse a caller's pool, and
 * fails concurrent runs instead of serialising them. This runner records what it applied in
 * `<schema>.migrations` and serialises concurrent runs with a blocking advisory lock.
 */

export const MIGRATIONS_DIR = `${PACKAGE_ROOT}migrations/committed/`;

export interface Migration {
  file: string;
  hash: string;
  previousHash: string | null;
  body: string;
}

export interface MigrateOptions {
  schema?: string;
  /** Called with one line per migration applied. */
  log?: (line: string) => void;
  /** Read migrations from another folder (tests). */
  dir?: string;
  /** Grant an existing role what a producer needs: enqueue and read results, nothing more. */
  producerRole?: string;
  /** Grant an existing role what a worker needs. */
  workerRole?: string;
}

export interface MigrateResult {
  schema: string;
  applied: string[];
  /** Files that were already applied before this run. */
  current: string[];
}

/** graphile-migrate's hash: sha1 over the previous hash, a newline and the trimmed body. */
export function migrationHash(body: string, previousHash: string | null): string {
  return "sha1:" + createHash("sha1").update(((previousHash ?? "") + "\n" + body.trim()).trim() + "\n").digest("hex");
}

function parse(dir: string, file: string): Migration {
  const contents = readFileSync(dir + file, "utf8");
  const lines = contents.split("\n");
  const headers: Record<string, string | null> = {};
  let n = 0;
  for (const line of lines) {
    const m = /^--! ([A-Z][a-zA-Z0-9_]*)(?::(.*))?$/.exec(line);
    if (!m) break;
    headers[m[1]!] = m[2] ? m[2].trim() : null;
    n++;
  }
  const body = lines.slice(n).join("\n").trim() + "\n";
  const hash = headers["Hash"];
  const previous = headers["Previous"];
  if (!hash || previous === undefined || previous === null) {
    throw new PgJobsError(`migration ${file} has no "--! Hash" / "--! Previous" header: restore it from the pgjobs package`);
  }
  return { file, hash, previousHash: previous === "-" ? null : previous, body };
}

/** Read and verify the committed migrations: every file's hash, and the chain between them. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => /^\d{6}(-[-\w]+)?\.sql$/.test(f)).sort();
  const out: Migration[] = [];
  let previous: Migration | null = null;
  for (const file of files) {
    const m = parse(dir, file);
    if (migrationHash(m.body, m.previousHash) !== m.hash) {
      throw new PgJobsError(
        `migration ${file} was edited after it was committed (its content does not match its hash): restore it, and put changes in a new migration`,
      );
    }
    if ((previous?.hash ?? null) !== m.previousHash) {
      throw new PgJobsError(`migration ${file} does not follow ${previous?.file ?? "nothing"} in the hash chain: restore the committed migrations`);
    }
    out.push(m);
    previous = m;
  }
  return out;
}

type Queryable = pg.Pool | pg.Client | pg.PoolClient | string;

// Duck-typed: a Pool from the application's own copy of pg fails `instanceof pg.Pool`, and then
// begin/commit and the advisory lock would each go to whichever pooled connection is free.
function isPool(db: unknown): db is pg.Pool {
  const p = db as { totalCount?: unknown; idleCount?: unknown; connect?: unknown };
  return typeof p.totalCount === "number" && typeof p.idleCount === "number" && typeof p.connect === "function";
}

/**
 * Apply pgjobs' schema. Idempotent, and safe to run concurrently (runs wait on an advisory lock).
 *
 * ```ts
 * await migrate("postgres://localhost/app", { schema: "jobs" });
 * ```
 *
 * Given a client, it must not be inside a transaction: each migration commits on its own.
 */
export async function migrate(db: Queryable, options: MigrateOptions = {}): Promise<MigrateResult> {
  const schema = validateSchema(options.schema ?? "jobs");
  const migrations = loadMigrations(options.dir ?? MIGRATIONS_DIR); // refuse bad files before connecting
  const log = options.log ?? (() => {});

  let client: pg.Client | pg.PoolClient;
  let release: () => Promise<void>;
  if (typeof db === "string") {
    const c = new pg.Client({ connectionString: db });
    await c.connect();
    client = c;
    release = () => c.end();
  } else if (isPool(db)) {
    const c = await db.connect();
    client = c;
    release = async () => c.release();
  } else {
    client = db;
    release = async () => {};
  }

  const lockKey = `pgjobs.migrate:${schema}`;
  try {
    // Session lock, blocking: concurrent runs queue here rather than fail.
    await client.query("select pg_advisory_lock(hashtext('pgjobs'), hashtext($1))", [lockKey]);
    try {
      await client.query(`create schema if not exists ${schema}`);
      await client.query(`create table if not exists ${schema}.migrations (
        filename text primary key,
        hash text not null,
        previous_hash text,
        applied_at timestamptz not null default now()
      )`);
      const { rows } = await client.query<{ filename: string; hash: string }>(
        `select filename, hash from ${schema}.migrations order by filename`,
      );
      const known = new Map(migrations.map((m) => [m.file, m]));
      for (const row of rows) {
        const m = known.get(row.filename);
        if (!m) {
          throw new PgJobsError(
            `schema ${schema} has migration ${row.filename}, which this pgjobs does not ship: upgrade pgjobs to the version that applied it`,
          );
        }
        if (m.hash !== row.hash) {
          throw new PgJobsError(
            `migration ${row.filename} was applied to schema ${schema} with hash ${row.hash} but the file now has ${m.hash}: restore the committed file`,
          );
        }
      }
      const done = new Set(rows.map((r) => r.filename));
      const applied: string[] = [];
      for (const m of migrations) {
        if (done.has(m.file)) continue;
        await client.query("begin");
        try {
          await client.query(withSchema(m.body, schema));
          await client.query(
            `insert into ${schema}.migrations (filename, hash, previous_hash) values ($1, $2, $3)`,
            [m.file, m.hash, m.previousHash],
          );
          await client.query("commit");
        } catch (err) {
          await client.query("rollback").catch(() => {});
          const msg = err instanceof Error ? err.message : String(err);
          throw new PgJobsError(`migration ${m.file} failed on schema ${schema}: ${msg}`);
        }
        log(`applied ${m.file}`);
        applied.push(m.file);
      }
      for (const [role, fn] of [[options.producerRole, "grant_producer"], [options.workerRole, "grant_worker"]] as const) {
        if (role === undefined) continue;
        const { rows: found } = await client.query("select 1 from pg_roles where rolname = $1", [role]);
        if (found.length === 0) {
          throw new PgJobsError(`role ${JSON.stringify(role)} does not exist: create it first (create role ${pg.escapeIdentifier(role)} login password '...'), then run migrate again`);
        }
        await client.query(`select ${schema}.${fn}($1)`, [role]);
        log(`granted ${fn === "grant_producer" ? "producer" : "worker"} privileges to ${role}`);
      }
      return { schema, applied, current: [...done] };
    } finally {
      await client.query("select pg_advisory_unlock(hashtext('pgjobs'), hashtext($1))", [lockKey]).catch(() => {});
    }
  } finally {
    await release();
  }
}
