/**
 * Workers vacuum the tasks table when dead tuples pile up in front of the claim (WorkerOptions
 * vacuum): above 20,000 dead tuples and 5 % of live rows, one worker at a time, if it owns the
 * table. Without it, a claim walks every dead entry at the front of tasks_ready_idx until
 * autovacuum comes by (at most once a minute).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { useDatabase } from "./helpers/db.js";
import { openJobs, waitFor } from "./fixtures/issue3-util.js";

const db = useDatabase();

async function deadTuples(): Promise<{ dead: number; vacuums: number }> {
  // Statistics are flushed lazily; Postgres 15 can be asked to flush now.
  await db.query("select pg_stat_force_next_flush()").catch(() => {});
  const { rows } = await db.query(
    "select n_dead_tup::int as dead, vacuum_count::int as vacuums from pg_stat_user_tables where relid = 'jobs.tasks'::regclass",
  );
  return rows[0];
}

test("a worker vacuums the tasks table once dead tuples pile up, and not before", async () => {
  // 30,000 finished rows, each updated once: 30,000 dead tuples, 30,000 live.
  await db.query("alter table jobs.tasks set (autovacuum_enabled = false)");
  await db.query("insert into jobs.tasks (name, queue, state) select 'old', 'vac', 'ready' from generate_series(1, 30000)");
  await db.query("update jobs.tasks set state = 'succeeded', finished_at = now() where queue = 'vac'");
  await waitFor("the statistics to show the dead tuples", async () => (await deadTuples()).dead >= 20_000);
  const before = await deadTuples();

  const jobs = openJobs(db);
  const quiet = jobs.worker({ queues: ["vac"], rescueInterval: 100, vacuum: false });
  await quiet.start();
  await new Promise((r) => setTimeout(r, 600));
  await quiet.stop();
  assert.equal((await deadTuples()).vacuums, before.vacuums, "vacuum: false leaves the table alone");

  const worker = jobs.worker({ queues: ["vac"], rescueInterval: 100 });
  await worker.start();
  const after = await waitFor("the worker to vacuum", async () => {
    const s = await deadTuples();
    return s.vacuums > before.vacuums ? s : undefined;
  }, 20_000);
  assert.ok(after.dead < before.dead, `dead tuples went down: ${before.dead} -> ${after.dead}`);
  await jobs.close();
});
