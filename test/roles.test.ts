/**
 * Producer and worker roles (issue 6): `pgjobs migrate --producer-role P --worker-role W` grants
 * them what they need and no more. A producer enqueues and reads results, but cannot claim,
 * update or delete tasks; a worker role runs them. Roles are cluster-wide, so each run creates
 * its own (unique names) and drops them at the end.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import pg from "pg";
import { migrate } from "../src/migrator.js";
import { REPO_ROOT } from "./helpers/paths.js";
import { createJobs, type Jobs } from "../src/index.js";
import { statement } from "../src/sql.js";
import { runCli } from "./helpers/cli.js";
import { useDatabase } from "./helpers/db.js";

const db = useDatabase();
const suffix = `${process.pid}_${Date.now().toString(36)}`;
const PRODUCER = `pgjobs_t_producer_${suffix}`;
const WORKER = `pgjobs_t_worker_${suffix}`;
const PASSWORD = `pw_${suffix}`;

/** db.url, connecting as `role`. */
function urlAs(role: string): string {
  const u = new URL(db.url);
  u.username = role;
  u.password = PASSWORD;
  return u.toString();
}

async function asAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: db.serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

let rolesCreated = false;
async function createRoles(): Promise<void> {
  if (rolesCreated) return;
  rolesCreated = true;
  for (const role of [PRODUCER, WORKER]) await asAdmin(`create role ${pg.escapeIdentifier(role)} login password '${PASSWORD}'`);
  db.onClose(async () => {
    // Their grants live in this database: drop them here, then the roles (cluster-wide).
    await db.query(`drop owned by ${pg.escapeIdentifier(PRODUCER)}, ${pg.escapeIdentifier(WORKER)}`);
    for (const role of [PRODUCER, WORKER]) await asAdmin(`drop role if exists ${pg.escapeIdentifier(role)}`);
  });
}

function jobsAs(role: string): Jobs {
  const jobs = createJobs({ connectionString: urlAs(role), logLevel: "silent", poolSize: 2, resultPoll: 60_000 });
  db.onClose(() => jobs.close());
  return jobs;
}

/** The SQLSTATE `promise` rejects with. */
async function sqlstate(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return "(no error)";
}

