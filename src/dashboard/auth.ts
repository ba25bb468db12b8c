/**
 * Who may see the dashboard, and which POSTs are the operator's own.
 *
 * - Credentials: a bearer token (header, or a cookie set by the login form or by opening the
 *   URL with ?token=...), and/or HTTP basic auth. Compared in constant time.
 * - Cross-site requests: every action is a POST carrying this process's CSRF token in a hidden
 *   field, and is refused when the browser says it came from another site (Sec-Fetch-Site) or
 *   another origin (Origin differs from Host).
 * - DNS rebinding: when the dashboard runs without credentials (on 127.0.0.1 only), a request
 *   whose Host is not a loopback name is refused, so a web page whose domain resolves to
 *   127.0.0.1 cannot read it.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { InvalidInputError } from "../errors.js";

export interface BasicAuth {
  username: string;
  password: string;
}

export interface AuthConfig {
  token: string | null;
  basic: BasicAuth | null;
  /** Host names (without port) a request may address; null: any. */
  allowedHosts: string[] | null;
}

export type AuthResult = { ok: true; actor: string | null } | { ok: false; reason: "missing" | "wrong" };

export const COOKIE = "pgjobs_dashboard";
const MIN_TOKEN_LENGTH = 16;

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Constant time in the length of the secret: both sides are hashed first. */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** "user:password" (the CLI flag) or an object. */
export function parseBasicAuth(v: string | BasicAuth | undefined | null): BasicAuth | null {
  if (v === undefined || v === null || v === "") return null;
  if (typeof v !== "string") {
    if (!v.username || !v.password) throw new InvalidInputError("basicAuth needs a username and a password");
    return v;
  }
  const i = v.indexOf(":");
  if (i <= 0 || i === v.length - 1) {
    throw new InvalidInputError("basic auth must be given as user:password, with neither part empty");
  }
  return { username: v.slice(0, i), password: v.slice(i + 1) };
}

export function checkToken(token: string | undefined | null): string | null {
  if (token === undefined || token === null || token === "") return null;
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new InvalidInputError(`the dashboard token is ${token.length} characters long: use at least ${MIN_TOKEN_LENGTH} (e.g. openssl rand -hex 24), a short one can be guessed`);
  }
  return token;
}

/** The cookie's value: derived from the token, so the cookie jar does not hold the token itself. */
export function cookieValue(token: string): string {
  return createHash("sha256").update(`pgjobs-dashboard-cookie:${token}`).digest("base64url");
}

export function readCookie(req: IncomingMessage, name: string): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}

/** Whether the request carries valid credentials, and the name it acts under. */
export function authenticate(req: IncomingMessage, cfg: AuthConfig, queryToken: string | null): AuthResult {
  if (!cfg.token && !cfg.basic) return { ok: true, actor: null };
  const header = req.headers.authorization ?? "";
  let presented = false;
  if (cfg.token) {
    const bearer = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
    const cookie = readCookie(req, COOKIE);
    if (bearer !== undefined || cookie !== null || queryToken !== null) presented = true;
    if (bearer !== undefined && safeEqual(bearer, cfg.token)) return { ok: true, actor: "token" };
    if (queryToken !== null && safeEqual(queryToken, cfg.token)) return { ok: true, actor: "token" };
    if (cookie !== null && safeEqual(cookie, cookieValue(cfg.token))) return { ok: true, actor: "token" };
  }
  if (cfg.basic) {
    const b64 = /^Basic\s+(.+)$/i.exec(header)?.[1]?.trim();
    if (b64 !== undefined) {
      presented = true;
      const decoded = Buffer.from(b64, "base64").toString("utf8");
      const i = decoded.indexOf(":");
      const user = i < 0 ? decoded : decoded.slice(0, i);
      const pass = i < 0 ? "" : decoded.slice(i + 1);
      // Both compared, always, so the time taken does not tell which one was wrong.
      const okUser = safeEqual(user, cfg.basic.username);
      const okPass = safeEqual(pass, cfg.basic.password);
      if (okUser && okPass) return { ok: true, actor: cfg.basic.username };
    }
  }
  return { ok: false, reason: presented ? "wrong" : "missing" };
}

/** The request's Host without its port, lower-cased ("[::1]" keeps its brackets). */
export function hostName(req: IncomingMessage): string {
  const host = (req.headers.host ?? "").toLowerCase();
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const i = host.lastIndexOf(":");
  return i >= 0 ? host.slice(0, i) : host;
}

export function hostAllowed(req: IncomingMessage, cfg: AuthConfig): boolean {
  if (!cfg.allowedHosts) return true;
  return cfg.allowedHosts.includes(hostName(req));
}

/** 127.0.0.0/8, ::1, localhost: addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || /^::ffff:127\./.test(h);
  return false;
}

export class Csrf {
  /** One secret per dashboard (per process): in each page's forms, checked on every POST. */
  readonly token = randomBytes(24).toString("base64url");

  /** Why a POST is refused, or null if it may proceed. */
  check(req: IncomingMessage, presented: string | undefined): string | null {
    const site = req.headers["sec-fetch-site"];
    if (site !== undefined && site !== "same-origin" && site !== "none") return `a ${site} request`;
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let host: string;
      try {
        host = new URL(origin).host;
      } catch {
        return `origin ${origin}`;
      }
      if (host.toLowerCase() !== (req.headers.host ?? "").toLowerCase()) return `origin ${origin}`;
    }
    if (presented === undefined || !safeEqual(presented, this.token)) return "a missing or stale form token (reload the page)";
    return null;
  }
}
