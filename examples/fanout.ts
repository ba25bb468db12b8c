// `npm run example:fanout`: the paginated fan-out of "Think Parallel with Celery", scaled down.
// A start task walks 20 pages of 100 objects and enqueues a task per page; each page task fans out
// a group of one task per object from inside the running task; each object task fetches the
// object and its details and saves them. Short sleeps stand in for the HTTP calls (the post's
// times divided by 100). Prints the time for all 2,000 objects next to the time the same calls
// take one after another. Runs on DATABASE_URL, or on a throwaway embedded Postgres.
import { createJobs, group, GroupResult, type AsyncResult, type Jobs } from "../src/index.js";
import { isMain, runExample } from "./lib/main.js";
import { comparison, timed } from "./lib/timing.js";

/** The post's sleeps (0.5 s a page, 0.25 s + 0.75 s + 2 s an object), divided by 100. */
export const DEFAULT_SLEEPS = { pageMs: 5, objMs: 2.5, detailsMs: 7.5, crunchMs: 20 };
type Sleeps = typeof DEFAULT_SLEEPS;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The "API" and the expensive step, as in the post. */
function calls(sleeps: Sleeps, jobs: Jobs) {
  return {
    /** One page of object ids (an HTTP call). Ids are unique: page * perPage + n. */
    async getPage(page: number, perPage: number): Promise<number[]> {
      await sleep(sleeps.pageMs);
      return Array.from({ length: perPage }, (_, n) => page * perPage + n);
    },
    async getObj(id: number) {
      await sleep(sleeps.objMs);
      return { id, kind: "vm" };
    },
    async getObjDetails(id: number) {
      await sleep(sleeps.detailsMs);
      return { id, cost: (id % 17) * 1.5 };
    },
    /** Crunch and save. `saves` counts how often an object was saved: exactly once is 1. */
    async crunchAndSave(page: number, obj: { id: number }, details: { cost: number }) {
      await sleep(sleeps.crunchMs);
      await jobs.pool.query(
        `insert into fanout_objects (obj_id, page, obj, details) values ($1, $2, $3, $4)
         on conflict (obj_id) do update set saves = fanout_objects.saves + 1, saved_at = now()`,
        [obj.id, page, obj, details],
      );
    },
  };
}

export function defineFanoutTasks(jobs: Jobs, sleeps: Sleeps = DEFAULT_SLEEPS) {
  const api = calls(sleeps, jobs);
  const o = { queue: "fanout", retries: 3 };

  /** One object: fetch it and its details, crunch, save (the post's store_obj_info). */
  const storeObjInfo = jobs.task("fanout.store_obj_info", async (_ctx, objId: number, page: number) => {
    const obj = await api.getObj(objId);
    const details = await api.getObjDetails(objId);
    await api.crunchAndSave(page, obj, details);
  }, o);

  /** One page: a group of one task per object, applied from inside this task. Returns their ids. */
  const storeResults = jobs.task("fanout.store_results", async (_ctx, page: number, objIds: number[]) => {
    const g = await group(objIds.map((id) => storeObjInfo.s(id, page))).applyAsync();
    return g.results.map((r) => (r as AsyncResult).id);
  }, o);

  /** Walk the pages; a task per page. Returns the page tasks' ids. */
  const start = jobs.task("fanout.start", async (_ctx, pages: number, perPage: number) => {
    const ids: string[] = [];
    for (let page = 0; page < pages; page++) {
      const objIds = await api.getPage(page, perPage);
      ids.push((await storeResults.delay(page, objIds)).id);
    }
    return ids;
  }, o);

  return { start, storeResults, storeObjInfo, api };
}

export interface FanoutOptions {
  databaseUrl: string;
  pages?: number;
  perPage?: number;
  /** Object tasks running at once in the worker. Default 100. */
  concurrency?: number;
  sleeps?: Sleeps;
  /** How many objects to run one after another to measure the sequential time. Default 100. */
  sequentialSample?: number;
  log?: (line: string) => void;
}

export interface FanoutRun {
  pages: number;
  objects: number;
  parallelS: number;
  /** Extrapolated from `sequentialSample` objects run one after another. */
  sequentialS: number;
}

export async function runFanout(options: FanoutOptions): Promise<FanoutRun> {
  const log = options.log ?? console.log;
  const pages = options.pages ?? 20;
  const perPage = options.perPage ?? 100;
  const sleeps = options.sleeps ?? DEFAULT_SLEEPS;
  const jobs = createJobs({ connectionString: options.databaseUrl, logLevel: process.env.PGJOBS_LOG_LEVEL ?? "warn" });
  try {
    await jobs.migrate();
    await jobs.pool.query(`create table if not exists fanout_objects (
      obj_id integer primary key, page integer not null, obj jsonb not null, details jsonb not null,
      saves integer not null default 1, saved_at timestamptz not null default now())`);
    await jobs.pool.query("truncate fanout_objects");
    const { start, api } = defineFanoutTasks(jobs, sleeps);
    await jobs.worker({ queues: ["fanout"], concurrency: options.concurrency ?? 100 }).start();

    log(`${pages} pages of ${perPage} objects: a task per page, each fanning out a group of ${perPage} object tasks`);
    const [objects, parallelS] = await timed(async () => {
      const pageIds = await (await start.delay(pages, perPage)).get({ timeout: 120_000 });
      // Each page task returned its group's ids: wait for every object task.
      const perPageIds = await new GroupResult<string[][]>(pageIds.map((id) => jobs.result(id, "fanout.store_results")), jobs).get({ timeout: 120_000 });
      const objectIds = perPageIds.flat();
      await new GroupResult(objectIds.map((id) => jobs.result(id, "fanout.store_obj_info")), jobs).get({ timeout: 120_000 });
      return objectIds.length;
    });
    const { rows } = await jobs.pool.query<{ n: number }>("select count(*)::int as n from fanout_objects");
    log(`\nSaved ${rows[0]!.n} objects (${objects} object tasks, ${pages} page tasks, 1 start task)`);

    // The post's first version: everything in one task, one call after another. Measured on a
    // sample of objects (2,000 of them would take minutes) and scaled up.
    const sample = Math.max(1, Math.min(options.sequentialSample ?? 100, perPage));
    const [, sampleS] = await timed(async () => {
      await api.getPage(pages, 0); // the page call; the sample's ids lie past the real ones
      for (let id = pages * perPage; id < pages * perPage + sample; id++) {
        const obj = await api.getObj(id);
        const details = await api.getObjDetails(id);
        await api.crunchAndSave(pages, obj, details);
      }
    });
    await jobs.pool.query("delete from fanout_objects where page = $1", [pages]);
    const perObjectS = (sampleS - sleeps.pageMs / 1000) / sample;
    const sequentialS = pages * (sleeps.pageMs / 1000) + pages * perPage * perObjectS;
    log(`\n${pages * perPage} objects:\n${comparison(parallelS, sequentialS, `${sample} objects measured one after another, scaled to ${pages * perPage}`)}`);
    return { pages, objects, parallelS, sequentialS };
  } finally {
    await jobs.close();
  }
}

if (isMain(import.meta.url)) {
  await runExample(async (databaseUrl) => {
    await runFanout({ databaseUrl });
  });
}
