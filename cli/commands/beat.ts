import { Flags } from "@oclif/core";
import { pino } from "pino";
import { createJobs } from "../../src/client.js";
import { runPrepared } from "../../src/db.js";
import { toMs, type Duration } from "../../src/duration.js";
import { PgJobsError } from "../../src/errors.js";
import { statement } from "../../src/sql.js";
import { BaseCommand } from "../base.js";

export default class Beat extends BaseCommand<typeof Beat> {
  static override summary = "Run a scheduler alone: fire due periodic schedules until SIGTERM/SIGINT.";
  static override description =
    "Needs only the database, no app: the schedules live in <schema>.schedules (added with pgjobs schedule add, or " +
    "written by workers from jobs.schedule() in code). Run as many as you like, on any hosts: each tick is fired by " +
    "exactly one of them (the due row is locked FOR UPDATE SKIP LOCKED in the transaction that inserts the tick's " +
    "task, and time is the database's). Logs each fired tick as a JSON line.";
  static override examples = ["<%= config.bin %> beat --database-url postgres://app@db:5432/app", "DATABASE_URL=postgres://app@db/app <%= config.bin %> beat --schema jobs"];
  static override flags = {
    "max-sleep": Flags.string({ default: "1s", description: "longest wait between checks: a schedule added elsewhere is seen within this" }),
  };

  public async run(): Promise<{ schema: string; fired: number }> {
    const schema = this.schemaName();
    const maxSleep = toMs(this.flags["max-sleep"] as Duration, "--max-sleep");
    const url = this.databaseUrl();
    // Fail fast, in one line, on a database we cannot reach or a schema that was never migrated.
    const probe = await this.connect();
    try {
      await runPrepared(probe, statement(schema, "schedule_next_due"), []);
    } catch (err) {
      if ((err as { code?: string }).code === "42P01") {
        throw new PgJobsError(`schema ${schema} has no pgjobs tables in this database: run pgjobs migrate${schema === "jobs" ? "" : ` --schema ${schema}`} first, or pass the right --schema`);
      }
      throw err;
    } finally {
      await probe.end().catch(() => {});
    }

    // With --json, stdout carries only the final object: the log goes to stderr.
    const logger = this.jsonEnabled() ? pino({ name: "pgjobs", level: process.env.PGJOBS_LOG_LEVEL ?? "info" }, pino.destination(2)) : undefined;
    const jobs = createJobs({ connectionString: url, schema, poolSize: 2, ...(logger ? { logger } : {}) });
    const scheduler = jobs.scheduler({ maxSleep });
    let fired = 0;
    scheduler.on("fired", (ticks) => {
      fired += ticks.length;
      for (const t of ticks) jobs.log.info({ schedule: t.name, fireAt: t.fireAt.toISOString(), taskId: t.taskId }, "fired");
    });
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      if (++signals > 1) process.exit(130);
      jobs.log.info({ signal: sig }, "beat stopping");
      stop();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    try {
      await scheduler.start();
      jobs.log.info({ schema }, "beat started");
      await stopped;
      await scheduler.stop();
      jobs.log.info({ fired }, "beat stopped");
      return { schema, fired };
    } finally {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      await scheduler.stop();
      await jobs.close();
    }
  }
}