test("pgjobs migrate --producer-role --worker-role grants each role its part", async () => {
  await createRoles();
  const r = await runCli(["migrate", "--database-url", db.url, "--producer-role", PRODUCER, "--worker-role", WORKER]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^granted producer privileges to ${PRODUCER}$`, "m"));
  assert.match(r.stdout, new RegExp(`^granted worker privileges to ${WORKER}$`, "m"));
  // Idempotent: granting again changes nothing and succeeds.
  const again = await runCli(["migrate", "--database-url", db.url, "--producer-role", PRODUCER, "--worker-role", WORKER, "--json"]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout).applied, []);
});

test("a producer enqueues and gets the result a worker-role worker produced", async () => {
  await createRoles();
  const producer = jobsAs(PRODUCER);
  const worker = jobsAs(WORKER);
  const add = producer.task("add", async (_ctx, a: number, b: number) => a + b, { queue: "roles" });
  worker.task("add", async (_ctx, a: number, b: number) => a + b, { queue: "roles" });
  await worker.worker({ queues: ["roles"], concurrency: 2 }).start();

  const r = await add.delay(2, 3);
  assert.equal(await r.get({ timeout: 10_000 }), 5);
  // A batch goes through the client's other statement (enqueue_many_json).
  const batch = await producer.enqueueMany([add.s(1, 1), add.s(2, 2), add.s(3, 3)]);
  assert.deepEqual(await Promise.all(batch.map((b) => b.get({ timeout: 10_000 }))), [2, 4, 6]);
  // The SQL API works for the producer too, as for any language.
  const { rows } = await producer.pool.query("select jobs.enqueue('add', '[20, 22]', queue => 'roles') as id");
  assert.equal(await producer.result(rows[0].id, "add").get({ timeout: 10_000 }), 42);
  const { rows: who } = await db.query("select distinct worker_id is not null as ran from jobs.tasks where queue = 'roles'");
  assert.deepEqual(who, [{ ran: true }]);
});

test("the producer role cannot claim, update or delete tasks, nor write the tables directly", async () => {
  await createRoles();
  const producer = jobsAs(PRODUCER);
  const { rows } = await db.query("select jobs.enqueue('victim', '[]', queue => 'roles-denied') as id");
  const id = rows[0].id;
  const st = (name: string) => statement("jobs", name);
  const denied = "42501"; // insufficient_privilege
  const q = (text: string, values: unknown[] = []) => producer.pool.query(text, values);

  assert.equal(await sqlstate(q(st("task_claim_many").text, ["roles-denied", 10, "00000000-0000-0000-0000-000000000001", 10_000])), denied, "claim");
  assert.equal(await sqlstate(q("select id from jobs.tasks where id = $1 for update skip locked", [id])), denied, "lock for claiming");
  assert.equal(await sqlstate(q("update jobs.tasks set state = 'running' where id = $1", [id])), denied, "update");
  assert.equal(await sqlstate(q("delete from jobs.tasks where id = $1", [id])), denied, "delete");
  assert.equal(await sqlstate(q("insert into jobs.tasks (name) values ('direct')")), denied, "insert (enqueue goes through the functions)");
  assert.equal(await sqlstate(q(st("task_finish_many").text, [[id], [1], ['"forged"'], "00000000-0000-0000-0000-000000000001"])), denied, "finish");
  assert.equal(await sqlstate(q(st("task_rescue_expired").text, [10])), denied, "rescue");
  assert.equal(await sqlstate(q("select jobs.grant_worker($1)", [PRODUCER])), denied, "grant itself more");
  // Reading is allowed: results, status.
  assert.equal((await q("select state from jobs.tasks where id = $1", [id])).rows[0].state, "ready");
  const after = await db.query("select state, attempts, worker_id from jobs.tasks where id = $1", [id]);
  assert.deepEqual(after.rows[0], { state: "ready", attempts: 0, worker_id: null }, "nothing changed");

  // The worker role may not hand out roles either.
  const worker = jobsAs(WORKER);
  assert.equal(await sqlstate(worker.pool.query("select jobs.grant_producer($1)", [WORKER])), denied);
});

test("the producer role can use the read-only and enqueue commands of the CLI", async () => {
  await createRoles();
  const env = { DATABASE_URL: urlAs(PRODUCER) };
  const enq = await runCli(["enqueue", "add", "--args", "[1, 2]", "--queue", "roles-cli", "--json"], { env });
  assert.equal(enq.code, 0, enq.stderr);
  const id = JSON.parse(enq.stdout).id as string;
  const show = await runCli(["task", "show", id, "--json"], { env });
  assert.equal(show.code, 0, show.stderr);
  assert.deepEqual(JSON.parse(show.stdout).args, [1, 2]);
  assert.equal((await runCli(["status", "--json"], { env })).code, 0);
  // Purging is a write: refused, in one line.
  const purge = await runCli(["purge", "--state", "failed", "--older-than", "1d"], { env });
  assert.equal(purge.code, 2);
  assert.match(purge.stderr, /^pgjobs: the database refused: permission denied for table tasks \(SQLSTATE 42501\)/m);
});

test("granting to a role that does not exist is one line naming it, exit 2", async () => {
  const r = await runCli(["migrate", "--database-url", db.url, "--producer-role", `pgjobs_t_nosuch_${suffix}`]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, new RegExp(`^pgjobs: role "pgjobs_t_nosuch_${suffix}" does not exist: create it first .*\\n$`));
});

test("roles granted before enqueue_many took delays (000014) can still call it after that migration, and the client's batch statement (000017)", async () => {
  await createRoles();
  const other = await db.createDatabase({ migrated: false });
  db.onClose(async () => {
    // The roles' grants in this database go before the roles do (registered after createRoles: runs first).
    const c = new pg.Client({ connectionString: other.url });
    await c.connect();
    try {
      await c.query(`drop owned by ${pg.escapeIdentifier(PRODUCER)}, ${pg.escapeIdentifier(WORKER)}`);
    } finally {
      await c.end();
    }
  });
  // The migrations as they were before 000014, with the roles granted then; then the rest.
  const committed = join(REPO_ROOT, "migrations", "committed");
  const before = mkdtempSync(join(tmpdir(), "pgjobs-before-000014-"));
  db.onClose(() => rmSync(before, { recursive: true, force: true }));
  for (const f of readdirSync(committed).filter((f) => f < "000014")) copyFileSync(join(committed, f), join(before, f));
  await migrate(other.url, { dir: `${before}/`, producerRole: PRODUCER, workerRole: WORKER });
  const { applied } = await migrate(other.url);
  assert.equal(applied[0]?.slice(0, 6), "000014", "the upgrade applied 000014 and what came after it");
  for (const role of [PRODUCER, WORKER]) {
    const u = new URL(other.url);
    u.username = role;
    u.password = PASSWORD;
    const c = new pg.Client({ connectionString: u.toString() });
    await c.connect();
    try {
      const { rows } = await c.query("select id from jobs.enqueue_many(array['after_upgrade'], delays_ms => array[60000]::bigint[])");
      assert.equal(rows.length, 1, `${role} enqueues through the new signature`);
      const batch = await c.query(statement("jobs", "task_enqueue_many").text, [JSON.stringify(["b1", "b2"]), ...Array(13).fill(null)]);
      assert.equal(batch.rows[0].ids.split(",").length, 2, `${role} enqueues a batch as the client does`);
    } finally {
      await c.end();
    }
  }
});
