// Profiling aid: EXPLAIN (ANALYZE, BUFFERS) of pgjobs' claim and finish statements (sql/, as the
// runtime loads them) on a fresh table, after part of it was worked through by one worker, and
// after VACUUM; and the SQL floor's claim + finish rate at each point. Every EXPLAIN runs in a
// transaction that is rolled back, so it changes nothing.
//
//   node dist/bench/explain.js [--n 1000000] [--finish 500000] [--batch 50] [--plans generic,custom]
//                              [--no-trigger]   (also measure with tasks_workflow_step disabled)
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { createJobs } from "../src/index.js";
import { statement } from "../src/sql.js";
import { freshDatabase, round, SCHEMA } from "./common.js";
import { claimFinishCycle, prefillSql } from "./floor.js";

const { values: opt } = parseArgs({
  options: {
    n: { type: "string", default: "1000000" },
    finish: { type: "string", default: "500000" },
    batch: { type: "string", default: "50" },
    "no-trigger": { type: "boolean", default: false },
  },
});
const N = Number(opt.n), FINISH = Number(opt.finish), B = Number(opt.batch);
const claim = statement(SCHEMA, "task_claim_many");
const finish = statement(SCHEMA, "task_finish_many");
const rescue = statement(SCHEMA, "task_rescue_expired");
const lit = (xs: unknown[], type: string) => `'{${xs.map((x) => (typeof x === "string" ? `"${x.replace(/"/g, '\\"')}"` : String(x))).join(",")}}'::${type}`;

/** EXPLAIN ANALYZE claim then finish of `batch` tasks as worker `wid`, under a plan cache mode. */
async function explainCycle(c: pg.Client, wid: string, batch: number, mode: "force_custom_plan" | "force_generic_plan") {
  await c.query("begin");
  try {
    await c.query(`set local plan_cache_mode = ${mode}`);
    await c.query(`prepare x_claim(text, int, uuid, int) as ${claim.text}`);
    await c.query(`prepare x_finish(bigint[], int[], jsonb[], uuid) as ${finish.text}`);
    const ex = async (sql: string) => (await c.query(`explain (analyze, buffers) ${sql}`)).rows.map((r) => r["QUERY PLAN"] as string).join("\n");
    const claimPlan = await ex(`execute x_claim('default', ${batch}, '${wid}', 15000)`);
    // The claim above was only explained (its effects stand inside this transaction): finish the
    // rows it claimed.
    const { rows } = await c.query<{ id: string; attempts: number }>(`select id, attempts from ${SCHEMA}.tasks where state = 'running' and worker_id = $1 order by id limit $2`, [wid, batch]);
    const finishPlan = await ex(`execute x_finish(${lit(rows.map((r) => r.id), "bigint[]")}, ${lit(rows.map((r) => r.attempts), "int[]")}, ${lit(rows.map(() => "null"), "jsonb[]")}, '${wid}')`);
    // The rescuer runs every rescueInterval in every worker: how much does it read?
    const rescuePlan = await ex(`${rescue.text.replace(/\$1/g, "1000")}`);
    return { claimPlan, finishPlan, rescuePlan };
  } finally {
    await c.query("rollback");
    await c.query("deallocate all"); // PREPARE is not transactional
  }
}

async function tableState(c: pg.Client) {
  const { rows: [r] } = await c.query(
    `select n_live_tup::int as live, n_dead_tup::int as dead, vacuum_count::int as vacuums, autovacuum_count::int as autovacuums
       from pg_stat_user_tables where relid = '${SCHEMA}.tasks'::regclass`);
  // Pages of every index on the table (names differ between schema versions).
  const { rows: idx } = await c.query<{ name: string; pages: string }>(
    `select c.relname as name, pg_relation_size(i.indexrelid) / 8192 as pages
       from pg_index i join pg_class c on c.oid = i.indexrelid where i.indrelid = '${SCHEMA}.tasks'::regclass order by 1`);
  return { ...r, index_pages: Object.fromEntries(idx.map((x) => [x.name, Number(x.pages)])) };
}

