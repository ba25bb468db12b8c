import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import type pg from "pg";
import { toParams, type TaskRow } from "../src/enqueuer.js";
import { statement } from "../src/sql.js";
import { useDatabase } from "./helpers/db.js";

const db = useDatabase();

async function count(where: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from jobs.tasks where ${where}`, params);
  return rows[0]!.n;
}

/** The error `promise` rejects with, which must be a one-line SQL error with code 22023. */
async function invalidInput(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  let caught: (Error & { code?: string }) | undefined;
  await promise.catch((err) => (caught = err));
  assert.ok(caught, "expected the statement to fail");
  assert.equal(caught.code, "22023", `invalid_parameter_value, got ${caught.code}: ${caught.message}`);
  assert.ok(!caught.message.includes("\n"), `one line: ${JSON.stringify(caught.message)}`);
  return caught;
}

test("select jobs.enqueue('add', '[2,2]') returns an id and a ready row", async () => {
  const { rows } = await db.query("select jobs.enqueue('add', '[2,2]') as id");
  const id = rows[0].id;
  assert.match(String(id), /^\d+$/);
  const task = await db.query("select name, args, queue, state, attempts, priority from jobs.tasks where id = $1", [id]);
  assert.deepEqual(task.rows, [{ name: "add", args: [2, 2], queue: "default", state: "ready", attempts: 0, priority: 0 }]);
});

test("an enqueue whose transaction rolls back leaves nothing", async () => {
  const client = await db.connect();
  await client.query("begin");
  const { rows } = await client.query("select jobs.enqueue('rolled_back', '[]') as id");
  assert.equal(await count("name = 'rolled_back'"), 0, "invisible to others before commit");
  await client.query("rollback");
  assert.equal(await count("id = $1 or name = 'rolled_back'", [rows[0].id]), 0);
});

test("enqueue_many returns the ids in input order, a dedup key's holder included", async () => {
  const key = `k-${randomUUID()}`;
  const holder = (await db.query("select jobs.enqueue('holder', '[]', key => $1) as id", [key])).rows[0].id;
  const { rows } = await db.query<{ id: string }>(
    "select id from jobs.enqueue_many(array['m1', 'm2', 'm3', 'm4'], keys => array[null, $1, null, null])",
    [key],
  );
  const ids = rows.map((r) => r.id);
  assert.equal(ids.length, 4);
  assert.equal(ids[1], holder, "the keyed entry returns the unfinished holder's id");
  // The holder is older than the rest, so an ascending sort would misplace it: order is input order.
  const named = await db.query<{ id: string; name: string }>("select id, name from jobs.tasks where id = any($1::bigint[])", [ids]);
  const nameOf = new Map(named.rows.map((r) => [r.id, r.name]));
  assert.deepEqual(ids.map((id) => nameOf.get(id)), ["m1", "holder", "m3", "m4"]);
});

test("enqueue_many without keys returns the ids in input order, ready and future rows mixed", async () => {
  const names = Array.from({ length: 300 }, (_, i) => `order-${i}`);
  const runAts = names.map((_, i) => (i % 3 === 0 ? new Date(Date.now() + 3_600_000) : null));
  const { rows } = await db.query<{ id: string }>("select id from jobs.enqueue_many($1::text[], run_ats => $2::timestamptz[])", [names, runAts]);
  const named = await db.query<{ id: string; name: string; state: string }>("select id, name, state from jobs.tasks where id = any($1::bigint[])", [rows.map((r) => r.id)]);
  const byId = new Map(named.rows.map((r) => [r.id, r]));
  assert.deepEqual(rows.map((r) => byId.get(r.id)?.name), names);
  assert.deepEqual(rows.map((r) => byId.get(r.id)?.state), runAts.map((t) => (t ? "pending" : "ready")));
});

test("a dedup key returns the unfinished task's id, and is free again once it finished", async () => {
  const key = `k-${randomUUID()}`;
  const enqueue = async () => (await db.query("select jobs.enqueue('dedup', '[1]', key => $1) as id", [key])).rows[0].id;
  const first = await enqueue();
  assert.equal(await enqueue(), first);
  assert.equal(await count("key = $1", [key]), 1);

  await db.query("update jobs.tasks set state = 'succeeded', finished_at = now() where id = $1", [first]);
  const next = await enqueue();
  assert.notEqual(next, first);
  assert.equal(await count("key = $1", [key]), 2);
});

test("bad input raises a one-line error and writes nothing", async () => {
  const before = await count("true");
  const queue = await invalidInput(db.query("select jobs.enqueue('bad', '[]', queue => 'no spaces allowed')"));
  assert.match(queue.message, /queue/);
  const priority = await invalidInput(db.query("select jobs.enqueue('bad', '[]', priority => 101)"));
  assert.match(priority.message, /priority 101/);
  const args = await invalidInput(db.query(`select jobs.enqueue('bad', '{"a": 1}')`));
  assert.match(args.message, /args must be a JSON array/);
  // One bad element fails the whole batch: its good neighbours are not written either.
  await invalidInput(db.query("select * from jobs.enqueue_many(array['good', 'bad', 'good'], priorities => array[0, 101, 0])"));
  // The error names the first bad row, whichever check (of whole arrays) caught the batch.
  const third = await invalidInput(db.query("select * from jobs.enqueue_many(array['a', 'b', 'c', 'd'], queues => array['q', 'q', 'bad queue', 'also bad'])"));
  assert.match(third.message, /task c: invalid queue name 'bad queue'/);
  const headers = await invalidInput(db.query(`select * from jobs.enqueue_many(array['a', 'b'], headers => array['{}', '[1]']::jsonb[])`));
  assert.match(headers.message, /task b: headers must be a JSON object, got array/);
  const delay = await invalidInput(db.query("select * from jobs.enqueue_many(array['a', 'b'], delays_ms => array[0, -5]::bigint[])"));
  assert.match(delay.message, /task b: delay -5 ms is negative/);
  // Values past the column's range (smallint) get the same message as those past the check's.
  const huge = await invalidInput(db.query("select * from jobs.enqueue_many(array['a', 'b'], priorities => array[0, 40000])"));
  assert.match(huge.message, /task b: priority 40000 is out of range/);
  const attempts = await invalidInput(db.query("select * from jobs.enqueue_many(array['a'], max_attempts => array[0])"));
  assert.match(attempts.message, /task a: max_attempts 0 is out of range/);
  const noName = await invalidInput(db.query("select * from jobs.enqueue_many(array['a', null])"));
  assert.match(noName.message, /task #2 has an invalid name NULL/);
  const longQueue = await invalidInput(db.query("select * from jobs.enqueue_many(array['a'], queues => array[repeat('q', 64)])"));
  assert.match(longQueue.message, /task a: invalid queue name 'q{64}'/);
  // An array longer than names would give tasks with no name: refused, saying so.
  const lengths = await invalidInput(db.query("select * from jobs.enqueue_many(array['a'], run_ats => array[now(), now()])"));
  assert.match(lengths.message, /arrays of different lengths \(1 names\)/);
  assert.equal(await count("true"), before);
});

test("enqueue_many_json (the client's batches) returns the ids in input order, each column's values and defaults in place", async () => {
  const future = new Date(Date.now() + 3_600_000).toISOString();
  const group = randomUUID();
  const { rows } = await db.query<{ ids: string }>(
    `select jobs.enqueue_many_json($1, $2, $3, $4, $5, $6, null, $7, $8, $9, null, $10, $11) as ids`,
    [
      JSON.stringify(["j1", "j2", "j3", "j4"]),
      JSON.stringify([[1], null, [{ a: "b" }], []]),
      JSON.stringify(["jq", null, "jq", "jq2"]),
      JSON.stringify([5, null, -5, 0]),
      JSON.stringify([null, future, null, null]),
      JSON.stringify([1, null, 10, null]),
      JSON.stringify([{ h: 1 }, null, null, {}]),
      JSON.stringify([null, null, "17", null]),
      JSON.stringify([group, group, null, null]),
      JSON.stringify([null, 250, null, null]),
      JSON.stringify([null, null, null, { t: "chain" }]),
    ],
  );
  const ids = rows[0]!.ids.split(",");
  const { rows: tasks } = await db.query(
    `select id::text, name, args, queue, priority, state, max_attempts, headers, parent_id::text, group_id, timeout_ms, workflow,
            run_at = $2::timestamptz as at_future
       from jobs.tasks where id = any($1::bigint[])`,
    [ids, future],
  );
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const row = (id: string) => {
    const { id: _, ...rest } = byId.get(id);
    return rest;
  };
  assert.deepEqual(ids.map(row), [
    { name: "j1", args: [1], queue: "jq", priority: 5, state: "ready", max_attempts: 1, headers: { h: 1 }, parent_id: null, group_id: group, timeout_ms: null, workflow: null, at_future: false },
    { name: "j2", args: [], queue: "default", priority: 0, state: "pending", max_attempts: 4, headers: {}, parent_id: null, group_id: group, timeout_ms: 250, workflow: null, at_future: true },
    { name: "j3", args: [{ a: "b" }], queue: "jq", priority: -5, state: "ready", max_attempts: 10, headers: {}, parent_id: "17", group_id: null, timeout_ms: null, workflow: null, at_future: false },
    { name: "j4", args: [], queue: "jq2", priority: 0, state: "ready", max_attempts: 4, headers: {}, parent_id: null, group_id: null, timeout_ms: null, workflow: { t: "chain" }, at_future: false },
  ]);
  // 1,000 rows: still input order (ids ascend as the rows were given).
  const names = Array.from({ length: 1000 }, (_, i) => `bulk-${i}`);
  const bulk = (await db.query<{ ids: string }>("select jobs.enqueue_many_json($1) as ids", [JSON.stringify(names)])).rows[0]!.ids.split(",");
  const named = await db.query<{ id: string; name: string }>("select id::text, name from jobs.tasks where id = any($1::bigint[])", [bulk]);
  const nameOf = new Map(named.rows.map((r) => [r.id, r.name]));
  assert.deepEqual(bulk.map((id) => nameOf.get(id)), names);
});

test("the client's batch statement carries whichever column a row sets, and no array for a column of defaults", async () => {
  const base: TaskRow = {
    name: "cols", args: "[1]", queue: "default", priority: 0, runAt: null, delayMs: null, maxAttempts: 4, key: null,
    headers: "{}", parentId: null, groupId: null, chordId: null, timeoutMs: null, workflow: null,
  };
  const at = new Date(Date.now() + 3_600_000);
  const group = randomUUID(), chord = randomUUID();
  // Each column the statement takes, in parameter order after names and args: a value other than
  // its default, and what the task's row then holds.
  type Check = (row: Record<string, unknown>) => unknown;
  const columns: [keyof TaskRow, unknown, Check, unknown][] = [
    ["queue", "cols_q", (r) => r.queue, "cols_q"],
    ["priority", 7, (r) => r.priority, 7],
    ["runAt", at, (r) => (r.run_at as Date).getTime(), at.getTime()],
    ["maxAttempts", 9, (r) => r.max_attempts, 9],
    ["key", `cols-${randomUUID()}`, (r) => typeof r.key, "string"],
    ["headers", '{"h":1}', (r) => r.headers, { h: 1 }],
    ["parentId", "12345", (r) => r.parent_id, "12345"],
    ["groupId", group, (r) => r.group_id, group],
    ["chordId", chord, (r) => r.chord_id, chord],
    ["timeoutMs", 1500, (r) => r.timeout_ms, 1500],
    ["workflow", '{"w":1}', (r) => r.workflow, { w: 1 }],
    ["delayMs", 60_000, (r) => r.later, true],
  ];
  const st = statement("jobs", "task_enqueue_many");
  for (const [i, [key, value, read, expected]] of columns.entries()) {
    const rows = [base, { ...base, [key]: value }];
    const params = toParams(rows);
    assert.equal(params.length, 14);
    // names, args, and only the column set: the others hold nothing but defaults.
    params.forEach((p, c) => assert.equal(p === null, c >= 2 && c !== i + 2, `${key}: parameter ${c + 1} is ${String(p)}`));
    const ids = (await db.query<{ ids: string }>(st.text, params)).rows[0]!.ids.split(",");
    const { rows: [task] } = await db.query("select *, run_at > now() + interval '50 seconds' as later from jobs.tasks where id = $1", [ids[1]]);
    assert.deepEqual(read(task), expected, key);
  }
});

test("enqueue_many_json takes enqueue_many's path for dedup keys and delays", async () => {
  const key = `k-${randomUUID()}`;
  const holder = (await db.query("select jobs.enqueue('holder', '[]', key => $1) as id", [key])).rows[0].id;
  const { rows } = await db.query<{ ids: string }>("select jobs.enqueue_many_json($1, $2, keys => $3, delays_ms => $4) as ids", [
    JSON.stringify(["d1", "d2", "d3"]),
    JSON.stringify([[1], [2], null]),
    JSON.stringify([null, key, null]),
    JSON.stringify([60_000, null, 0]),
  ]);
  const ids = rows[0]!.ids.split(",");
  assert.equal(ids[1], String(holder), "the keyed entry returns the unfinished holder's id");
  const { rows: tasks } = await db.query("select id::text, name, args, state from jobs.tasks where id = any($1::bigint[])", [ids]);
  const byId = new Map(tasks.map((t) => [t.id, t]));
  assert.deepEqual(ids.map((id) => byId.get(id)), [
    { id: ids[0], name: "d1", args: [1], state: "pending" },
    { id: ids[1], name: "holder", args: [], state: "ready" },
    { id: ids[2], name: "d3", args: [], state: "ready" },
  ]);
  // A negative delay gets enqueue_many's message.
  const delay = await invalidInput(db.query(`select jobs.enqueue_many_json('["a"]', delays_ms => '[-5]')`));
  assert.match(delay.message, /task a: delay -5 ms is negative/);
});

test("enqueue_many_json refuses arrays of different lengths, and the table's checks refuse a bad value; nothing is written", async () => {
  const before = await count("true");
  const lengths = await invalidInput(db.query(`select jobs.enqueue_many_json('["a", "b"]', '[[1]]')`));
  assert.match(lengths.message, /enqueue_many_json got arrays of different lengths \(2 names\)/);
  await invalidInput(db.query(`select jobs.enqueue_many_json('["a"]', queues => '["q", "q"]')`));
  let caught: (Error & { code?: string; constraint?: string }) | undefined;
  await db.query(`select jobs.enqueue_many_json('["a", "b"]', queues => '["good", "no spaces allowed"]')`).catch((e) => (caught = e));
  assert.equal(caught?.code, "23514", `check_violation, got ${caught?.code}: ${caught?.message}`);
  assert.equal(caught?.constraint, "tasks_queue_check");
  assert.equal(await count("true"), before);
});

test("enqueues inside a caller's transaction open no subtransaction: every row carries the transaction's own xid", async () => {
  // More than 64 subtransactions in one transaction overflow every backend's subxid cache and
  // slow all snapshots down; a request that enqueues task by task must never get near it.
  const client = await db.connect();
  await client.query("begin");
  for (let i = 0; i < 5; i++) await client.query("select jobs.enqueue('in_tx', $1::jsonb)", [JSON.stringify([i])]);
  await client.query("select * from jobs.enqueue_many(array['in_tx', 'in_tx'], array['[1]', '[2]']::jsonb[])");
  await client.query("select * from jobs.enqueue_many(array['in_tx'], keys => array['in-tx-key'])");
  const { rows } = await client.query<{ xmins: string[]; own: string }>(
    "select array_agg(distinct xmin::text) as xmins, (txid_current() % 4294967296)::text as own from jobs.tasks where name = 'in_tx'",
  );
  await client.query("rollback");
  assert.deepEqual(rows[0]!.xmins, [rows[0]!.own]);
});

test("the table itself refuses a bad queue name from a plain INSERT, and takes every good one", async () => {
  const insert = (queue: string) => db.query("insert into jobs.tasks (name, queue) values ('plain', $1) returning id", [queue]);
  for (const bad of ["", "a b", "x".repeat(64), "é", "q\n", "q/1"]) {
    await assert.rejects(insert(bad), (err: { code?: string; constraint?: string }) => err.code === "23514" && err.constraint === "tasks_queue_check", `queue ${JSON.stringify(bad)}`);
  }
  for (const good of ["q", "default", "x".repeat(63), "A-z_0.9:x"]) await insert(good);
});

test("the table itself refuses an empty or over-long task name from a plain INSERT, counting characters, not bytes", async () => {
  const insert = (name: string) => db.query("insert into jobs.tasks (name) values ($1) returning id", [name]);
  for (const bad of ["", "x".repeat(201), "é".repeat(201)]) {
    await assert.rejects(insert(bad), (err: { code?: string; constraint?: string }) => err.code === "23514" && err.constraint === "tasks_name_check", `name of ${bad.length} characters`);
  }
  // "é" is two bytes: 200 of them are 400 bytes and still a good name.
  for (const good of ["n", "x".repeat(200), "é".repeat(200)]) await insert(good);
});

test("a delay or a run_at in the future gives a pending task", async () => {
  const delayed = (await db.query("select jobs.enqueue('later', '[]', delay => interval '1 hour') as id")).rows[0].id;
  const at = (await db.query("select jobs.enqueue('later', '[]', run_at => now() + interval '10 minutes') as id")).rows[0].id;
  const past = (await db.query("select jobs.enqueue('later', '[]', run_at => now() - interval '1 minute') as id")).rows[0].id;
  const { rows } = await db.query<{ id: string; state: string; future: boolean }>(
    "select id, state, run_at > now() as future from jobs.tasks where id = any($1::bigint[]) order by id",
    [[delayed, at, past]],
  );
  assert.deepEqual(
    rows.map((r) => [r.id, r.state, r.future]),
    [
      [delayed, "pending", true],
      [at, "pending", true],
      [past, "ready", false],
    ],
  );
});

const claim = statement("jobs", "task_claim_many");

async function claimBatch(client: pg.Client | pg.Pool, queue: string, limit: number, worker: string, leaseMs = 30_000) {
  const { rows } = await client.query<{ id: string; attempts: number }>({ name: claim.name, text: claim.text, values: [queue, limit, worker, leaseMs] });
  return rows;
}

test("a claim stamps worker, lease and attempt, and moves the task to running", async () => {
  const id = (await db.query("select jobs.enqueue('stamp', '[]', queue => 'stamp') as id")).rows[0].id;
  const worker = randomUUID();
  const rows = await claimBatch(db.pool, "stamp", 10, worker, 60_000);
  assert.deepEqual(rows.map((r) => [r.id, r.attempts]), [[id, 1]]);
  const { rows: task } = await db.query(
    `select state, worker_id, attempts, started_at is not null as started,
            lease_until > now() as leased, lease_until <= now() + interval '61 seconds' as lease_bounded
       from jobs.tasks where id = $1`,
    [id],
  );
  assert.deepEqual(task, [{ state: "running", worker_id: worker, attempts: 1, started: true, leased: true, lease_bounded: true }]);
  assert.deepEqual(await claimBatch(db.pool, "stamp", 10, randomUUID()), [], "a running task is not claimed again");
});

test("four sessions claiming 2,000 tasks concurrently never receive the same task", async () => {
  const total = 2_000;
  await db.query("select count(*) from jobs.enqueue_many(array(select 'race' from generate_series(1, $1::int)), queues => array(select 'race' from generate_series(1, $1::int)))", [total]);
  const sessions = await Promise.all(Array.from({ length: 4 }, () => db.connect()));
  const claimed = await Promise.all(
    sessions.map(async (client, k) => {
      const worker = randomUUID();
      const ids: string[] = [];
      for (let i = 0; ; i++) {
        // Batch sizes 1..50, different per session and per round.
        const rows = await claimBatch(client, "race", ((i * 7 + k * 13) % 50) + 1, worker);
        if (rows.length === 0) break;
        ids.push(...rows.map((r) => r.id));
      }
      return { worker, ids };
    }),
  );
  const sum = claimed.reduce((n, c) => n + c.ids.length, 0);
  const union = new Set(claimed.flatMap((c) => c.ids));
  assert.equal(union.size, sum, "no task was claimed twice");
  assert.equal(sum, total, "every task was claimed");
  assert.ok(claimed.filter((c) => c.ids.length > 0).length >= 2, "the claimers really ran side by side");
  for (const c of claimed) {
    assert.equal(await count("id = any($1::bigint[]) and worker_id = $2 and state = 'running' and attempts = 1", [c.ids, c.worker]), c.ids.length);
  }
  assert.equal(await count("queue = 'race' and state = 'ready'"), 0);
});

/** A LISTEN session on "jobs.ready" that records payloads. */
async function listen() {
  const client = await db.connect();
  const payloads: string[] = [];
  const waiters: { payload: string; resolve: () => void }[] = [];
  client.on("notification", (msg) => {
    if (msg.channel !== "jobs.ready") return;
    payloads.push(msg.payload ?? "");
    for (const w of waiters) if (w.payload === msg.payload) w.resolve();
  });
  await client.query('listen "jobs.ready"');
  return {
    /**
     * What arrived before a marker sent now: notifications are delivered in commit order, so
     * anything an earlier commit sent has arrived once the marker has (no sleeping).
     */
    async received(): Promise<string[]> {
      const marker = `marker-${randomUUID()}`;
      const arrived = new Promise<void>((resolve) => waiters.push({ payload: marker, resolve }));
      await db.query("select pg_notify('jobs.ready', $1)", [marker]);
      await arrived;
      const upTo = payloads.indexOf(marker);
      const before = payloads.slice(0, upTo);
      payloads.splice(0, upTo + 1);
      return before.filter((p) => !p.startsWith("marker-"));
    },
  };
}

test("inserting 10,000 ready tasks in one statement sends one notification, with the queue's name", async () => {
  const listener = await listen();
  const names = Array.from({ length: 10_000 }, (_, i) => `bulk_${i}`);
  const { rows } = await db.query("select count(*)::int as n from jobs.enqueue_many($1::text[])", [names]);
  assert.equal(rows[0].n, 10_000);
  assert.deepEqual(await listener.received(), ["default"]);
});

test("a statement inserting into two queues sends exactly one notification per queue", async () => {
  const listener = await listen();
  const names = Array.from({ length: 10_000 }, (_, i) => `mixed_${i}`);
  const queues = names.map((_, i) => (i % 2 === 0 ? "mix_a" : "mix_b"));
  await db.query("select count(*) from jobs.enqueue_many($1::text[], queues => $2::text[])", [names, queues]);
  assert.deepEqual((await listener.received()).sort(), ["mix_a", "mix_b"]);
});

test("inserting future (pending) tasks sends no notification", async () => {
  const listener = await listen();
  await db.query(
    "select count(*) from jobs.enqueue_many(array(select 'future' from generate_series(1, 100)), run_ats => array(select now() + interval '1 hour' from generate_series(1, 100)))",
  );
  assert.equal(await count("name = 'future' and state = 'pending'"), 100);
  assert.deepEqual(await listener.received(), []);
});

test("ready notifications come from statement-level triggers", async () => {
  // Postgres folds identical notifications within one transaction, so counting what a listener
  // receives cannot tell a per-row trigger from a per-statement one; a per-row pg_notify would
  // still cost 10,000 calls per 10,000-row insert. Hence this look at the catalog.
  const { rows } = await db.query<{ tgname: string; row_level: boolean }>(
    `select t.tgname, (t.tgtype & 1) = 1 as row_level
       from pg_trigger t join pg_proc p on p.oid = t.tgfoid
      where t.tgrelid = 'jobs.tasks'::regclass and not t.tgisinternal and p.prosrc like '%pg_notify%'`,
  );
  assert.ok(rows.length > 0, "some trigger on jobs.tasks notifies");
  assert.deepEqual(rows.filter((r) => r.row_level).map((r) => r.tgname), []);
});
