import { InvalidInputError } from "./errors.js";

// Schema names are spliced into SQL (migrations, statements, channel names), so they must be
// plain lower-case identifiers: nothing to quote, nothing to escape, at most 63 bytes (NAMEDATALEN).
const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;
// Queue names travel as values, never spliced; the same rule is checked in SQL (tasks_queue_check).
const QUEUE_RE = /^[A-Za-z0-9_.:-]{1,63}$/;

export function validateSchema(schema: unknown): string {
  if (typeof schema !== "string" || !SCHEMA_RE.test(schema)) {
    throw new InvalidInputError(
      `invalid schema name ${JSON.stringify(schema)}: use 1 to 63 lower-case letters, digits or "_", starting with a letter or "_"`,
    );
  }
  return schema;
}

export function validateQueue(queue: unknown, taskName?: string): string {
  if (typeof queue !== "string" || !QUEUE_RE.test(queue)) {
    const who = taskName ? `task ${taskName}: ` : "";
    throw new InvalidInputError(
      `${who}invalid queue name ${JSON.stringify(queue)}: use 1 to 63 letters, digits, "_", ".", ":" or "-"`,
    );
  }
  return queue;
}

export function validateTaskName(name: unknown): string {
  if (typeof name !== "string" || name.length < 1 || name.length > 200) {
    throw new InvalidInputError(`invalid task name ${JSON.stringify(name)}: give a name of 1 to 200 characters`);
  }
  return name;
}

/** A task id as jobs.tasks.id holds it: a whole number within bigint. Returned as a string. */
export function validateTaskId(id: unknown): string {
  const s = typeof id === "string" || typeof id === "number" || typeof id === "bigint" ? String(id).trim() : "";
  if (!/^\d{1,19}$/.test(s) || BigInt(s) > 9223372036854775807n) {
    throw new InvalidInputError(`invalid task id ${JSON.stringify(String(id))}: a task id is a whole number, as in jobs.tasks.id`);
  }
  return s;
}