const db = await freshDatabase("explain");
const c = new pg.Client(db.url);
const harness = new pg.Pool({ connectionString: db.url, max: 2 });
const report: Array<Record<string, unknown>> = [];
const print = (title: string, body: string) => console.log(`\n==== ${title}\n${body}`);
try {
  await c.connect();
  const jobs = createJobs({ connectionString: db.url, logLevel: "warn" });
  await jobs.migrate();
  await jobs.close();
  const t0 = performance.now();
  await prefillSql(c, N);
  print(`prefilled ${N} tasks in ${round((performance.now() - t0) / 1000, 1)} s (no ANALYZE yet)`, JSON.stringify(await tableState(c)));

  // The worker id matters: the finish may find its rows through tasks_running_idx (worker_id),
  // whose entries for that worker's finished tasks stay until VACUUM.
  const stage = async (label: string, wid = randomUUID()) => {
    for (const mode of ["force_custom_plan", "force_generic_plan"] as const) {
      const p = await explainCycle(c, wid, B, mode);
      print(`${label}: claim ${B}, ${mode}`, p.claimPlan);
      print(`${label}: finish ${B}, ${mode}`, p.finishPlan);
      if (mode === "force_custom_plan") print(`${label}: task_rescue_expired`, p.rescuePlan);
    }
    const state = await tableState(c);
    const floor = await claimFinishCycle(db.url, db.name, harness, { batch: B, connections: 1, seconds: 3, workerId: wid });
    const line = { stage: label, table: state, floor_b: B, floor_rate: floor.rate, claim_ms: floor.claim_ms_mean, finish_ms: floor.finish_ms_mean, pg_us_per_task: floor.pg_cpu_us_per_task };
    if (opt["no-trigger"]) {
      await c.query(`alter table ${SCHEMA}.tasks disable trigger tasks_workflow_step`);
      const f2 = await claimFinishCycle(db.url, db.name, harness, { batch: B, connections: 1, seconds: 3, workerId: wid });
      await c.query(`alter table ${SCHEMA}.tasks enable trigger tasks_workflow_step`);
      Object.assign(line, { floor_rate_no_trigger: f2.rate, claim_ms_no_trigger: f2.claim_ms_mean, finish_ms_no_trigger: f2.finish_ms_mean, pg_us_per_task_no_trigger: f2.pg_cpu_us_per_task });
    }
    print(`${label}: table and floor`, JSON.stringify(line));
    report.push(line);
  };

  await stage("fresh table");
  await c.query(`analyze ${SCHEMA}.tasks`);
  await stage("fresh table, analyzed");

  // Work through FINISH tasks as ONE worker (one worker_id), in batches of B on two connections,
  // the way a worker process does: this leaves the dead tuples a real drain leaves.
  const wid = randomUUID();
  const t1 = performance.now();
  let done = 0;
  await Promise.all([0, 1].map(async () => {
    const cc = new pg.Client(db.url);
    await cc.connect();
    while (done < FINISH) {
      const { rows } = await cc.query<{ id: string; attempts: number }>({ name: claim.name, text: claim.text, values: ["default", Math.min(500, FINISH - done), wid, 15000] });
      if (!rows.length) break;
      done += rows.length;
      await cc.query({ name: finish.name, text: finish.text, values: [rows.map((r) => r.id), rows.map((r) => r.attempts), rows.map(() => "null"), wid] });
    }
    await cc.end();
  }));
  print(`finished ${done} tasks as one worker in ${round((performance.now() - t1) / 1000, 1)} s`, JSON.stringify(await tableState(c)));
  await stage(`after ${done} finished (before vacuum), another worker`);
  await stage(`after ${done} finished (before vacuum), the same worker`, wid);
  const tv = performance.now();
  await c.query(`vacuum ${SCHEMA}.tasks`);
  print(`vacuum took ${round((performance.now() - tv) / 1000, 1)} s`, JSON.stringify(await tableState(c)));
  await stage(`after ${done} finished, after VACUUM, the same worker`, wid);
  console.log(`\n${JSON.stringify({ explain: report })}`);
} finally {
  await c.end().catch(() => {});
  await harness.end().catch(() => {});
  await db.drop();
}
