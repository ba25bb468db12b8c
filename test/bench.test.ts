/**
 * `npm run bench` still runs (issue 7): every scenario but the 1M backlog, shrunk with `--jobs`
 * and `--seconds`, each on its own fresh database, must print its JSON line with `verify.ok`
 * (every task ran exactly once, nothing left unfinished). Times are printed by the bench, never
 * asserted here.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { useDatabase } from "./helpers/db.js";
import { REPO_ROOT } from "./helpers/paths.js";

const db = useDatabase();

test("every bench scenario runs on a fresh database and verifies its tasks ran exactly once", async (t) => {
  await db.query("select 1"); // the server is up and reachable with these credentials
  const base = new URL(db.serverUrl);
  base.pathname = "";
  const scenarios = ["enqueue-single", "enqueue-batch", "drain-10", "drain-50", "io-drain", "latency", "drain-2proc", "chord", "floor"];
  const child = spawn(process.execPath, [`${REPO_ROOT}dist/bench/run.js`, "--only", scenarios.join(","), "--jobs", "400", "--seconds", "0.3"], {
    env: { ...process.env, BENCH_PG: base.toString() },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  assert.equal(code, 0, `the bench exited ${code}:\n${err.slice(-2_000)}`);
  const lines = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { scenario: string; verify?: { ok?: boolean } });
  assert.deepEqual(lines.map((l) => l.scenario).sort(), [...scenarios].sort(), "one line per scenario");
  for (const l of lines) assert.equal(l.verify?.ok, true, `${l.scenario}: ${JSON.stringify(l.verify)}`);
  t.diagnostic(`${lines.length} scenarios verified`);
});
