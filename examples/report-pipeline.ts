// `npm run example:report`: the report pipeline of Celery's "generate and export reports" use case
// (fetchers, an aggregator, a CSV importer). Five pages of the hottest repositories are fetched in
// parallel from a local server standing in for GitHub's search API; a chord callback merges them,
// groups the repositories by language and writes a CSV. Then the same five calls and the same CSV
// one after another, for comparison. Runs on DATABASE_URL, or on a throwaway embedded Postgres.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chord, createJobs, type Jobs } from "../src/index.js";
import { getJson, startFakeApi, type FakeApi } from "./lib/fake-api.js";
import { isMain, runExample } from "./lib/main.js";
import { comparison, timed } from "./lib/timing.js";

/** The fields of a search result the report uses. */
interface Repo {
  name: string;
  full_name: string;
  language: string | null;
  stargazers_count: number;
}

const LANGUAGES = ["Python", "TypeScript", "Go", "Rust", "JavaScript", "Java", "C++", "C#"];
const TOTAL_REPOS = 500;

/** GitHub's GET /search/repositories, served locally: 500 repositories, most stars first. */
function startFakeGithub(delayMs: number): Promise<FakeApi> {
  return startFakeApi(
    (url) => {
      if (url.pathname !== "/search/repositories") return undefined;
      const perPage = Math.min(100, Number(url.searchParams.get("per_page") ?? 30));
      const page = Number(url.searchParams.get("page") ?? 1);
      const items: Repo[] = [];
      for (let n = (page - 1) * perPage; n < Math.min(page * perPage, TOTAL_REPOS); n++) {
        items.push({ name: `repo-${n}`, full_name: `owner-${n % 37}/repo-${n}`, language: LANGUAGES[(n * 7) % LANGUAGES.length]!, stargazers_count: 10_000 - n });
      }
      return { total_count: TOTAL_REPOS, incomplete_results: false, items };
    },
    () => delayMs,
  );
}

/** The date a period ("day", "week", "month") reaches back to, as YYYY-MM-DD. */
export function sinceDate(period: "day" | "week" | "month", now = new Date()): string {
  const days = { day: 1, week: 7, month: 30 }[period];
  return new Date(now.getTime() - days * 86_400_000).toISOString().slice(0, 10);
}

/** One page of the search (Celery's fetch_hot_repos). */
function fetchPage(apiBase: string, since: string, perPage: number, page: number, signal?: AbortSignal): Promise<{ items: Repo[] }> {
  const q = new URLSearchParams({ q: `created:>=${since}`, sort: "stars", order: "desc", per_page: String(perPage), page: String(page) });
  return getJson(`${apiBase}/search/repositories?${q}`, signal);
}

/** Group the repositories by language: one CSV line per language, its repositories after it. */
function toCsv(pages: Repo[][]): { csv: string; languages: number; repos: number } {
  const byLanguage = new Map<string, string[]>();
  let repos = 0;
  for (const repo of pages.flat()) {
    repos++;
    const lang = repo.language ?? "(none)";
    byLanguage.set(lang, [...(byLanguage.get(lang) ?? []), repo.name]);
  }
  const lines = [...byLanguage.keys()].sort().map((lang) => [lang, ...byLanguage.get(lang)!].map(csvField).join(","));
  return { csv: lines.join("\n") + "\n", languages: byLanguage.size, repos };
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The two tasks: fetchers and the report builder (aggregator and importer in one callback). */
export function defineReportTasks(jobs: Jobs, config: { apiBase: string; outDir: string }) {
  const fetchHotRepos = jobs.task(
    "fetch_hot_repos",
    async (ctx, since: string, perPage: number, page: number) => {
      ctx.log.info("fetching", { page });
      return (await fetchPage(config.apiBase, since, perPage, page, ctx.signal)).items;
    },
    { queue: "reports", retries: 3, backoff: "exponential", timeout: "30s" },
  );

  const buildReport = jobs.task(
    "build_report",
    async (_ctx, pages: Repo[][], since: string) => {
      const { csv, languages, repos } = toCsv(pages);
      await mkdir(config.outDir, { recursive: true });
      const path = join(config.outDir, `github-hot-repos-${since}.csv`);
      await writeFile(path, csv);
      return { path, languages, repos };
    },
    { queue: "reports", retries: 1 },
  );

  return { fetchHotRepos, buildReport };
}

export interface ReportOptions {
  databaseUrl: string;
  /** Where the CSV goes. Default: <tmp>/pgjobs-examples. */
  outDir?: string;
  /** How long the stand-in API takes per page. Default 400 ms. */
  delayMs?: number;
  period?: "day" | "week" | "month";
  log?: (line: string) => void;
}

export interface ReportRun {
  path: string;
  csv: string;
  pages: number;
  languages: number;
  repos: number;
  parallelS: number;
  sequentialS: number;
}

export async function runReportPipeline(options: ReportOptions): Promise<ReportRun> {
  const log = options.log ?? console.log;
  const outDir = options.outDir ?? join(tmpdir(), "pgjobs-examples");
  const delayMs = options.delayMs ?? 400;
  const api = await startFakeGithub(delayMs);
  const jobs = createJobs({ connectionString: options.databaseUrl, logLevel: process.env.PGJOBS_LOG_LEVEL ?? "warn" });
  try {
    await jobs.migrate();
    const { fetchHotRepos, buildReport } = defineReportTasks(jobs, { apiBase: api.base, outDir });
    await jobs.worker({ queues: ["reports"], concurrency: 10 }).start();

    const since = sinceDate(options.period ?? "week");
    const pages = [1, 2, 3, 4, 5];
    log(`Fetching ${pages.length} pages of hot repositories created since ${since} (the stand-in API takes ${delayMs} ms a page)`);
    // The web request's part: enqueue the chord and wait for the callback's result.
    const [report, parallelS] = await timed(async () => {
      const r = await chord(pages.map((p) => fetchHotRepos.s(since, 100, p)), buildReport.s(since)).applyAsync();
      return r.get({ timeout: 60_000 });
    });

    // The same work without the queue: five calls one after another, then the same CSV.
    const [, sequentialS] = await timed(async () => {
      const results: Repo[][] = [];
      for (const p of pages) results.push((await fetchPage(api.base, since, 100, p)).items);
      return toCsv(results);
    });

    const csv = await readFile(report.path, "utf8");
    log(`\nWrote ${report.path}: ${report.repos} repositories in ${report.languages} languages`);
    for (const line of csv.split("\n").slice(0, 3)) log(`  ${line.length > 90 ? line.slice(0, 87) + "..." : line}`);
    log(`\nchord(5 x fetch_hot_repos, build_report):\n${comparison(parallelS, sequentialS)}`);
    return { path: report.path, csv, pages: pages.length, languages: report.languages, repos: report.repos, parallelS, sequentialS };
  } finally {
    await jobs.close();
    await api.close();
  }
}

if (isMain(import.meta.url)) {
  await runExample(async (databaseUrl) => {
    await runReportPipeline({ databaseUrl });
  });
}
