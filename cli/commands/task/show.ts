import { Args } from "@oclif/core";
import { parseTaskId, showTask, type TaskDetails } from "../../../src/admin.js";
import { BaseCommand } from "../../base.js";

export default class TaskShow extends BaseCommand<typeof TaskShow> {
  static override summary = "Show one task: state, arguments, result or error, attempts, timings, worker.";
  static override examples = ["<%= config.bin %> task show 4711", "<%= config.bin %> task show 4711 --json | jq .error"];
  static override args = {
    id: Args.string({ required: true, description: "the task's id (jobs.tasks.id)" }),
  };

  public async run(): Promise<TaskDetails> {
    const schema = this.schemaName();
    const id = parseTaskId(this.args.id); // a bad id sends nothing to the server
    const client = await this.connect();
    try {
      const task = await showTask({ pool: client, schema }, id);
      if (!this.jsonEnabled()) this.log(render(task));
      return task;
    } finally {
      await client.end().catch(() => {});
    }
  }
}

function render(t: TaskDetails): string {
  const out: string[] = [];
  const line = (k: string, v: unknown) => {
    if (v === null || v === undefined) return;
    out.push(`${`${k}:`.padEnd(13)} ${v instanceof Date ? v.toISOString() : typeof v === "object" ? JSON.stringify(v) : String(v)}`);
  };
  line("id", t.id);
  line("name", t.name);
  line("queue", t.queue);
  line("state", t.state);
  line("attempts", `${t.attempts} of ${t.max_attempts}`);
  line("priority", t.priority);
  line("args", t.args);
  line("result", t.state === "succeeded" ? t.result : null);
  line("progress", t.progress);
  line("created", t.created_at);
  line("run at", t.run_at);
  line("started", t.started_at);
  line("finished", t.finished_at);
  line("worker", t.worker_id === null ? null : t.worker_name ? `${t.worker_name} (${t.worker_id})` : t.worker_id);
  line("lease until", t.state === "running" ? t.lease_until : null);
  line("timeout ms", t.timeout_ms);
  line("key", t.key);
  line("parent", t.parent_id);
  line("group", t.group_id);
  line("chord", t.chord_id);
  if (Object.keys(t.headers ?? {}).length > 0) line("headers", t.headers);
  if (t.error) {
    line("error", `${t.error.name}: ${t.error.message}`);
    if (t.error.stack) out.push(...t.error.stack.split("\n").map((l) => `  ${l}`));
  }
  return out.join("\n");
}
