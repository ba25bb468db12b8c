/**
 * `pgjobs doctor`: the health of the queue's tables and of the server for them, as checks that
 * each give a verdict (ok, warning, critical), what was found, and one line of advice.
 *
 * A queue table is a churn table: every task is inserted, updated two or three times and deleted.
 * It stays fast only while vacuum keeps up, and vacuum can remove a dead row only once no
 * transaction may still see it. So the checks look at dead tuples and when vacuum last ran, at
 * what holds the xmin horizon back (long transactions, sessions idle in a transaction, prepared
 * transactions, replication slots), at index bloat, at the backlog, at leases nobody rescued,
 * at the NOTIFY queue, and at settings that let any of that happen.
 *
 * ```ts
 * const report = await doctor(jobs);             // a Jobs, or { pool: pgClient, schema: "jobs" }
 * for (const c of report.checks) console.log(c.verdict, c.title, c.summary, c.advice);
 * if (report.verdict === "critical") process.exitCode = 1;
 * ```
 */
import { status, type AdminTarget } from "./admin.js";
import { runPrepared } from "./db.js";
import { InvalidInputError } from "./errors.js";
import { validateSchema } from "./identifiers.js";
import { statement } from "./sql.js";

export type Verdict = "ok" | "warning" | "critical";

export interface DoctorCheck {
  /** Stable identifier, e.g. "xmin_horizon" (for --skip, scripts and alerts). */
  id: string;
  title: string;
  verdict: Verdict;
  /** What was found, in one line. */
  summary: string;
  /** What to do about it, in one line. */
  advice: string;
  /** The numbers behind the verdict. */
  details: Record<string, unknown>;
}

export interface DoctorReport {
  schema: string;
  database: string;
  checkedAt: Date;
  /** The worst verdict of the checks. */
  verdict: Verdict;
  checks: DoctorCheck[];
}

/** Where each verdict starts. Every threshold can be overridden (`--threshold name=value`). */
export interface DoctorThresholds {
  /** Dead tuples below this many never count as a problem, whatever the ratio. */
  deadTuplesMin: number;
  /** Dead / (live + dead) from which the dead-tuple check warns, and is critical. */
  deadRatioWarning: number;
  deadRatioCritical: number;
  /** Age of the oldest transaction (or snapshot) holding the xmin horizon back. */
  xminWarningSeconds: number;
  xminCriticalSeconds: number;
  /** The same in transaction ids (for holders with no start time: replication slots). */
  xminWarningXids: number;
  xminCriticalXids: number;
  /** A session idle inside a transaction for this long. */
  idleInTransactionWarningSeconds: number;
  idleInTransactionCriticalSeconds: number;
  /** Age of a queue's oldest ready task. */
  backlogWarningSeconds: number;
  backlogCriticalSeconds: number;
  /** Ready tasks in one queue (0 disables). */
  backlogWarningTasks: number;
  /** A worker whose heartbeat is older than this does not count as serving its queues. */
  workerStaleSeconds: number;
  /** A lease lapsed this long ago with its task still running: nobody is rescuing. */
  lapsedLeaseWarningSeconds: number;
  lapsedLeaseCriticalSeconds: number;
  /** Estimated index bloat (fraction of the index) from which the check warns... */
  indexBloatRatio: number;
  /** ... when the bloat is at least this many bytes; critical from the second figure. */
  indexBloatWarningBytes: number;
  indexBloatCriticalBytes: number;
  /** Fill of the NOTIFY queue (0..1). */
  notifyWarning: number;
  notifyCritical: number;
}

export const DEFAULT_THRESHOLDS: Readonly<DoctorThresholds> = Object.freeze({
  deadTuplesMin: 10_000,
  deadRatioWarning: 0.2,
  deadRatioCritical: 0.5,
  xminWarningSeconds: 300,
  xminCriticalSeconds: 1800,
  xminWarningXids: 10_000_000,
  xminCriticalXids: 100_000_000,
  idleInTransactionWarningSeconds: 60,
  idleInTransactionCriticalSeconds: 600,
  backlogWarningSeconds: 300,
  backlogCriticalSeconds: 1800,
  backlogWarningTasks: 0,
  workerStaleSeconds: 60,
  lapsedLeaseWarningSeconds: 60,
  lapsedLeaseCriticalSeconds: 600,
  indexBloatRatio: 0.5,
  indexBloatWarningBytes: 50 * 1024 * 1024,
  indexBloatCriticalBytes: 1024 * 1024 * 1024,
  notifyWarning: 0.5,
  notifyCritical: 0.9,
});

