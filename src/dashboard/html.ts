/**
 * HTML built by a tagged template that escapes every interpolated value, so that what comes from
 * the database (task names, arguments, results, errors, log lines) can only ever be text. Only a
 * value that is already `Html` (made by `html` itself, or by `raw` for the few constants that
 * need it) is inserted as markup.
 *
 * ```ts
 * html`<td>${task.name}</td>`          // "<img src=x>" becomes &lt;img src=x&gt;
 * html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`
 * ```
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" };

/** Text made safe for an element's content and for a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

function part(v: unknown): string {
  if (v instanceof Html) return v.value;
  if (v === null || v === undefined || v === false) return "";
  if (Array.isArray(v)) return v.map(part).join("");
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Markup we wrote ourselves (never anything read from the database or the request). */
export function raw(markup: string): Html {
  return new Html(markup);
}

/** A URL path segment (task ids, queue and schedule names), percent-encoded. */
export function seg(s: string | number): string {
  return encodeURIComponent(String(s));
}

/** A query string from the non-empty values, for links. */
export function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}
