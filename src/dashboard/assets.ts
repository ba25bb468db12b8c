/**
 * The dashboard's static files. Everything ships in the package: htmx from its npm package
 * (htmx.org, resolved on disk, never a CDN), and our own stylesheet and script below, served as
 * files so the Content-Security-Policy can forbid inline script and style altogether.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { gzipSync } from "node:zlib";

export interface Asset {
  readonly body: Buffer;
  /** The same, gzipped once at start, for clients that accept it (htmx: 52 kB -> 17 kB). */
  readonly gzip: Buffer;
  readonly type: string;
  /** Content hash, in the URL, so an asset can be cached for a year and still change on upgrade. */
  readonly hash: string;
}

function asset(body: string | Buffer, type: string): Asset {
  const buf = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  return { body: buf, gzip: gzipSync(buf, { level: 9 }), type, hash: createHash("sha256").update(buf).digest("hex").slice(0, 12) };
}

// Sent by the server after every change it hears of (LISTEN/NOTIFY) and on its slow poll; each
// live region refreshes itself with one GET (hx-trigger="pgjobs:change from:body"). The page is
// never reloaded as a whole, so a form being filled in or a scroll position survives.
const LIVE_JS = `// pgjobs dashboard: server-sent events -> htmx refreshes of the page's live regions.
(function () {
  "use strict";
  var body = document.body;
  var base = body.getAttribute("data-base") || "/";
  var source = null;
  var watching = null;
  var opens = 0;

  function setStatus(cls, text) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.className = "live " + cls;
    el.textContent = text;
  }

  // Tasks the page shows that may still change: the server asks to be told when they finish.
  function watchList() {
    var ids = [];
    document.querySelectorAll("[data-watch]").forEach(function (el) {
      (el.getAttribute("data-watch") || "").split(",").forEach(function (id) {
        if (/^[0-9]{1,19}$/.test(id) && ids.indexOf(id) < 0) ids.push(id);
      });
    });
    return ids.slice(0, 200).join(",");
  }

  function connect() {
    var w = watchList();
    if (source && w === watching) return;
    if (source) source.close();
    watching = w;
    source = new EventSource(base + "events" + (w ? "?watch=" + w : ""));
    source.addEventListener("open", function () {
      setStatus("on", "live");
      // A stream opened again (a new watch list, or after a drop): a change that came while no
      // stream was open reached nobody, so refresh once.
      if (opens++ > 0) htmx.trigger(body, "pgjobs:change");
    });
    source.addEventListener("error", function () { setStatus("off", "reconnecting"); });
    source.addEventListener("change", function () { htmx.trigger(body, "pgjobs:change"); });
  }

  var flashTimer = null;
  body.addEventListener("pgjobs:flash", function (e) {
    var el = document.getElementById("flash");
    if (!el || !e.detail) return;
    el.textContent = e.detail.text || "";
    el.className = "flash " + (e.detail.level === "error" ? "error" : "ok");
    clearTimeout(flashTimer);
    flashTimer = setTimeout(function () { el.className = "flash hidden"; }, 8000);
  });
  body.addEventListener("htmx:afterSettle", connect);
  body.addEventListener("htmx:sendError", function () { setStatus("off", "server unreachable"); });
  window.addEventListener("pagehide", function () { if (source) source.close(); });
  connect();
})();
`;