export interface DoctorOptions {
  thresholds?: Partial<DoctorThresholds>;
  /** Check ids to leave out (e.g. "setting_autovacuum" on a test server that runs without it). */
  skip?: string[];
}

/** The check ids, in the order they are reported. */
export const CHECK_IDS = [
  "dead_tuples",
  "xmin_horizon",
  "idle_in_transaction",
  "index_bloat",
  "backlog",
  "lapsed_leases",
  "notify_queue",
  "replication_slots",
  "setting_autovacuum",
  "setting_track_counts",
  "setting_idle_in_transaction_session_timeout",
  "visibility",
] as const;

/** Parse `name=value` overrides (names as in DoctorThresholds, camelCase or kebab-case). */
export function parseThresholds(pairs: string[]): Partial<DoctorThresholds> {
  const out: Partial<DoctorThresholds> = {};
  for (const pair of pairs) {
    const m = /^([A-Za-z-]+)=(.+)$/.exec(pair.trim());
    const key = m?.[1]!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof DoctorThresholds | undefined;
    if (!m || !key || !(key in DEFAULT_THRESHOLDS)) {
      throw new InvalidInputError(`--threshold ${JSON.stringify(pair)}: expected name=value with one of ${Object.keys(DEFAULT_THRESHOLDS).join(", ")}`);
    }
    const value = Number(m[2]);
    if (!Number.isFinite(value) || value < 0) throw new InvalidInputError(`--threshold ${pair}: the value must be a number of 0 or more`);
    out[key] = value;
  }
  return out;
}

const RANK: Record<Verdict, number> = { ok: 0, warning: 1, critical: 2 };
const worst = (vs: Verdict[]): Verdict => vs.reduce<Verdict>((a, b) => (RANK[b] > RANK[a] ? b : a), "ok");
const grade = (value: number, warn: number, crit: number): Verdict => (value >= crit ? "critical" : value >= warn ? "warning" : "ok");

interface TableStats {
  table_name: string;
  live: number;
  dead: number;
  last_vacuum: Date | null;
  last_autovacuum: Date | null;
  last_autoanalyze: Date | null;
  vacuum_count: number;
  autovacuum_count: number;
  vacuum_age_s: number | null;
  heap_bytes: number;
  total_bytes: number;
  reloptions: string[];
}
interface Holder {
  kind: "session" | "prepared transaction" | "replication slot";
  pid: number | null;
  name: string;
  usename: string | null;
  state: string | null;
  xmin_age: number | null;
  since: Date | null;
  age_s: number | null;
  state_age_s: number | null;
  query: string | null;
}
interface IdleSession {
  pid: number;
  name: string;
  usename: string;
  state: string;
  idle_s: number;
  xact_age_s: number;
  last_query: string;
}
interface IndexRow {
  index_name: string;
  table_name: string;
  am: string;
  bytes: number;
  entries: number;
  key_width: number;
  block_size: number;
  expected_bytes: number | null;
}
interface ServerRow {
  notify_usage: number;
  idle_in_transaction_session_timeout: string;
  autovacuum: string;
  track_counts: string;
  track_activities: string;
  database: string;
  role: string;
  sees_all_sessions: boolean;
  in_recovery: boolean;
  inactive_slots: Array<{ name: string; type: string; database: string | null; retained_bytes: number | null }>;
}

/**
 * Run every check against the schema's tables and the server. Read-only: catalog and statistics
 * reads plus one scan of the tasks table (the backlog counts), one statement at a time, so it
 * runs on a single session as well as on a pool.
 */
