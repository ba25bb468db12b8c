/**
 * Issue 3, prefork: `pgjobs worker --processes N` runs CPU-bound tasks in N processes, restarts a
 * child that dies, and exits 0 on SIGTERM. The workers are the real CLI, spawned with an app module
 * from test/fixtures.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { useDatabase } from "./helpers/db.js";
import { CLI_BIN } from "./helpers/paths.js";
import { calibrate } from "./fixtures/issue3-hash.js";
import { Child, waitFor } from "./fixtures/issue3-util.js";

const db = useDatabase();
const APP = fileURLToPath(new URL("./fixtures/issue3-cpu-app.js", import.meta.url));
const TASKS = 8;

function startWorker(queue: string, processes: number): Child {
  const child = new Child(
    [CLI_BIN, "worker", "--app", APP, "--queues", queue, "--concurrency", "1", "--processes", String(processes), "--database-url", db.url],
    { PGJOBS_LOG_LEVEL: "warn" },
    true, // its own process group, so teardown also reaches the supervisor's children
  );
  db.onClose(() => child.close());
  return child;
}

async function workerPids(queue: string): Promise<number[]> {
  const { rows } = await db.query<{ pid: number }>("select pid from jobs.workers where $1 = any(queues) order by started_at, pid", [queue]);
  return rows.map((r) => r.pid);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Enqueue `n` hashing tasks on `queue` and wait until they all finished. */
async function runBatch(queue: string, rounds: number, n = TASKS): Promise<{ ids: string[]; ms: number; pids: number[] }> {
  const { rows } = await db.query<{ id: string }>(
    "select id from jobs.enqueue_many(array_fill('issue3_hash'::text, array[$3::int]), array_fill(jsonb_build_array($1::int), array[$3::int]), array_fill($2::text, array[$3::int]))",
    [rounds, queue, n],
  );
  const ids = rows.map((r) => r.id);
  await waitFor(`${n} hashing tasks on ${queue} to finish`, async () => {
    const res = await db.query("select count(*)::int as n from jobs.tasks where id = any($1::bigint[]) and state in ('succeeded', 'failed', 'cancelled')", [ids]);
    return res.rows[0].n === n;
  }, 120_000, 50);
  const done = await db.query<{ state: string; attempts: number; pid: number; ms: number }>(
    `select state::text, attempts, (result->>'pid')::int as pid,
            (extract(epoch from max(finished_at) over () - min(created_at) over ()) * 1000)::int as ms
       from jobs.tasks where id = any($1::bigint[])`,
    [ids],
  );
  for (const r of done.rows) assert.deepEqual({ state: r.state, attempts: r.attempts }, { state: "succeeded", attempts: 1 });
  // Exactly once: one recorded run per task, in the process that reported the result.
  const runs = await db.query<{ task_id: string; n: number; pids: number[] }>(
    "select task_id::text, count(*)::int as n, array_agg(pid) as pids from issue3_runs where task_id = any($1::bigint[]) group by 1",
    [ids],
  );
  assert.equal(runs.rows.length, n, "every task ran");
  for (const r of runs.rows) assert.equal(r.n, 1, `task ${r.task_id} ran ${r.n} times (pids ${r.pids.join(", ")})`);
  return { ids, ms: done.rows[0]!.ms, pids: done.rows.map((r) => r.pid) };
}

test("CPU-bound tasks: --processes 2 runs them in two processes, each exactly once; a killed child is restarted; SIGTERM exits 0", async (t) => {
  await db.query("create table issue3_runs (task_id bigint not null, pid integer not null, at timestamptz not null default clock_timestamp())");
  const rounds = calibrate(1_000);
  t.diagnostic(`each task: ${rounds} SHA-256 rounds over 4 KiB (about 1 s on this machine)`);

  // One process: the tasks run one after another (one event loop).
  const single = startWorker("cpu1", 1);
  const [singlePid] = await waitFor("the single worker to register", async () => {
    const pids = await workerPids("cpu1");
    return pids.length === 1 ? pids : null;
  }, 30_000);
  assert.equal(singlePid, single.proc.pid, "with --processes 1 the worker runs in the CLI's own process");
  const one = await runBatch("cpu1", rounds);
  assert.deepEqual([...new Set(one.pids)], [singlePid]);
  single.proc.kill("SIGTERM");
  const singleExit = await single.exited;
  assert.equal(singleExit.code, 0, `exit code 0 after SIGTERM; stderr: ${single.stderr}`);
  assert.deepEqual(await workerPids("cpu1"), [], "the stopped worker deregistered");

  // Two processes under a supervisor.
  const sup = startWorker("cpu2", 2);
  const children = await waitFor("two worker processes to register", async () => {
    const pids = await workerPids("cpu2");
    return pids.length === 2 ? pids : null;
  }, 30_000);
  assert.equal(new Set(children).size, 2);
  assert.ok(!children.includes(sup.proc.pid!), "the workers are the supervisor's children, not the supervisor");
  const two = await runBatch("cpu2", rounds);
  assert.deepEqual([...new Set(two.pids)].sort(), [...children].sort(), "the tasks ran in both processes");

  t.diagnostic(`${TASKS} CPU-bound tasks: --processes 1 took ${one.ms} ms, --processes 2 took ${two.ms} ms (${(one.ms / two.ms).toFixed(2)}x)`);
  console.log(`prefork: ${TASKS} x ~1 s CPU tasks, --processes 1: ${one.ms} ms, --processes 2: ${two.ms} ms`);

  // A child that dies is replaced.
  const victim = children[0]!;
  process.kill(victim, "SIGKILL");
  const replacement = await waitFor("the supervisor to start a new worker process", async () => {
    const pids = await workerPids("cpu2");
    return pids.find((p) => !children.includes(p));
  }, 30_000);
  assert.ok(!alive(victim), "the killed child is gone");
  assert.ok(alive(replacement), "the replacement runs");
  assert.ok(alive(sup.proc.pid!), "the supervisor survived its child's death");
  // The pool still works, with the replacement in it.
  const more = await runBatch("cpu2", 1_000, 4);
  assert.equal(more.ids.length, 4);

  sup.proc.kill("SIGTERM");
  const supExit = await sup.exited;
  assert.equal(supExit.code, 0, `supervisor exit code 0 after SIGTERM; stderr: ${sup.stderr}`);
  assert.ok(!alive(replacement) && !alive(children[1]!), "its children stopped too");
  // The live children deregistered; the row of the one killed with -9 stays until pruned.
  assert.deepEqual(await workerPids("cpu2"), [victim]);
});
