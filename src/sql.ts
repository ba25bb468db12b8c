import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { validateSchema } from "./identifiers.js";

/** The package root: this file runs from dist/src/, the SQL lives in sql/ and migrations/. */
export const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const SQL_DIR = `${PACKAGE_ROOT}sql/`;

export interface Statement {
  /** Name of the prepared statement: unique per schema, so two schemas never share a plan. */
  readonly name: string;
  readonly text: string;
}

/** Replace the :SCHEMA placeholder, as graphile-migrate does (`:SCHEMA` followed by a word boundary). */
export function withSchema(text: string, schema: string): string {
  validateSchema(schema);
  return text.replace(/:SCHEMA\b/g, schema);
}

const cache = new Map<string, Map<string, Statement>>();

/**
 * The runtime's SQL: every statement in sql/*.sql (cookbook/ aside), loaded once per schema and
 * run as named prepared statements.
 */
export function statements(schema: string): ReadonlyMap<string, Statement> {
  let map = cache.get(schema);
  if (!map) {
    map = new Map();
    for (const file of readdirSync(SQL_DIR)) {
      if (!file.endsWith(".sql")) continue;
      const base = file.slice(0, -4);
      const text = withSchema(readFileSync(SQL_DIR + file, "utf8"), schema);
      map.set(base, { name: `pgjobs_${schema}_${base}`, text });
    }
    cache.set(schema, map);
  }
  return map;
}

export function statement(schema: string, name: string): Statement {
  const s = statements(schema).get(name);
  if (!s) throw new Error(`pgjobs: no statement sql/${name}.sql (the package is incomplete: reinstall it)`);
  return s;
}

/** Channel names: NOTIFY payloads are hints (STYLE.md 8); the channels are scoped to the schema. */
export function channels(schema: string) {
  return {
    /** payload: a queue name that has runnable tasks */
    ready: `${schema}.ready`,
    /** payload: comma-separated ids of finished tasks that someone waits on */
    done: `${schema}.done`,
    /** payload: milliseconds until the earliest task just enqueued with a countdown is due */
    due: `${schema}.due`,
    /** payload: JSON commands to workers, e.g. {"cancel": [ids]} */
    control: `${schema}.control`,
  };
}