export async function doctor(target: AdminTarget, options: DoctorOptions = {}): Promise<DoctorReport> {
  const schema = validateSchema(target.schema);
  const t: DoctorThresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  const skip = new Set(options.skip ?? []);
  for (const id of skip) {
    if (!(CHECK_IDS as readonly string[]).includes(id)) throw new InvalidInputError(`--skip ${id}: no such check; the checks are ${CHECK_IDS.join(", ")}`);
  }
  const run = <R extends object>(name: string) => runPrepared<R>(target.pool, statement(schema, name), []);
  // One after the other: `target.pool` may be a single session.
  const [server] = await run<ServerRow>("doctor_server");
  const tables = await run<TableStats>("doctor_table_stats");
  if (!tables.some((r) => r.table_name === "tasks")) {
    throw new InvalidInputError(`schema ${schema} has no tasks table in database ${server!.database}: run pgjobs migrate, or pass the --schema your app uses`);
  }
  const holders = await run<Holder>("doctor_xmin_holders");
  const idle = await run<IdleSession>("doctor_idle_in_transaction");
  const indexes = await run<IndexRow>("doctor_index_bloat");
  const lapsed = await run<{ queue: string; tasks: number; oldest_lapsed_s: number }>("doctor_lapsed_leases");
  const st = await status({ pool: target.pool, schema });
  const s = server!;
  const tasks = tables.find((r) => r.table_name === "tasks")!;

  const checks: DoctorCheck[] = [];
  const add = (c: DoctorCheck) => {
    if (!skip.has(c.id)) checks.push(c);
  };

  // What holds the horizon, and whether vacuum already ran into it.
  const top = holders[0];
  const lastVacuum = latest(tasks.last_vacuum, tasks.last_autovacuum);
  const blockedVacuum = !!top && tasks.dead >= t.deadTuplesMin && !!lastVacuum && (top.since === null || top.since < lastVacuum);

  // Dead tuples, per table; the tasks table decides most.
  {
    const rows = tables.map((r) => {
      const ratio = r.dead + r.live > 0 ? r.dead / (r.dead + r.live) : 0;
      const v: Verdict = r.dead < t.deadTuplesMin ? "ok" : grade(ratio, t.deadRatioWarning, t.deadRatioCritical);
      return { table: `${schema}.${r.table_name}`, live: r.live, dead: r.dead, ratio: round(ratio, 3), verdict: v, lastVacuum: r.last_vacuum, lastAutovacuum: r.last_autovacuum, autovacuumCount: r.autovacuum_count };
    });
    const verdict = worst(rows.map((r) => r.verdict));
    const bad = rows.filter((r) => r.verdict !== "ok").sort((a, b) => b.dead - a.dead)[0];
    const when = lastVacuum ? `${ago((Date.now() - lastVacuum.getTime()) / 1000)} ago` : "never";
    const taskRow = rows.find((r) => r.table === `${schema}.tasks`)!;
    const shown = bad ?? taskRow;
    add({
      id: "dead_tuples",
      title: "Dead tuples",
      verdict,
      summary: `${shown.table}: ${fmt(shown.dead)} dead, ${fmt(shown.live)} live (${pct(shown.ratio)} dead); ${schema}.tasks last vacuumed ${when} (autovacuum ran ${tasks.autovacuum_count} times)`,
      advice:
        verdict === "ok"
          ? "nothing to do: vacuum keeps up"
          : blockedVacuum
            ? `vacuum ran ${when} but could not remove them: end what holds the xmin horizon (see xmin_horizon), then VACUUM ${shown.table}`
            : s.autovacuum !== "on"
              ? `autovacuum is off: run VACUUM ${shown.table} now, and turn autovacuum on`
              : `vacuum is not keeping up: run VACUUM ${shown.table}, and give autovacuum more room (autovacuum_vacuum_cost_limit, autovacuum_naptime)`,
      details: { tables: rows },
    });
  }

  // The xmin horizon.
  {
    const byTime = top?.age_s != null ? grade(top.age_s, t.xminWarningSeconds, t.xminCriticalSeconds) : "ok";
    const byXids = top?.xmin_age != null ? grade(top.xmin_age, t.xminWarningXids, t.xminCriticalXids) : "ok";
    const verdict: Verdict = !top ? "ok" : blockedVacuum ? "critical" : worst([byTime, byXids]);
    const who = top ? describeHolder(top) : "";
    add({
      id: "xmin_horizon",
      title: "xmin horizon",
      verdict,
      summary: !top
        ? "nothing holds the xmin horizon back: vacuum can remove every dead row"
        : `${who} holds the xmin horizon back` +
          (blockedVacuum ? `: vacuum of ${schema}.tasks ran after it started and had to leave ${fmt(tasks.dead)} dead tuples` : ""),
      advice: !top || verdict === "ok"
        ? "nothing to do"
        : top.kind === "session"
          ? `end that transaction (select pg_terminate_backend(${top.pid})) and fix the code that leaves it open; set idle_in_transaction_session_timeout`
          : top.kind === "prepared transaction"
            ? `commit or roll back the prepared transaction: COMMIT PREPARED '${top.name}' or ROLLBACK PREPARED '${top.name}'`
            : `drop the replication slot if its standby is gone (select pg_drop_replication_slot('${top.name}')), or bring the standby back`,
      details: { holders, vacuumBlocked: blockedVacuum, tasksLastVacuum: lastVacuum, tasksDeadTuples: tasks.dead },
    });
  }

  // Sessions idle in a transaction.
  {
    const longest = idle[0];
    const verdict = longest ? grade(longest.idle_s, t.idleInTransactionWarningSeconds, t.idleInTransactionCriticalSeconds) : "ok";
    add({
      id: "idle_in_transaction",
      title: "Idle in transaction",
      verdict,
      summary: longest
        ? `${idle.length} session${idle.length === 1 ? "" : "s"} idle in a transaction; the longest, pid ${longest.pid}${longest.name ? ` (${longest.name})` : ""}, for ${ago(longest.idle_s)}`
        : "no session is idle inside a transaction",
      advice:
        verdict === "ok"
          ? "nothing to do"
          : `end it (select pg_terminate_backend(${longest!.pid})) and find the code path that forgets to commit; set idle_in_transaction_session_timeout`,
      details: { sessions: idle },
    });
  }

  // Index bloat (estimated).
  {
    const rows = indexes.map((i) => {
      const bloat = i.expected_bytes === null ? null : Math.max(0, i.bytes - i.expected_bytes);
      const ratio = bloat === null || i.bytes === 0 ? null : bloat / i.bytes;
      const v: Verdict =
        bloat === null || ratio === null || ratio < t.indexBloatRatio ? "ok" : bloat >= t.indexBloatCriticalBytes ? "critical" : bloat >= t.indexBloatWarningBytes ? "warning" : "ok";
      return { index: `${schema}.${i.index_name}`, table: i.table_name, bytes: i.bytes, entries: i.entries, estimatedBloatBytes: bloat, estimatedBloatRatio: ratio === null ? null : round(ratio, 3), verdict: v };
    });
    const verdict = worst(rows.map((r) => r.verdict));
    const top = [...rows].sort((a, b) => (b.estimatedBloatBytes ?? 0) - (a.estimatedBloatBytes ?? 0))[0];
    add({
      id: "index_bloat",
      title: "Index bloat (estimate)",
      verdict,
      summary: top && (top.estimatedBloatBytes ?? 0) > 0
        ? `most bloated: ${top.index}, ${bytes(top.bytes)} for ${fmt(top.entries)} entries, about ${bytes(top.estimatedBloatBytes!)} (${pct(top.estimatedBloatRatio!)}) more than a fresh build`
        : "no index is measurably bigger than a fresh build would be",
      advice: verdict === "ok" ? "nothing to do" : `rebuild it without blocking the queue: REINDEX INDEX CONCURRENTLY ${top!.index}`,
      details: { indexes: rows },
    });
  }

  // Backlog: depth and age per queue, and whether anyone serves it.
  {
    const live = st.workers.filter((w) => w.heartbeat_age_s < t.workerStaleSeconds);
    const rows = st.queues
      .filter((q) => q.ready > 0 || q.scheduled > 0 || q.running > 0)
      .map((q) => {
        const served = live.filter((w) => w.queues.includes(q.queue)).length;
        const age = q.oldest_ready_s ?? 0;
        let v = q.ready > 0 ? grade(age, t.backlogWarningSeconds, t.backlogCriticalSeconds) : "ok";
        if (t.backlogWarningTasks > 0 && q.ready >= t.backlogWarningTasks) v = worst([v, "warning"]);
        if (q.ready > 0 && served === 0) v = worst([v, "warning"]);
        return { queue: q.queue, ready: q.ready, scheduled: q.scheduled, running: q.running, oldestReadySeconds: q.oldest_ready_s, workers: served, verdict: v };
      });
    const verdict = worst(rows.map((r) => r.verdict));
    const oldest = [...rows].sort((a, b) => (b.oldestReadySeconds ?? 0) - (a.oldestReadySeconds ?? 0))[0];
    const unserved = rows.filter((r) => r.ready > 0 && r.workers === 0).map((r) => r.queue);
    const totalReady = rows.reduce((n, r) => n + r.ready, 0);
    add({
      id: "backlog",
      title: "Backlog",
      verdict,
      summary:
        totalReady === 0
          ? `no task waits to run (${live.length} live worker${live.length === 1 ? "" : "s"})`
          : `${fmt(totalReady)} ready task${totalReady === 1 ? "" : "s"}; oldest waits in ${oldest!.queue} for ${ago(oldest!.oldestReadySeconds ?? 0)}` +
            (unserved.length ? `; no live worker serves ${unserved.join(", ")}` : ""),
      advice:
        verdict === "ok"
          ? "nothing to do"
          : unserved.length
            ? `start a worker for ${unserved.join(",")}: pgjobs worker --app ... --queues ${unserved.join(",")}`
            : "the workers cannot keep up: add workers or concurrency for the queues above, or look for slow tasks (pgjobs status)",
      details: { queues: rows, liveWorkers: live.length },
    });
  }

  // Leases that lapsed and nobody rescued.
  {
    const oldest = lapsed[0];
    const verdict = oldest ? grade(oldest.oldest_lapsed_s, t.lapsedLeaseWarningSeconds, t.lapsedLeaseCriticalSeconds) : "ok";
    const n = lapsed.reduce((k, r) => k + r.tasks, 0);
    add({
      id: "lapsed_leases",
      title: "Lapsed leases",
      verdict,
      summary: oldest
        ? `${n} running task${n === 1 ? "" : "s"} with a lapsed lease; the oldest lapsed ${ago(oldest.oldest_lapsed_s)} ago (queue ${oldest.queue})`
        : "no running task has a lapsed lease",
      advice: verdict === "ok" ? "nothing to do" : "every worker rescues lapsed leases every few seconds: no worker is running, or none reaches the database; start one",
      details: { queues: lapsed },
    });
  }

  add({
    id: "notify_queue",
    title: "NOTIFY queue",
    verdict: grade(s.notify_usage, t.notifyWarning, t.notifyCritical),
    summary: `the NOTIFY queue is ${pct(s.notify_usage, 4)} full`,
    advice:
      s.notify_usage < t.notifyWarning
        ? "nothing to do"
        : "a listening session is stuck in a long transaction and holds the queue: find it under xmin_horizon and end it (when the queue is full, every NOTIFY, and so every enqueue, fails)",
    details: { usage: s.notify_usage },
  });

  {
    const slots = s.inactive_slots ?? [];
    const retained = slots.reduce((n, r) => n + (r.retained_bytes ?? 0), 0);
    add({
      id: "replication_slots",
      title: "Inactive replication slots",
      verdict: slots.length > 0 ? "warning" : "ok",
      summary: slots.length > 0 ? `${slots.length} inactive slot${slots.length === 1 ? "" : "s"} (${slots.map((x) => x.name).join(", ")}) retain ${bytes(retained)} of WAL` : "no inactive replication slot",
      advice: slots.length > 0 ? `drop a slot whose consumer is gone: select pg_drop_replication_slot('${slots[0]!.name}')` : "nothing to do",
      details: { slots },
    });
  }

  {
    const disabled = tables.filter((r) => r.reloptions.some((o) => /^autovacuum_enabled=(false|off|0)$/i.test(o))).map((r) => `${schema}.${r.table_name}`);
    const off = s.autovacuum !== "on";
    add({
      id: "setting_autovacuum",
      title: "autovacuum",
      verdict: off || disabled.length > 0 ? "critical" : "ok",
      summary: off ? "autovacuum is off for the whole server" : disabled.length > 0 ? `autovacuum is disabled on ${disabled.join(", ")}` : "autovacuum is on",
      advice: off
        ? "turn it on (autovacuum = on in postgresql.conf): a queue table bloats within hours without it"
        : disabled.length > 0
          ? `ALTER TABLE ${disabled[0]} RESET (autovacuum_enabled)`
          : "nothing to do",
      details: { autovacuum: s.autovacuum, disabledOn: disabled },
    });
  }
  add({
    id: "setting_track_counts",
    title: "track_counts",
    verdict: s.track_counts === "on" ? "ok" : "critical",
    summary: `track_counts is ${s.track_counts}`,
    advice: s.track_counts === "on" ? "nothing to do" : "turn track_counts on: without it autovacuum never learns a table needs vacuuming, and dead tuples are not counted",
    details: { trackCounts: s.track_counts },
  });
  {
    const unset = s.idle_in_transaction_session_timeout === "0";
    add({
      id: "setting_idle_in_transaction_session_timeout",
      title: "idle_in_transaction_session_timeout",
      verdict: unset ? "warning" : "ok",
      summary: unset ? `idle_in_transaction_session_timeout is not set (as ${s.role} sees it)` : `idle_in_transaction_session_timeout is ${s.idle_in_transaction_session_timeout}`,
      advice: unset
        ? `set it so a forgotten transaction cannot hold vacuum back for hours: ALTER DATABASE ${quoteIdent(s.database)} SET idle_in_transaction_session_timeout = '5min'`
        : "nothing to do",
      details: { value: s.idle_in_transaction_session_timeout },
    });
  }
  add({
    id: "visibility",
    title: "What the doctor can see",
    verdict: s.sees_all_sessions && s.track_activities === "on" ? "ok" : "warning",
    summary: !s.sees_all_sessions
      ? `role ${s.role} sees only its own sessions: other roles' long transactions are invisible to these checks`
      : s.track_activities !== "on"
        ? "track_activities is off: sessions' states and transactions are not visible"
        : `role ${s.role} sees every session`,
    advice: !s.sees_all_sessions ? `GRANT pg_monitor TO ${quoteIdent(s.role)} (or run the doctor as a superuser)` : s.track_activities !== "on" ? "turn track_activities on" : "nothing to do",
    details: { role: s.role, seesAllSessions: s.sees_all_sessions, trackActivities: s.track_activities },
  });

  return { schema, database: s.database, checkedAt: new Date(), verdict: worst(checks.map((c) => c.verdict)), checks };
}

