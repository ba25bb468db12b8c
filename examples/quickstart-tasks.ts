// The quick start's task module: what `pgjobs worker --app dist/examples/quickstart-tasks.js` loads.
import { createJobs } from "../src/index.js";

export const jobs = createJobs({ connectionString: process.env.DATABASE_URL, logLevel: process.env.PGJOBS_LOG_LEVEL ?? "warn" });

/** Call a (slow) HTTP API and return what it said: the I/O-bound task Celery users start with. */
export const fetchUrl = jobs.task(
  "fetch_url",
  async (ctx, url: string) => {
    const res = await fetch(url, { signal: ctx.signal });
    if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
    return { url, status: res.status, body: (await res.json()) as unknown };
  },
  { queue: "http", timeout: "10s", retries: 2 },
);
