/**
 * What every `pgjobs` command shares: the connection flags, --json, and how errors look.
 *
 * A command subclasses BaseCommand, reads `this.flags`, calls `src/`, and returns what `--json`
 * prints. Errors a user can cause (a PgJobsError from src/, a connection that fails, a database
 * that refuses) print ONE line on stderr, `pgjobs: <what went wrong>: <what to do>`, and exit 2;
 * with --json the same message goes to stdout as {"error": {"name", "message"}}.
 */
import { Command, Flags, type Interfaces } from "@oclif/core";
import pg from "pg";
import { PgJobsError } from "../src/errors.js";
import { validateSchema } from "../src/identifiers.js";

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)["baseFlags"] & T["flags"]>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T["args"]>;

/** Exit code for errors the user can fix (bad input, unreachable database, refused migration). */
export const EXIT_USER_ERROR = 2;

/** A user error found by the CLI itself (a missing flag value and the like). */
export class CliUsageError extends PgJobsError {
  constructor(message: string) {
    super(message);
    this.name = "CliUsageError";
  }
}

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    "database-url": Flags.string({
      summary: "Postgres connection URL.",
      env: "DATABASE_URL",
      helpValue: "URL",
      helpGroup: "GLOBAL",
    }),
    schema: Flags.string({
      summary: "Schema that holds pgjobs' tables.",
      default: "jobs",
      helpValue: "NAME",
      helpGroup: "GLOBAL",
    }),
  };

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;

  public override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
  }

  /** The validated --schema: checked before anything is sent to a server. */
  protected schemaName(): string {
    return validateSchema(this.flags.schema);
  }

  protected databaseUrl(): string {
    const url = this.flags["database-url"];
    if (!url) throw new CliUsageError("no database to connect to: pass --database-url postgres://user@host:5432/db or set DATABASE_URL");
    return url;
  }

  /** A session for this command; connection failures become one-line user errors. */
  protected async connect(): Promise<pg.Client> {
    const url = this.databaseUrl();
    const client = new pg.Client({
      connectionString: url,
      application_name: `pgjobs ${this.id ?? ""}`.trim(),
      // An unroutable host otherwise hangs for the OS's TCP timeout (minutes).
      connectionTimeoutMillis: 10_000,
    });
    // Errors on an idle session also reject the pending query; without a listener they would crash.
    client.on("error", () => {});
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => {});
      throw new CliUsageError(
        `cannot connect to the database at ${describeUrl(url)}: ${reason(err)}: check --database-url (or DATABASE_URL) and that the server is running`,
      );
    }
    return client;
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    const message = userErrorMessage(err);
    if (message === undefined) return super.catch(err);
    if (this.jsonEnabled()) this.logJson({ error: { name: err.name, message } });
    // Written directly: oclif's error printer hard-wraps at 80 columns, which breaks the one line.
    else process.stderr.write(`pgjobs: ${message}\n`);
    return this.exit(EXIT_USER_ERROR);
  }
}

/** The one-line message for an error the user can act on, or undefined for oclif's own and for bugs. */
export function userErrorMessage(err: unknown): string | undefined {
  if (err instanceof PgJobsError) return err.message;
  const e = err as { code?: unknown; message?: string; severity?: unknown };
  // A server-side error (it carries a SQLSTATE): permissions, a read-only replica, and so on.
  if (typeof e?.code === "string" && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === "string") {
    const hint = e.code === "42501" ? ": connect as a role that owns the database, or grant it CREATE" : "";
    return `the database refused: ${firstLine(e.message)} (SQLSTATE ${e.code})${hint}`;
  }
  if (typeof e?.message === "string" && /^Connection terminated/.test(e.message)) {
    return `lost the connection to the database (${firstLine(e.message)}): check the server and run the command again`;
  }
  return undefined;
}

function reason(err: unknown): string {
  const e = err as { message?: string; code?: string; errors?: { message?: string }[] };
  // A refused "localhost" (tried on ::1 and 127.0.0.1) is an AggregateError with an empty message.
  return firstLine(e?.message || e?.errors?.map((x) => x.message).join("; ") || e?.code || String(err));
}

function firstLine(s: string | undefined): string {
  return (s ?? "").split("\n")[0]!.trim();
}

/** host:port/database, never the password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || "localhost"}:${u.port || "5432"}${u.pathname || "/"}`;
  } catch {
    return "(a URL that does not parse)";
  }
}
