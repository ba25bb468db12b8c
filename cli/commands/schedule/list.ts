import { describeTiming, listSchedules, type ScheduleInfo } from "../../../src/scheduler.js";
import { BaseCommand } from "../../base.js";

export default class ScheduleList extends BaseCommand<typeof ScheduleList> {
  static override summary = "List the periodic schedules: timing, task, queue, whether enabled, next and last tick.";
  static override description = "Times are UTC. The same rows in SQL: select * from jobs.schedules order by name.";
  static override examples = ["<%= config.bin %> schedule list", "<%= config.bin %> schedule list --json | jq '.[] | select(.enabled | not) | .name'"];

  public async run(): Promise<ScheduleInfo[]> {
    const schema = this.schemaName();
    const client = await this.connect();
    try {
      const list = await listSchedules(client, schema);
      if (list.length === 0) this.log(`no schedules in schema ${schema}`);
      else {
        const rows = list.map((s) => [
          s.name, describeTiming(s), s.task, s.queue, s.enabled ? "yes" : "no", s.misfire,
          s.enabled && s.next_run_at ? iso(s.next_run_at) : "-", s.last_run_at ? iso(s.last_run_at) : "-",
        ]);
        for (const line of table(["NAME", "WHEN", "TASK", "QUEUE", "ENABLED", "MISFIRE", "NEXT RUN (UTC)", "LAST RUN (UTC)"], rows)) this.log(line);
      }
      return list;
    } finally {
      await client.end().catch(() => {});
    }
  }
}

function iso(d: Date): string {
  return d.toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "");
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}
