/** Timing for the examples: how long the queue took next to the same work done one call at a time. */

/** Run `fn` and return its value with the seconds it took. */
export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const value = await fn();
  return [value, (performance.now() - t) / 1000];
}

/** "parallel 0.45 s | sequential 2.31 s (5.1x faster on the queue)" */
export function comparison(parallelS: number, sequentialS: number, sequentialNote = "one call after another"): string {
  return [
    `  in parallel on the queue: ${parallelS.toFixed(2)} s`,
    `  sequentially (${sequentialNote}): ${sequentialS.toFixed(2)} s`,
    `  => ${(sequentialS / parallelS).toFixed(1)}x faster`,
  ].join("\n");
}
