/**
 * `pgjobs schedule add|list|show|remove|enable|disable`, `pgjobs beat` and `pgjobs worker --beat`
 * (issue 5), run as a user would: `node bin/run.js ...` against a real Postgres.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { nextFireTimes, scheduleFromInput, wallTime, type ScheduleInput } from "../src/scheduler.js";
import { runCli, type CliResult } from "./helpers/cli.js";
import { useDatabase } from "./helpers/db.js";
import { ISSUE5_APP, killAll, startProcess, waitFor } from "./fixtures/issue5-procs.js";

const db = useDatabase();
/** A hang (a lock never released, a process that never prints) fails the test instead of the run. */
const LIMIT = { timeout: 90_000 };
db.onClose(killAll);
/** Nothing listens on port 1: a command that reached the network would fail to connect. */
const NOWHERE = "postgres://postgres@127.0.0.1:1/nowhere";

const cli = (...args: string[]) => runCli([...args, "--database-url", db.url]);

function ok(r: CliResult): string {
  assert.equal(r.code, 0, `exit 0, got ${r.code}; stderr: ${r.stderr}`);
  return r.stdout;
}

/** A user error: exit 2, nothing on stdout, exactly one line on stderr. */
function assertOneLineError(r: CliResult, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code 2, got ${r.code}; stdout: ${r.stdout} stderr: ${r.stderr}`);
  assert.equal(r.stdout, "");
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^pgjobs: /);
  assert.match(lines[0]!, pattern);
}

async function schedulesTable(): Promise<unknown[]> {
  return (await db.query("select * from jobs.schedules order by name")).rows;
}

test("schedule add, list, show, disable, enable and remove: text and --json", LIMIT, async () => {
  const [addedRun, pingRun] = await Promise.all([
    cli("schedule", "add", "nightly", "--cron", "0 0 * * *", "--task", "produce_report", "--args", '["today"]', "--timezone", "Europe/Berlin", "--force"),
    cli("schedule", "add", "ping", "--every", "10m", "--task", "ping", "--queue", "monitoring", "--misfire", "skip", "--misfire-grace", "5s", "--priority", "5", "--retries", "0", "--force", "--json"),
  ]);
  assert.match(ok(addedRun), /^added schedule nightly: cron 0 0 \* \* \* \(Europe\/Berlin\) -> task produce_report \["today"\] on queue default; first tick \S+Z \(\d{4}-\d\d-\d\d 00:00:00 CES?T\)\n$/);
  const ping = JSON.parse(ok(pingRun));
  assert.deepEqual(
    { name: ping.name, cron: ping.cron, every: ping.every, every_ms: ping.every_ms, timezone: ping.timezone, task: ping.task, args: ping.args, queue: ping.queue, priority: ping.priority, misfire: ping.misfire, misfire_grace_ms: ping.misfire_grace_ms, max_attempts: ping.max_attempts, enabled: ping.enabled },
    { name: "ping", cron: null, every: "10m", every_ms: 600_000, timezone: "UTC", task: "ping", args: [], queue: "monitoring", priority: 5, misfire: "skip", misfire_grace_ms: 5000, max_attempts: 1, enabled: true },
  );
  // The first tick of an interval is one interval after it was added, by the database's clock.
  assert.equal(Date.parse(ping.next_run_at) - Date.parse(ping.created_at), 600_000);

  const [listRun, listJsonRun, showJsonRun, showRun] = await Promise.all([
    cli("schedule", "list"), cli("schedule", "list", "--json"), cli("schedule", "show", "nightly", "--json"), cli("schedule", "show", "nightly"),
  ]);
  const table = ok(listRun).trimEnd().split("\n");
  assert.equal(table.length, 3);
  assert.match(table[0]!, /^NAME\s+WHEN\s+TASK\s+QUEUE\s+ENABLED\s+MISFIRE\s+NEXT RUN \(UTC\)\s+LAST RUN \(UTC\)$/);
  assert.match(table[1]!, /^nightly\s+cron 0 0 \* \* \* \(Europe\/Berlin\)\s+produce_report\s+default\s+yes\s+once\s+\d{4}-\d\d-\d\d \d\d:00:00\s+-$/);
  assert.match(table[2]!, /^ping\s+every 10m\s+ping\s+monitoring\s+yes\s+skip\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+-$/);
  assert.deepEqual(JSON.parse(ok(listJsonRun)).map((s: { name: string }) => s.name), ["nightly", "ping"]);

  // show: the next five fire times, from next_run_at on: five Berlin midnights in a row.
  const shown = JSON.parse(ok(showJsonRun));
  assert.equal(shown.next_fire_times.length, 5);
  assert.equal(shown.next_fire_times[0], shown.next_run_at);
  const want = nextFireTimes({ cron: "0 0 * * *", everyMs: null, timezone: "Europe/Berlin" }, new Date(Date.parse(shown.next_run_at) - 1), 5);
  assert.deepEqual(shown.next_fire_times, want.map((d) => d.toISOString()));
  const days = shown.next_fire_times.map((s: string) => wallTime(new Date(s), "Europe/Berlin"));
  for (const [i, d] of days.entries()) {
    assert.match(d, / 00:00:00 CES?T$/);
    if (i > 0) assert.equal(Date.parse(d.slice(0, 10)) - Date.parse(days[i - 1].slice(0, 10)), 86_400_000, "consecutive days");
  }
  const text = ok(showRun);
  assert.match(text, /^name: +nightly$/m);
  assert.match(text, /^when: +cron 0 0 \* \* \* \(Europe\/Berlin\)$/m);
  assert.match(text, /^misfire: +once \(ticks more than 30s late\)$/m);
  const fireLines = text.split("next fire times:\n")[1]!.trimEnd().split("\n");
  assert.deepEqual(fireLines, shown.next_fire_times.map((s: string) => `  ${s} (${wallTime(new Date(s), "Europe/Berlin")})`));

  // disable / enable: twice is harmless; a paused schedule shows no fire times.
  assert.equal(ok(await cli("schedule", "disable", "nightly")), "disabled schedule nightly\n");
  assert.equal(ok(await cli("schedule", "disable", "nightly")), "schedule nightly was already disabled\n");
  const [pausedJson, pausedText, pausedList] = await Promise.all([cli("schedule", "show", "nightly", "--json"), cli("schedule", "show", "nightly"), cli("schedule", "list")]);
  const paused = JSON.parse(ok(pausedJson));
  assert.equal(paused.enabled, false);
  assert.deepEqual(paused.next_fire_times, []);
  assert.match(ok(pausedText), /next fire times: none while disabled/);
  assert.match(ok(pausedList), /^nightly .* no {2,}once .*$/m);
  await db.query("update jobs.schedules set next_run_at = now() - interval '3 days' where name = 'nightly'");
  assert.match(ok(await cli("schedule", "enable", "nightly")), /^enabled schedule nightly; next tick \S+Z \(\S+ 00:00:00 CES?T\)\n$/);
  const resumed = (await db.query("select enabled, next_run_at > now() as future from jobs.schedules where name = 'nightly'")).rows[0];
  assert.deepEqual(resumed, { enabled: true, future: true }, "resuming starts from the next tick: the days missed while paused are not caught up");
  const enabledAgain = JSON.parse(ok(await cli("schedule", "enable", "nightly", "--json")));
  assert.equal(enabledAgain.changed, false);

  assert.equal(ok(await cli("schedule", "remove", "nightly")), "removed schedule nightly\n");
  const [afterRemove, ...unknown] = await Promise.all([
    cli("schedule", "list", "--json"), ...["remove", "show", "enable", "disable"].map((verb) => cli("schedule", verb, "nightly")),
  ]);
  assert.deepEqual(JSON.parse(ok(afterRemove!)).map((s: { name: string }) => s.name), ["ping"]);
  for (const r of unknown) assertOneLineError(r, /no schedule named nightly in schema jobs: pgjobs schedule list shows/);
  await db.query("delete from jobs.schedules");
  assert.equal(ok(await cli("schedule", "list")), "no schedules in schema jobs\n");
});

test("bad input gets one line on stderr, exit 2, and writes nothing", LIMIT, async () => {
  ok(await cli("schedule", "add", "taken", "--every", "1h", "--task", "produce_report", "--force"));
  const before = await schedulesTable();
  const add = (...args: string[]) => cli("schedule", "add", ...args);
  const cases: Array<[Promise<CliResult>, RegExp]> = [
    [add("s1", "--cron", "61 0 * * *", "--task", "t", "--force"), /invalid cron expression "61 0 \* \* \*": .*0-59/],
    [add("s2", "--cron", "0 0 * *", "--task", "t", "--force"), /invalid cron expression "0 0 \* \*": it has 4 fields; use 5 .* or 6/],
    [add("s4", "--cron", "0 0 * * *", "--timezone", "Europe/Atlantis", "--task", "t", "--force"), /unknown timezone "Europe\/Atlantis": use an IANA name/],
    [add("s5", "--cron", "0 0 * * *", "--every", "1m", "--task", "t", "--force"), /give exactly one of cron .* or every/],
    [add("s6", "--task", "t", "--force"), /give exactly one of cron .* or every/],
    [add("s9", "--every", "1m", "--args", "[1", "--task", "t", "--force"), /--args is not JSON/],
    [add("s13", "--every", "1m", "--task", "nobody_registers_this"), /no live worker registers task "nobody_registers_this" \(no worker is running\): .*--force/],
    [add("taken", "--every", "1m", "--task", "produce_report", "--force"), /a schedule named taken already exists: remove it first/],
  ];
  for (const [run, pattern] of cases) assertOneLineError(await run, pattern);
  assert.deepEqual(await schedulesTable(), before);

  // The rest of the checks, without a process each (the command calls the same function).
  const refused: Array<[Partial<ScheduleInput>, RegExp]> = [
    [{ cron: "0 0 30 2 *" }, /invalid cron expression "0 0 30 2 \*": Invalid explicit day of month/],
    [{ every: "soon" as never }, /cannot read "soon" as a duration/],
    [{ every: "500ms" }, /every must be at least 1s/],
    [{ every: "1m", misfire: "later" as never }, /misfire must be "once", "all" or "skip"/],
    [{ every: "1m", misfireGrace: "-1s" as never }, /misfireGrace: cannot read "-1s"/],
    [{ every: "1m", args: '{"a":1}' }, /args must be a JSON array/],
    [{ every: "1m", args: "[1, 2" }, /--args is not JSON/],
    [{ every: "1m", queue: "no spaces" }, /invalid queue name "no spaces"/],
    [{ every: "1m", priority: 500 }, /priority 500 is out of range/],
    [{ every: "1m", retries: -1 }, /retries must be a whole number/],
    [{ every: "1m", name: "bad name" }, /invalid schedule name "bad name"/],
    [{ every: "1m", task: "" }, /invalid task name ""/],
  ];
  for (const [input, pattern] of refused) {
    assert.throws(() => scheduleFromInput({ name: "s", task: "t", ...input }), (err: Error) => pattern.test(err.message) && !err.message.includes("\n"), String(pattern));
  }

  // Input is checked before connecting: a bad cron expression is reported, not the unreachable server.
  const [badCron, badName, json] = await Promise.all([
    runCli(["schedule", "add", "x", "--cron", "* * *", "--task", "t", "--database-url", NOWHERE]),
    runCli(["schedule", "show", "a;b", "--database-url", NOWHERE]),
    add("taken", "--every", "1m", "--task", "produce_report", "--force", "--json"),
  ]);
  assertOneLineError(badCron, /it has 3 fields/);
  assertOneLineError(badName, /invalid schedule name "a;b"/);
  // --json: the same message as an object on stdout.
  assert.equal(json.code, 2);
  assert.match(JSON.parse(json.stdout).error.message, /a schedule named taken already exists/);
  await db.query("delete from jobs.schedules");
});

test("schedule add requires a live worker that registers the task and serves the queue; worker --beat fires it and runs it", LIMIT, async () => {
  assertOneLineError(await cli("schedule", "add", "report", "--every", "1s", "--task", "produce_report"), /no live worker registers task "produce_report" \(no worker is running\)/);

  const worker = startProcess(["worker", "--app", ISSUE5_APP, "--queues", "reports", "--beat", "--database-url", db.url], { env: { PGJOBS_LOG_LEVEL: "warn" } });
  await waitFor("the worker to register", async () => (await db.query("select 1 from jobs.workers where meta->'tasks' ? 'produce_report'")).rowCount === 1, 20_000);

  assertOneLineError(await cli("schedule", "add", "report", "--every", "1s", "--task", "produce_report"), /workers that register task produce_report serve queues reports, not default: pass --queue/);
  assertOneLineError(await cli("schedule", "add", "other", "--every", "1s", "--task", "typo_report", "--queue", "reports"), /no live worker registers task "typo_report" \(none of the 1 live worker registers it\)/);
  assert.deepEqual(await schedulesTable(), []);
  ok(await cli("schedule", "add", "report", "--every", "1s", "--task", "produce_report", "--queue", "reports", "--args", '["today"]'));

  // The worker's beat fires the schedule (added after it started) and the worker runs the task.
  const { rows } = await waitFor(
    "a scheduled run to succeed",
    async () => {
      const r = await db.query("select result, headers from jobs.tasks where headers->>'schedule' = 'report' and state = 'succeeded' order by id limit 1");
      return r.rowCount === 1 ? r : undefined;
    },
    20_000,
  );
  assert.deepEqual(rows[0].result, { day: "today", schedule: "report", fire_at: rows[0].headers.fire_at });

  // --force adds a schedule for a task no worker registers (say, before deploying its worker).
  ok(await cli("schedule", "add", "other", "--every", "1h", "--task", "typo_report", "--queue", "reports", "--force"));
  const stopped = await worker.stop();
  assert.equal(stopped.code, 0, worker.stderr());
  // A worker that stopped deregistered: nobody registers the task any more.
  assertOneLineError(await cli("schedule", "add", "third", "--every", "1s", "--task", "produce_report", "--queue", "reports"), /no worker is running/);
  await db.query("delete from jobs.schedules");
});

test("pgjobs beat needs only the database: it fires schedules added from the CLI and reports them with --json", LIMIT, async () => {
  ok(await cli("schedule", "add", "beat-cli", "--cron", "* * * * * *", "--task", "produce_report", "--force"));
  const beat = startProcess(["beat", "--database-url", db.url, "--json"], { env: { PGJOBS_LOG_LEVEL: "info" } });
  await waitFor("two ticks", async () => (await db.query("select 1 from jobs.tasks where headers->>'schedule' = 'beat-cli'")).rowCount! >= 2, 20_000);
  const exit = await beat.stop();
  assert.equal(exit.code, 0, beat.stderr());
  const { rows } = await db.query("select count(*)::int as n from jobs.tasks where headers->>'schedule' = 'beat-cli'");
  assert.deepEqual(JSON.parse(beat.stdout()), { schema: "jobs", fired: rows[0].n });
  assert.match(beat.stderr(), /"msg":"fired"/, "with --json the log goes to stderr");
  await db.query("delete from jobs.schedules");
});

test("commands on a database without pgjobs' schema say to run pgjobs migrate", LIMIT, async () => {
  const empty = await db.createDatabase();
  assertOneLineError(await runCli(["beat", "--database-url", empty.url]), /schema jobs has no pgjobs tables in this database: run pgjobs migrate first/);
  assertOneLineError(await runCli(["schedule", "list", "--database-url", empty.url]), /schema jobs has no pgjobs tables/);
  assertOneLineError(await runCli(["schedule", "list", "--database-url", db.url, "--schema", "other"]), /schema other has no pgjobs tables in this database: run pgjobs migrate --schema other first/);
  assertOneLineError(await runCli(["beat"], { env: { DATABASE_URL: undefined } }), /no database to connect to/);
});
