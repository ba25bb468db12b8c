import { wallTime, type ScheduleInfo } from "../../../src/scheduler.js";
import { ScheduleToggleCommand } from "../../schedule-toggle.js";

export default class ScheduleEnable extends ScheduleToggleCommand {
  static override summary = "Resume a paused schedule from its next tick (ticks missed while paused are not caught up).";
  static override examples = ["<%= config.bin %> schedule enable nightly-report"];
  protected readonly enabled = true;

  protected describe(s: ScheduleInfo & { changed: boolean }): string {
    const next = s.next_run_at ? `${s.next_run_at.toISOString()} (${wallTime(s.next_run_at, s.timezone)})` : "-";
    return s.changed ? `enabled schedule ${s.name}; next tick ${next}` : `schedule ${s.name} was already enabled; next tick ${next}`;
  }
}
