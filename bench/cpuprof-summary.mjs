#!/usr/bin/env node
// Self time by function and by package from V8 .cpuprofile files (bench --cpu-prof DIR):
//   node bench/cpuprof-summary.mjs DIR/*.cpuprofile [--top 25]
import { readFileSync } from "node:fs";
const files = process.argv.slice(2).filter((a) => a.endsWith(".cpuprofile"));
const top = Number(process.argv[process.argv.indexOf("--top") + 1]) || 25;
const byFn = new Map(), byPkg = new Map();
let total = 0;
for (const f of files) {
  const p = JSON.parse(readFileSync(f, "utf8"));
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const dt = new Map();
  for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  for (const [id, us] of dt) {
    const n = nodes.get(id);
    const cf = n.callFrame;
    const url = cf.url || "(native)";
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? (/\/dist\/src\//.test(url) ? "pgjobs" : /\/dist\/bench\//.test(url) ? "bench" : url.startsWith("node:") ? "node:" + url.slice(5).split("/")[0] : cf.functionName.startsWith("(") ? cf.functionName : "(native)");
    const key = `${cf.functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}:${cf.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + us);
    total += us;
  }
}
const show = (m, k) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([n, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${n}`).join("\n");
console.log(`total ${(total / 1000).toFixed(0)} ms sampled in ${files.length} profile(s)\n\nby package:\n${show(byPkg, 15)}\n\nby function (self):\n${show(byFn, top)}`);
