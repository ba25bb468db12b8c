import { spawn } from "node:child_process";
import { CLI_BIN } from "./paths.js";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run the built CLI (`node bin/run.js ...args`) in a child process and collect its output.
 * Not @oclif/test's runCommand: that captures the process's stdout, node:test's own output
 * included, and corrupts the file's test counts.
 *
 * `env` entries add to the test process's environment; `undefined` removes one (DATABASE_URL,
 * to test the missing-URL error).
 */
export function runCli(args: string[], options: { env?: Record<string, string | undefined>; bin?: string } = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1", ...options.env };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [options.bin ?? CLI_BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", reject);
    // 'close', not 'exit': the pipes are drained and closed, so nothing is left open (leak check).
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
