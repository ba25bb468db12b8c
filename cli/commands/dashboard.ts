import { Flags } from "@oclif/core";
import pg from "pg";
import { refuseToListen, serveDashboard } from "../../src/dashboard/server.js";
import { checkToken, parseBasicAuth } from "../../src/dashboard/auth.js";
import { toMs, type Duration } from "../../src/duration.js";
import { BaseCommand, CliUsageError } from "../base.js";

export default class DashboardCommand extends BaseCommand<typeof DashboardCommand> {
  static override summary = "Serve the web dashboard: queues, tasks, workflows, schedules and workers, live.";
  static override description =
    "Listens on 127.0.0.1:4545 until SIGINT/SIGTERM. To listen on another address, give credentials: " +
    "--token (or PGJOBS_DASHBOARD_TOKEN; open the URL with ?token=... once, or send Authorization: Bearer) " +
    "or --basic-auth user:password (or PGJOBS_DASHBOARD_BASIC_AUTH). --read-only hides and refuses every " +
    "action. Every action (retry, cancel, delete, pausing queues and schedules) is recorded in jobs.audit.";
  static override examples = [
    "<%= config.bin %> dashboard",
    "<%= config.bin %> dashboard --port 8080 --read-only",
    "PGJOBS_DASHBOARD_TOKEN=$(openssl rand -hex 24) <%= config.bin %> dashboard --host 0.0.0.0",
  ];
  static override enableJsonFlag = false;
  static override flags = {
    port: Flags.integer({ default: 4545, min: 0, max: 65535, description: "port to listen on (0: any free port)" }),
    host: Flags.string({ default: "127.0.0.1", description: "address to listen on; other than loopback needs --token or --basic-auth" }),
    token: Flags.string({ env: "PGJOBS_DASHBOARD_TOKEN", description: "require this access token (at least 16 characters)" }),
    "basic-auth": Flags.string({ env: "PGJOBS_DASHBOARD_BASIC_AUTH", helpValue: "USER:PASSWORD", description: "require HTTP basic auth" }),
    "read-only": Flags.boolean({ default: false, description: "hide and refuse every action (403)" }),
    prefix: Flags.string({ default: "", description: "serve under this path, e.g. /jobs (behind a reverse proxy)" }),
    "poll-interval": Flags.string({ default: "5s", description: "how often pages refresh when no notification came" }),
    metrics: Flags.boolean({
      default: true,
      allowNo: true,
      description: "serve Prometheus metrics at /metrics, behind the same credentials (per-queue counts from SQL, cached 5 s; process metrics)",
    }),
  };

  public async run(): Promise<void> {
    const schema = this.schemaName();
    const f = this.flags;
    // Everything that can be refused is checked before connecting or listening.
    const token = checkToken(f.token) ?? undefined;
    const basicAuth = parseBasicAuth(f["basic-auth"]) ?? undefined;
    const refusal = refuseToListen(f.host, { token, basicAuth });
    if (refusal) throw new CliUsageError(refusal);
    const pollInterval = toMs(f["poll-interval"] as Duration, "poll-interval");

    const check = await this.connect();
    try {
      const { rows } = await check.query<{ tasks: boolean; audit: boolean }>(
        "select to_regclass($1) is not null as tasks, to_regclass($2) is not null as audit",
        [`${schema}.tasks`, `${schema}.audit`],
      );
      if (!rows[0]!.tasks) throw new CliUsageError(`schema ${schema} has no pgjobs tables in this database: run pgjobs migrate${schema === "jobs" ? "" : ` --schema ${schema}`} first, or pass the right --schema`);
      if (!rows[0]!.audit) throw new CliUsageError(`schema ${schema} predates the dashboard (no ${schema}.audit table): run pgjobs migrate${schema === "jobs" ? "" : ` --schema ${schema}`}`);
    } finally {
      await check.end().catch(() => {});
    }

    const pool = new pg.Pool({ connectionString: this.databaseUrl(), max: 5, application_name: "pgjobs dashboard" });
    pool.on("error", () => {}); // an idle connection lost: the next query reconnects
    let served;
    try {
      served = await serveDashboard({ pool, schema, host: f.host, port: f.port, token, basicAuth, readOnly: f["read-only"], prefix: f.prefix, pollInterval, metrics: f.metrics ? { processMetrics: true } : false });
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
    const notes = [f["read-only"] ? "read-only" : "", token ? "token required" : "", basicAuth ? "basic auth" : ""].filter(Boolean);
    this.log(`pgjobs dashboard on ${served.url}${notes.length ? ` (${notes.join(", ")})` : ""}`);

    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    await served.close();
    await pool.end().catch(() => {});
  }
}
