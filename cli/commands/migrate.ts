import { Flags } from "@oclif/core";
import { loadMigrations, migrate, type MigrateResult } from "../../src/migrator.js";
import { BaseCommand } from "../base.js";

export default class Migrate extends BaseCommand<typeof Migrate> {
  static override summary = "Apply pgjobs' schema to a database.";
  static override description =
    "Idempotent, and safe to run from many processes at once (runs wait for each other). " +
    "Records what it applied in <schema>.migrations; refuses migrations that were edited after release.";
  static override examples = [
    "<%= config.bin %> migrate --database-url postgres://app@db:5432/app",
    "DATABASE_URL=postgres://app@db:5432/app <%= config.bin %> migrate --schema jobs --json",
    "<%= config.bin %> migrate --producer-role web --worker-role worker",
  ];
  static override flags = {
    "producer-role": Flags.string({
      summary: "Grant this existing role what a producer needs: enqueue and read results, nothing more.",
      helpValue: "ROLE",
    }),
    "worker-role": Flags.string({
      summary: "Grant this existing role what a worker needs: claim, run and finish tasks.",
      helpValue: "ROLE",
    }),
  };

  public async run(): Promise<MigrateResult> {
    // Both checks come before connecting: a bad schema name or an edited file changes nothing
    // and sends nothing to the server.
    const schema = this.schemaName();
    loadMigrations();
    const client = await this.connect();
    try {
      const producerRole = this.flags["producer-role"];
      const workerRole = this.flags["worker-role"];
      const result = await migrate(client, {
        schema,
        log: (line) => this.log(line),
        ...(producerRole === undefined ? {} : { producerRole }),
        ...(workerRole === undefined ? {} : { workerRole }),
      });
      const before = result.current.length;
      if (result.applied.length === 0) {
        this.log(`schema ${schema} is up to date (${plural(before, "migration")} applied before)`);
      } else {
        this.log(`schema ${schema}: applied ${plural(result.applied.length, "migration")}, ${before} already applied`);
      }
      return result;
    } finally {
      await client.end().catch(() => {});
    }
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
