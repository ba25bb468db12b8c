#!/usr/bin/env node
// Ratios against the issue's targets from one peers-suite run (../shared/peers suite.mjs with
// --adapters ...,/path/to/bench/peer-adapter.mjs): medians per (scenario, c, system, variant),
// then pgjobs / peer for every target, from the same run only.
//
//   node bench/peer-ratios.mjs /tmp/peers/runs/runs-STAMP.jsonl [more.jsonl ...] [--markdown]
import { readFileSync } from "node:fs";

const files = process.argv.slice(2).filter((a) => !a.startsWith("--"));
if (!files.length) {
  console.error("usage: node bench/peer-ratios.mjs RUNS.jsonl [...]");
  process.exit(2);
}
const runs = files.flatMap((f) => readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)));
const med = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, d = 2) => (x == null || !Number.isFinite(x) ? "—" : Math.abs(x) >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(d));
const group = (scenario, system, variant, c) =>
  runs.filter((r) => !r.error && r.scenario === scenario && (r.system ?? r.adapter) === system && (variant == null || r.variant === variant) && (c == null || r.concurrency === c));
const stat = (rs, f) => ({ median: med(rs.map(f)), n: rs.length, ok: rs.filter((r) => r.verify?.ok).length });
const rate = (sc, sys, v, c) => stat(group(sc, sys, v, c), (r) => r.rate);

const rows = [];
const ratioRow = (target, sc, c, peerSys, peerVar, goal) => {
  const us = rate(sc, "pgjobs", "default", c);
  const them = rate(sc, peerSys, peerVar, c);
  const ratio = us.median && them.median ? us.median / them.median : null;
  rows.push({ target, pgjobs: `${fmt(us.median)} (${us.ok}/${us.n} ok)`, peer: `${peerSys}${peerVar ? ` ${peerVar}` : ""}: ${fmt(them.median)} (${them.ok}/${them.n} ok)`, ratio, goal, met: ratio == null ? "—" : ratio >= goal ? "yes" : "NO" });
};
ratioRow("drain 20k no-op, c=10, jobs/s", "drain", 10, "graphile-worker", "batched", 2);
ratioRow("drain 20k no-op, c=50, jobs/s", "drain", 50, "graphile-worker", "batched", 2);
ratioRow("enqueue-batch 1,000s, jobs/s", "enqueue-batch", null, "graphile-worker", null, 2);
ratioRow("enqueue-single, 8 producers, jobs/s", "enqueue-single", null, "graphile-worker", null, 3);
ratioRow("enqueue-single, 8 producers, jobs/s", "enqueue-single", null, "pg-boss", null, 3);
// context, not targets
ratioRow("(context) drain c=10 vs pg-boss batched", "drain", 10, "pg-boss", "batched", 0);
ratioRow("(context) drain c=50 vs pg-boss batched", "drain", 50, "pg-boss", "batched", 0);
ratioRow("(context) enqueue-batch vs pg-boss", "enqueue-batch", null, "pg-boss", null, 0);

const lat = group("latency", "pgjobs", "default");
const p50 = med(lat.map((r) => r.latency?.p50_ms)), p99 = med(lat.map((r) => r.latency?.p99_ms));
if (!lat.length) console.error("(no pgjobs latency runs in this file)");
const io = group("io-drain", "pgjobs", "default", 50);
const ioS = med(io.map((r) => r.seconds));
console.log("| target | pgjobs | peer (same run) | ratio | goal | met |\n|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.target} | ${r.pgjobs} | ${r.peer} | ${fmt(r.ratio)} | ${r.goal ? `≥ ${r.goal}` : "—"} | ${r.goal ? r.met : "—"} |`);
console.log(`| idle latency p50 / p99 ms | ${fmt(p50)} / ${fmt(p99)} (${lat.filter((r) => r.verify?.ok).length}/${lat.length} ok) | ${["graphile-worker", "pg-boss"].map((s) => {
  // each peer's batched variant when the run has it, else whatever it ran
  const b = group("latency", s, "batched");
  const g = b.length ? b : group("latency", s, null);
  return `${s}: ${fmt(med(g.map((r) => r.latency?.p50_ms)))} / ${fmt(med(g.map((r) => r.latency?.p99_ms)))}`;
}).join("; ")} | — | ≤ 1 / ≤ 3 | ${p50 != null && p50 <= 1 && p99 <= 3 ? "yes" : "NO"} |`);
if (io.length) console.log(`| io-drain 5k x 20 ms, c=50, s | ${fmt(ioS)} (${io.filter((r) => r.verify?.ok).length}/${io.length} ok) | graphile-worker batched: ${fmt(med(group("io-drain", "graphile-worker", "batched", 50).map((r) => r.seconds)))} | ${fmt(ioS / 2)}x ideal | ≤ 1.1x | ${ioS != null && ioS / 2 <= 1.1 ? "yes" : "NO"} |`);
const all = runs.filter((r) => (r.system ?? r.adapter) === "pgjobs");
console.log(`\npgjobs runs: ${all.length}, verify.ok ${all.filter((r) => r.verify?.ok).length}, errors ${all.filter((r) => r.error).length}, duplicates ${all.reduce((a, r) => a + (r.verify?.duplicates ?? 0), 0)}, lost ${all.reduce((a, r) => a + (r.verify?.completed_without_handler ?? 0), 0)}`);
