import type { ScheduleInfo } from "../../../src/scheduler.js";
import { ScheduleToggleCommand } from "../../schedule-toggle.js";

export default class ScheduleDisable extends ScheduleToggleCommand {
  static override summary = "Pause a schedule: no tick fires until pgjobs schedule enable. Survives worker restarts.";
  static override examples = ["<%= config.bin %> schedule disable nightly-report"];
  protected readonly enabled = false;

  protected describe(s: ScheduleInfo & { changed: boolean }): string {
    return s.changed ? `disabled schedule ${s.name}` : `schedule ${s.name} was already disabled`;
  }
}
