import { status, type Status } from "../../src/admin.js";
import { BaseCommand } from "../base.js";

export default class StatusCommand extends BaseCommand<typeof StatusCommand> {
  static override summary = "Show each queue's backlog and the live workers.";
  static override description =
    "Per queue: tasks ready, scheduled (waiting for a countdown or a retry's backoff), running, failed, " +
    "succeeded and cancelled, and how long the oldest ready task has waited. Per worker: its queues, " +
    "concurrency, tasks running now and the age of its last heartbeat. The same numbers in SQL: " +
    "select state, count(*) from jobs.tasks group by 1.";
  static override examples = ["<%= config.bin %> status", "<%= config.bin %> status --json | jq '.queues[] | select(.ready > 1000)'"];

  public async run(): Promise<Status> {
    const schema = this.schemaName();
    const client = await this.connect();
    try {
      const s = await status({ pool: client, schema });
      if (!this.jsonEnabled()) this.log(render(s));
      return s;
    } finally {
      await client.end().catch(() => {});
    }
  }
}

function render(s: Status): string {
  const lines: string[] = [];
  if (s.queues.length === 0) lines.push("no tasks");
  else {
    lines.push(
      ...table(
        ["QUEUE", "READY", "SCHEDULED", "RUNNING", "FAILED", "SUCCEEDED", "CANCELLED", "OLDEST READY"],
        s.queues.map((q) => [q.queue, q.ready, q.scheduled, q.running, q.failed, q.succeeded, q.cancelled, q.oldest_ready_s === null ? "-" : age(q.oldest_ready_s)]),
      ),
    );
  }
  lines.push("");
  if (s.workers.length === 0) lines.push("no workers");
  else {
    lines.push(
      ...table(
        ["WORKER", "HOST", "PID", "QUEUES", "CONCURRENCY", "RUNNING", "HEARTBEAT"],
        s.workers.map((w) => [w.name, w.hostname, w.pid, w.queues.join(","), w.concurrency, w.running, `${age(w.heartbeat_age_s)} ago`]),
      ),
    );
  }
  return lines.join("\n");
}

/** Left-aligned text, right-aligned numbers, two spaces between columns. */
function table(head: string[], rows: (string | number)[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const numeric = head.map((_, i) => rows.every((r) => typeof r[i] === "number"));
  const fmt = (cells: (string | number)[]) =>
    cells.map((c, i) => (numeric[i] ? String(c).padStart(widths[i]!) : String(c).padEnd(widths[i]!))).join("  ").trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}

function age(seconds: number): string {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(seconds / 86400)}d${String(Math.floor((seconds % 86400) / 3600)).padStart(2, "0")}h`;
}
