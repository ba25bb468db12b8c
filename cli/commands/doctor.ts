import { Flags } from "@oclif/core";
import { CHECK_IDS, doctor, parseThresholds, type DoctorReport, type Verdict } from "../../src/doctor.js";
import { InvalidInputError } from "../../src/errors.js";
import { BaseCommand, describeUrl } from "../base.js";

/** Exit status when the report's verdict reaches --fail-on (critical by default). */
export const EXIT_UNHEALTHY = 1;

export default class DoctorCommand extends BaseCommand<typeof DoctorCommand> {
  static override summary = "Check the health of the queue's tables and of the server for them.";
  static override description =
    "Dead tuples and when vacuum last ran, what holds the xmin horizon back (long transactions, sessions idle " +
    "in a transaction, prepared transactions, replication slots), index bloat, backlog depth and age, leases " +
    "nobody rescued, the NOTIFY queue's fill, and settings that hurt a queue. Each check gives a verdict (ok, " +
    "warning, critical) and one line of advice. Exits 1 when a check is critical (or, with --fail-on warning, " +
    "when one warns), so it can run from cron or a health check. Read-only.";
  static override examples = [
    "<%= config.bin %> doctor",
    "<%= config.bin %> doctor --json | jq '.checks[] | select(.verdict != \"ok\")'",
    "<%= config.bin %> doctor --threshold xmin-critical-seconds=600 --skip setting_idle_in_transaction_session_timeout",
  ];
  static override flags = {
    threshold: Flags.string({
      multiple: true,
      helpValue: "NAME=VALUE",
      description: "override a threshold, e.g. dead-tuples-min=50000, xmin-critical-seconds=600 (see docs/observability.md)",
    }),
    skip: Flags.string({ multiple: true, helpValue: "CHECK", description: `leave a check out: ${CHECK_IDS.join(", ")}` }),
    "fail-on": Flags.string({ options: ["critical", "warning"], default: "critical", description: "the verdict from which the exit status is 1" }),
  };

  public async run(): Promise<DoctorReport> {
    const schema = this.schemaName();
    const thresholds = parseThresholds(this.flags.threshold ?? []);
    const skip = this.flags.skip ?? [];
    for (const id of skip) {
      if (!(CHECK_IDS as readonly string[]).includes(id)) throw new InvalidInputError(`--skip ${id}: no such check; the checks are ${CHECK_IDS.join(", ")}`);
    }
    const client = await this.connect();
    let report: DoctorReport;
    try {
      report = await doctor({ pool: client, schema }, { thresholds, skip });
    } finally {
      await client.end().catch(() => {});
    }
    if (!this.jsonEnabled()) this.log(render(report, describeUrl(this.databaseUrl())));
    const failOn: Verdict = this.flags["fail-on"] === "warning" ? "warning" : "critical";
    // Set, not exit(): with --json, oclif prints the returned report after run() returns.
    if (report.verdict === "critical" || (failOn === "warning" && report.verdict === "warning")) process.exitCode = EXIT_UNHEALTHY;
    return report;
  }
}

const LABEL: Record<Verdict, string> = { ok: "OK", warning: "WARNING", critical: "CRITICAL" };

function render(r: DoctorReport, where: string): string {
  const counts = (v: Verdict) => r.checks.filter((c) => c.verdict === v).length;
  const head = `pgjobs doctor: schema ${r.schema} on ${where}: ${LABEL[r.verdict]} (${counts("critical")} critical, ${counts("warning")} warning, ${counts("ok")} ok)`;
  const titleWidth = Math.max(...r.checks.map((c) => c.title.length));
  const lines = [head, ""];
  for (const c of r.checks) {
    lines.push(`${LABEL[c.verdict].padEnd(8)}  ${c.title.padEnd(titleWidth)}  ${c.summary}`);
    if (c.verdict !== "ok") lines.push(`${" ".repeat(10 + titleWidth + 2)}-> ${c.advice}`);
  }
  return lines.join("\n");
}
