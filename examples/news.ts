// `npm run example:news`: the news aggregation of "Make your code 2x faster" (Celery's chord).
// Top headlines from five countries are fetched in parallel, one task per country, from a local
// server standing in for NewsAPI; a chord callback concatenates them into one report. Then the same
// five calls one after another, for comparison. Runs on DATABASE_URL, or on a throwaway embedded
// Postgres.
import { chord, createJobs, type Jobs } from "../src/index.js";
import { getJson, startFakeApi, type FakeApi } from "./lib/fake-api.js";
import { isMain, runExample } from "./lib/main.js";
import { comparison, timed } from "./lib/timing.js";

interface Article {
  source: { name: string };
  title: string;
  url: string;
  publishedAt: string;
}

const ARTICLES_PER_COUNTRY = 8;
const SOURCES: Record<string, string> = { us: "AP", gb: "BBC News", de: "Tagesschau", fr: "Le Monde", in: "The Hindu" };

/** NewsAPI's GET /v2/top-headlines?country=.., served locally; some countries answer slower. */
function startFakeNewsApi(delayMs: number): Promise<FakeApi> {
  const countries = Object.keys(SOURCES);
  return startFakeApi(
    (url) => {
      const country = url.searchParams.get("country") ?? "";
      if (url.pathname !== "/v2/top-headlines" || !SOURCES[country]) return undefined;
      const articles: Article[] = Array.from({ length: ARTICLES_PER_COUNTRY }, (_, i) => ({
        source: { name: SOURCES[country]! },
        title: `${country.toUpperCase()} headline ${i + 1}`,
        url: `https://news.example/${country}/${i + 1}`,
        publishedAt: new Date(Date.UTC(2026, 10, 27, 8, i)).toISOString(),
      }));
      return { status: "ok", totalResults: articles.length, articles };
    },
    (url) => delayMs + 25 * Math.max(0, countries.indexOf(url.searchParams.get("country") ?? "")),
  );
}

function topHeadlines(apiBase: string, country: string, signal?: AbortSignal): Promise<{ articles: Article[] }> {
  return getJson(`${apiBase}/v2/top-headlines?country=${encodeURIComponent(country)}&apiKey=demo`, signal);
}

export interface NewsReport {
  articles: number;
  byCountry: Record<string, number>;
  /** Every article, its country first, newest first (the concatenated frame). */
  rows: Array<{ country: string; source: string; title: string; publishedAt: string }>;
}

/** The callback: concatenate the countries' articles into one table (genReport). */
function concatenate(results: Array<{ country: string; articles: Article[] }>): NewsReport {
  const rows = results.flatMap((r) => r.articles.map((a) => ({ country: r.country, source: a.source.name, title: a.title, publishedAt: a.publishedAt })));
  rows.sort((a, b) => b.publishedAt.localeCompare(a.publishedAt));
  const byCountry: Record<string, number> = {};
  for (const r of results) byCountry[r.country] = r.articles.length;
  return { articles: rows.length, byCountry, rows };
}

export function defineNewsTasks(jobs: Jobs, config: { apiBase: string }) {
  const getNewsData = jobs.task(
    "get_news_data",
    async (ctx, country: string) => ({ country, articles: (await topHeadlines(config.apiBase, country, ctx.signal)).articles }),
    { queue: "news", retries: 2, timeout: "10s" },
  );
  const genReport = jobs.task("gen_report", (_ctx, results: Array<{ country: string; articles: Article[] }>) => concatenate(results), { queue: "news" });
  return { getNewsData, genReport };
}

export interface NewsOptions {
  databaseUrl: string;
  countries?: string[];
  /** How long the stand-in API takes to answer. Default 400 ms (+25 ms per country). */
  delayMs?: number;
  log?: (line: string) => void;
}

export async function runNews(options: NewsOptions): Promise<NewsReport & { parallelS: number; sequentialS: number }> {
  const log = options.log ?? console.log;
  const countries = options.countries ?? ["us", "gb", "de", "fr", "in"];
  const api = await startFakeNewsApi(options.delayMs ?? 400);
  const jobs = createJobs({ connectionString: options.databaseUrl, logLevel: process.env.PGJOBS_LOG_LEVEL ?? "warn" });
  try {
    await jobs.migrate();
    const { getNewsData, genReport } = defineNewsTasks(jobs, { apiBase: api.base });
    await jobs.worker({ queues: ["news"], concurrency: 10 }).start();

    log(`Top headlines from ${countries.join(", ")}`);
    const [report, parallelS] = await timed(async () => {
      const r = await chord(countries.map((c) => getNewsData.s(c)), genReport.s()).applyAsync();
      return r.get({ timeout: 30_000 });
    });
    const [, sequentialS] = await timed(async () => {
      const results = [];
      for (const c of countries) results.push({ country: c, articles: (await topHeadlines(api.base, c)).articles });
      return concatenate(results);
    });

    log(`\n${report.articles} articles: ${Object.entries(report.byCountry).map(([c, n]) => `${c} ${n}`).join(", ")}`);
    for (const r of report.rows.slice(0, 3)) log(`  ${r.publishedAt}  ${r.country}  ${r.source.padEnd(10)}  ${r.title}`);
    log(`\nchord(${countries.length} x get_news_data, gen_report):\n${comparison(parallelS, sequentialS)}`);
    return { ...report, parallelS, sequentialS };
  } finally {
    await jobs.close();
    await api.close();
  }
}

if (isMain(import.meta.url)) {
  await runExample(async (databaseUrl) => {
    await runNews({ databaseUrl });
  });
}
