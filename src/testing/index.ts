/**
 * pgjobs/testing: helpers for testing your own tasks against a real Postgres, the way Oban,
 * River and pg-boss ship them. See docs/testing.md.
 *
 * ```ts
 * import { createTestSchema, drain, assertEnqueued, eager } from "pgjobs/testing";
 * ```
 */
export { createTestSchema, createTestJobs, type TestSchema, type TestSchemaOptions } from "./schema.js";
export { drain, DrainTimeoutError, type DrainOptions, type DrainResult, type DrainedTask } from "./drain.js";
export { eager, type Eager, type EagerOptions } from "./eager.js";
export { enqueued, assertEnqueued, refuteEnqueued, resetJobs, type EnqueuedQuery, type EnqueuedTask } from "./assertions.js";