const CSS = `:root {
  --bg: #fbfbfa; --fg: #1d2025; --muted: #68707c; --line: #e3e5e8; --panel: #ffffff; --head: #f3f4f6;
  --accent: #2f5fd0; --ok: #1d7f48; --bad: #c0362c; --warn: #a86400; --run: #2f5fd0; --wait: #6b5bb5;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #15171a; --fg: #e4e6ea; --muted: #98a0ab; --line: #2b2f35; --panel: #1c1f23; --head: #23272d;
    --accent: #7ea2ff; --ok: #4cc184; --bad: #ff7b70; --warn: #f0b041; --run: #7ea2ff; --wait: #b5a6ff; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; align-items: center; gap: 22px; padding: 10px 22px; border-bottom: 1px solid var(--line); background: var(--panel); position: sticky; top: 0; z-index: 2; }
header.top .brand { font-weight: 700; letter-spacing: .02em; color: var(--fg); }
header.top nav { display: flex; gap: 4px; flex: 1; }
header.top nav a { padding: 5px 10px; border-radius: 6px; color: var(--muted); }
header.top nav a.current { background: var(--head); color: var(--fg); font-weight: 600; }
header.top form { margin: 0; }
header.top input[type=search] { width: 150px; }
.live { font-size: 12px; color: var(--muted); white-space: nowrap; }
.live::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 6px; background: var(--muted); vertical-align: 0; }
.live.on::before { background: var(--ok); }
.live.off::before { background: var(--bad); }
.badge.ro { background: var(--head); color: var(--warn); }
main { padding: 18px 22px 40px; max-width: 1400px; }
h1 { font-size: 20px; margin: 4px 0 14px; font-weight: 650; }
h1 .sub { color: var(--muted); font-weight: 400; font-size: 15px; margin-left: 8px; }
h2 { font-size: 15px; margin: 26px 0 8px; font-weight: 650; }
table { border-collapse: collapse; width: 100%; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--head); font-weight: 600; font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td time, td.when { white-space: nowrap; }
td.mono, .mono { font-family: var(--mono); font-size: 12.5px; }
td.clip { max-width: 300px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.muted { color: var(--muted); }
.zero { color: var(--muted); opacity: .6; }
.hot { color: var(--bad); font-weight: 600; }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: var(--head); color: var(--muted); }
.state.succeeded { color: var(--ok); } .state.failed { color: var(--bad); } .state.running { color: var(--run); }
.state.retrying { color: var(--warn); } .state.ready { color: var(--fg); } .state.pending { color: var(--wait); }
.state.cancelled { color: var(--muted); text-decoration: line-through; } .state.paused { color: var(--warn); }
.state.waiting { color: var(--run); } .state.fired { color: var(--ok); }
dl.props { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
dl.props dt { color: var(--muted); }
dl.props dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
pre { margin: 0; padding: 10px 12px; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; font: 12.5px/1.5 var(--mono); overflow: auto; max-height: 420px; white-space: pre-wrap; overflow-wrap: anywhere; }
pre.error { border-color: var(--bad); }
.errhead { color: var(--bad); font-weight: 600; margin: 0 0 6px; overflow-wrap: anywhere; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 0 24px; }
.actions { display: flex; gap: 8px; flex-wrap: wrap; margin: 0 0 14px; }
.actions form, td form { display: inline; margin: 0; }
button, .button { font: inherit; font-size: 13px; padding: 4px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--panel); color: var(--fg); cursor: pointer; }
button:hover { border-color: var(--accent); }
button.danger { color: var(--bad); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
td button { padding: 1px 8px; font-size: 12px; }
input, select { font: inherit; font-size: 13px; padding: 4px 8px; border-radius: 6px; border: 1px solid var(--line); background: var(--panel); color: var(--fg); }
form.filters { display: flex; gap: 8px; flex-wrap: wrap; align-items: end; margin: 0 0 12px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
.pager { display: flex; gap: 14px; margin: 10px 0; }
.flash { position: fixed; right: 18px; bottom: 18px; padding: 10px 14px; border-radius: 8px; background: var(--panel); border: 1px solid var(--ok); max-width: 520px; box-shadow: 0 4px 18px rgba(0,0,0,.12); z-index: 5; }
.flash.error { border-color: var(--bad); }
.flash.hidden { display: none; }
.note { color: var(--muted); font-size: 13px; margin: 6px 0; }
.empty { color: var(--muted); padding: 14px; background: var(--panel); border: 1px dashed var(--line); border-radius: 8px; }
svg.spark { display: block; }
svg.spark .ok { fill: var(--ok); } svg.spark .bad { fill: var(--bad); } svg.spark .base { fill: var(--line); }
progress { width: 160px; height: 10px; vertical-align: middle; accent-color: var(--ok); }
.steps { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.steps .step { border: 1px solid var(--line); border-radius: 6px; padding: 3px 8px; background: var(--panel); }
.steps .step.here { border-color: var(--accent); box-shadow: 0 0 0 1px var(--accent); }
.steps .arrow { color: var(--muted); }
tr.log-warn td { color: var(--warn); } tr.log-error td, tr.log-fatal td { color: var(--bad); }
td.log-message { white-space: pre-wrap; overflow-wrap: anywhere; }
.login { max-width: 380px; margin: 80px auto; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 24px; }
.login input { width: 100%; margin: 8px 0 14px; }
`;

let cached: Map<string, Asset> | null = null;

/** The assets by file name: htmx.min.js, live.js, dashboard.css. */
export function assets(): Map<string, Asset> {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const htmxPath = require.resolve("htmx.org/dist/htmx.min.js");
  cached = new Map([
    ["htmx.min.js", asset(readFileSync(htmxPath), "text/javascript; charset=utf-8")],
    ["live.js", asset(LIVE_JS, "text/javascript; charset=utf-8")],
    ["dashboard.css", asset(CSS, "text/css; charset=utf-8")],
  ]);
  return cached;
}
