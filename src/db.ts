import type pg from "pg";
import type { CompiledQuery } from "kysely";
import type { Statement } from "./sql.js";

/**
 * Where an enqueue runs: a node-postgres Client or PoolClient, or a Kysely transaction (or Kysely
 * instance). The task then exists if and only if that transaction commits.
 */
export type DbLike = pg.ClientBase | KyselyLike;

interface KyselyLike {
  executeQuery<R>(query: CompiledQuery<R>): Promise<{ rows: R[] }>;
}

function isKysely(db: unknown): db is KyselyLike {
  return typeof (db as KyselyLike).executeQuery === "function";
}

export async function runOn<R extends object>(db: DbLike, st: Statement, values: unknown[]): Promise<R[]> {
  if (isKysely(db)) {
    // Loaded on first use: a worker that never enqueues in a Kysely transaction does not pay
    // for it (~12 MB resident, measured).
    const { CompiledQuery } = await import("kysely");
    const res = await db.executeQuery(CompiledQuery.raw(st.text, values) as CompiledQuery<R>);
    return res.rows;
  }
  if (typeof (db as pg.ClientBase).query !== "function") {
    throw new TypeError("pgjobs: `db` must be a node-postgres Client/PoolClient or a Kysely transaction");
  }
  // Not a named statement: a caller's connection may be shared with code we do not know.
  const res = await (db as pg.ClientBase).query<R>(st.text, values);
  return res.rows;
}

/** Run a runtime statement as a named prepared statement on the pool. */
export async function runPrepared<R extends object>(pool: pg.Pool | pg.ClientBase, st: Statement, values: unknown[]): Promise<R[]> {
  const res = await pool.query<R>({ name: st.name, text: st.text, values });
  return res.rows;
}
