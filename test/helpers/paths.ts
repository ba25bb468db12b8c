import { fileURLToPath } from "node:url";

/** The repository root: this file runs from dist/test/helpers/. */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const CLI_BIN = `${REPO_ROOT}bin/run.js`;
export const MIGRATIONS_COMMITTED = `${REPO_ROOT}migrations/committed/`;
