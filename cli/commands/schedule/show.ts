import { Args } from "@oclif/core";
import { describeTiming, formatDuration, showSchedule, validateScheduleName, wallTime, type ScheduleDetails } from "../../../src/scheduler.js";
import { BaseCommand } from "../../base.js";

export default class ScheduleShow extends BaseCommand<typeof ScheduleShow> {
  static override summary = "Show one schedule and the next five times it fires.";
  static override description =
    "Fire times are shown in UTC and in the schedule's timezone; the first is the tick the schedulers fire next " +
    "(in the past if no scheduler is running: then its misfire policy applies).";
  static override examples = ["<%= config.bin %> schedule show nightly-report", "<%= config.bin %> schedule show nightly-report --json | jq .next_fire_times"];
  static override args = {
    name: Args.string({ required: true, description: "the schedule's name" }),
  };

  public async run(): Promise<ScheduleDetails> {
    const schema = this.schemaName();
    validateScheduleName(this.args.name); // a bad name sends nothing to the server
    const client = await this.connect();
    try {
      const s = await showSchedule(client, schema, this.args.name);
      if (!this.jsonEnabled()) this.log(render(s));
      return s;
    } finally {
      await client.end().catch(() => {});
    }
  }
}

function render(s: ScheduleDetails): string {
  const out: string[] = [];
  const line = (k: string, v: string) => out.push(`${`${k}:`.padEnd(14)} ${v}`);
  const at = (d: Date | null) => (d ? `${d.toISOString()} (${wallTime(d, s.timezone)})` : "-");
  line("name", s.name);
  line("when", describeTiming(s));
  line("task", `${s.task} ${JSON.stringify(s.args)}`);
  line("queue", s.queue);
  line("priority", String(s.priority));
  if (s.max_attempts !== null) line("max attempts", String(s.max_attempts));
  line("misfire", `${s.misfire} (ticks more than ${formatDuration(s.misfire_grace_ms)} late)`);
  line("enabled", s.enabled ? "yes" : "no");
  line("last run", at(s.last_run_at));
  line("created", s.created_at.toISOString());
  line("updated", s.updated_at.toISOString());
  if (!s.enabled) out.push("next fire times: none while disabled (pgjobs schedule enable resumes from the next tick)");
  else {
    out.push("next fire times:");
    for (const d of s.next_fire_times) out.push(`  ${at(d)}`);
  }
  return out.join("\n");
}
