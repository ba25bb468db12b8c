import { randomBytes } from "node:crypto";
import pg from "pg";
import { createJobs, type Jobs, type JobsOptions } from "../client.js";
import { InvalidInputError } from "../errors.js";
import { validateSchema } from "../identifiers.js";
import { migrate } from "../migrator.js";

export interface TestSchemaOptions {
  /** The database to create the schema in (your test database). Give this or `pool`. */
  connectionString?: string;
  pool?: pg.Pool;
  /** Start of the schema's name; a random suffix follows. Default "pgjobs_test". */
  prefix?: string;
}

export interface TestSchema {
  /** The new schema's name, e.g. pgjobs_test_3f9a0c12e4. Pass it to createJobs({ schema }). */
  readonly schema: string;
  /** Drop the schema and everything in it (tasks, schedules, ...). Idempotent. */
  drop(): Promise<void>;
}

/**
 * A fresh pgjobs schema on your own database, migrated, with a random name: tests that each use
 * their own never see each other's tasks, and may run in parallel. Drop it when the test ends.
 * Migrating takes some tens of milliseconds (docs/testing.md has the figure).
 *
 * ```ts
 * const ts = await createTestSchema({ connectionString: process.env.DATABASE_URL });
 * const jobs = createJobs({ connectionString: process.env.DATABASE_URL, schema: ts.schema });
 * // ... test ...
 * await jobs.close();
 * await ts.drop();
 * ```
 */
export async function createTestSchema(options: TestSchemaOptions): Promise<TestSchema> {
  if (!options.pool && !options.connectionString) {
    throw new InvalidInputError("createTestSchema needs a connectionString or a pool: pass your test database, e.g. { connectionString: process.env.DATABASE_URL }");
  }
  const prefix = options.prefix ?? "pgjobs_test";
  const schema = validateSchema(`${prefix}_${randomBytes(5).toString("hex")}`);
  await migrate(options.pool ?? options.connectionString!, { schema });
  let dropped: Promise<void> | null = null;
  return {
    schema,
    drop() {
      dropped ??= (async () => {
        const sql = `drop schema if exists ${schema} cascade`;
        if (options.pool) {
          await options.pool.query(sql);
          return;
        }
        const client = new pg.Client({ connectionString: options.connectionString });
        client.on("error", () => {});
        await client.connect();
        try {
          await client.query(sql);
        } finally {
          await client.end();
        }
      })();
      return dropped;
    },
  };
}

/**
 * A Jobs instance on a fresh schema (createTestSchema + createJobs): `cleanup()` closes it and
 * drops the schema. For apps that build their Jobs themselves, use createTestSchema and pass the
 * schema to your factory.
 *
 * ```ts
 * const { jobs, cleanup } = await createTestJobs({ connectionString: process.env.DATABASE_URL });
 * const add = jobs.task("add", (ctx, a: number, b: number) => a + b);
 * ```
 */
export async function createTestJobs(options: JobsOptions & { connectionString: string; prefix?: string }): Promise<{ jobs: Jobs; schema: string; cleanup(): Promise<void> }> {
  const { prefix, ...jobsOptions } = options;
  const ts = await createTestSchema({ connectionString: options.connectionString, ...(prefix ? { prefix } : {}) });
  const jobs = createJobs({ logLevel: "warn", ...jobsOptions, schema: ts.schema });
  return {
    jobs,
    schema: ts.schema,
    async cleanup() {
      await jobs.close();
      await ts.drop();
    },
  };
}
