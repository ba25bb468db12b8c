import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Jobs } from "./client.js";
import { PgJobsError } from "./errors.js";

/**
 * Load a user's task module for `pgjobs worker --app PATH`. The module registers its tasks on a
 * Jobs instance and exports it, as `export const jobs = createJobs(...)` or `export default jobs`.
 */
export async function loadApp(path: string): Promise<Jobs> {
  const full = resolve(path);
  if (!existsSync(full)) {
    throw new PgJobsError(`--app ${path}: no such file (${full}): point it at the built module that registers your tasks, e.g. ./dist/tasks.js`);
  }
  const mod = (await import(pathToFileURL(full).href)) as Record<string, unknown>;
  const candidates = [mod.jobs, mod.default, (mod.default as Record<string, unknown> | undefined)?.jobs];
  const jobs = candidates.find((c): c is Jobs => c instanceof Jobs || isJobsLike(c));
  if (!jobs) {
    throw new PgJobsError(`--app ${path} exports no pgjobs instance: add \`export const jobs = createJobs({...})\` (or a default export) to it`);
  }
  return jobs;
}

// Two copies of pgjobs (the app's and the CLI's) make instanceof fail; recognise the shape.
function isJobsLike(x: unknown): x is Jobs {
  return !!x && typeof x === "object" && typeof (x as Jobs).worker === "function" && typeof (x as Jobs).task === "function" && typeof (x as Jobs).schema === "string";
}