function latest(a: Date | null, b: Date | null): Date | null {
  if (!a) return b;
  if (!b) return a;
  return a > b ? a : b;
}

function describeHolder(h: Holder): string {
  if (h.kind === "session") {
    const what = h.state?.startsWith("idle in transaction") ? "idle in transaction" : h.state === "active" ? "running a query" : (h.state ?? "a session");
    return `session pid ${h.pid}${h.name ? ` (${h.name}${h.usename ? `, role ${h.usename}` : ""})` : h.usename ? ` (role ${h.usename})` : ""}, ${what}, in a transaction open for ${ago(h.age_s ?? 0)} (${fmt(h.xmin_age ?? 0)} transactions ago)`;
  }
  if (h.kind === "prepared transaction") return `prepared transaction '${h.name}', prepared ${ago(h.age_s ?? 0)} ago`;
  return `replication slot ${h.name} (${h.state}), ${fmt(h.xmin_age ?? 0)} transactions behind`;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function pct(ratio: number, digits = 0): string {
  return `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.01 ? digits || 2 : 0)}%`;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function bytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(0)} kB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(1)} GB`;
}

/** "4.2s", "3m05s", "2h10m", "3d04h". */
export function ago(seconds: number): string {
  const s = Math.max(0, seconds);
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, "0")}h`;
}

function quoteIdent(s: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`;
}
