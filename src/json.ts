import { InvalidInputError } from "./errors.js";

/** A value that survives JSON: what task arguments and results may be. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json | undefined };

/**
 * Check that `value` survives a round trip through JSON and return its JSON text.
 *
 * Refused, with the path of the offending value: BigInt, functions, symbols, NaN and
 * ±Infinity, circular structures, `undefined` (or a hole) inside an array, and class instances
 * (Map, Set, RegExp, Buffer, your own classes) that have no `toJSON()`: JSON would silently
 * turn them into `{}` or `null` and the task would receive something else than was sent.
 * Accepted: plain objects (an `undefined` property is left out, as JSON does) and objects with a
 * `toJSON()` method, whose result is checked in turn. **Dates** have one: a Date argument arrives
 * in the handler as its ISO-8601 string (`"2026-11-27T09:00:00.000Z"`), exactly as JSON.stringify
 * would send it; convert it back with `new Date(s)`.
 */
export function toJsonText(value: unknown, taskName: string, what: string, maxBytes?: number): string {
  checkJson(value, taskName, what);
  const text = JSON.stringify(value);
  if (maxBytes !== undefined && text.length * 3 > maxBytes && Buffer.byteLength(text) > maxBytes) {
    throw new InvalidInputError(
      `task ${taskName}: ${what} is ${Buffer.byteLength(text)} bytes of JSON, over the ${maxBytes}-byte limit: pass a reference (a URL, a row id) instead of the data, or raise maxPayloadBytes`,
    );
  }
  return text;
}

/**
 * Prototypes whose instances are plain data all the same: the signatures a Jobs makes keep
 * their methods, non-enumerable, on one (see signaturePrototype in client.ts).
 */
export const plainPrototypes = new WeakSet<object>();

/** Nesting beyond this is checked by the slow walk, which also finds circular references. */
const FAST_DEPTH = 64;

/**
 * Whether `v` is plain JSON, without building paths or tracking what was seen: the common case,
 * 3 to 5 times cheaper than the walk that names the offending value (run only when this says no).
 * Anything unusual (a toJSON method, a class instance, deep nesting) answers no and is judged there.
 */
function isPlainJson(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case "string":
      return !v.includes("\u0000");
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(v);
    case "object":
      break;
    default:
      return false;
  }
  if (v === null) return true;
  if (depth > FAST_DEPTH) return false;
  if (Array.isArray(v)) {
    // An Array subclass may have a toJSON of its own: the walk judges it.
    if (Object.getPrototypeOf(v) !== Array.prototype) return false;
    // A hole reads as undefined, which is refused: both go to the walk that names them.
    for (let i = 0; i < v.length; i++) if (!isPlainJson(v[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null && !plainPrototypes.has(proto)) return false;
  if (typeof (v as { toJSON?: unknown }).toJSON === "function") return false;
  // for-in, not Object.keys: no array per object. It also visits inherited enumerable keys
  // (none, short of a polluted Object.prototype): a value there that is not plain JSON only sends
  // the object to the walk, which reads own keys as JSON.stringify does.
  for (const key in v) {
    if (key.includes("\u0000")) return false;
    const child = (v as Record<string, unknown>)[key];
    if (child !== undefined && !isPlainJson(child, depth + 1)) return false;
  }
  return Object.getOwnPropertySymbols(v).length === 0;
}

export function checkJson(value: unknown, taskName: string, path: string): void {
  if (isPlainJson(value, 0)) return;
  const seen = new Set<object>();
  const fail = (p: string, why: string): never => {
    throw new InvalidInputError(`task ${taskName}: ${p} is ${why}, which JSON cannot carry: pass plain JSON values (strings, numbers, booleans, null, arrays, plain objects)`);
  };
  const failNul = (p: string, what: string): never => {
    throw new InvalidInputError(`task ${taskName}: ${p} is ${what} containing the NUL character (U+0000), which Postgres's jsonb cannot store: remove it or encode the value (e.g. base64)`);
  };
  const walk = (v: unknown, p: string): void => {
    switch (typeof v) {
      case "string":
        // Postgres's jsonb cannot hold U+0000: refused here, with the path, not by the server.
        if (v.includes("\u0000")) failNul(p, "a string");
        return;
      case "boolean":
        return;
      case "number":
        if (!Number.isFinite(v)) fail(p, String(v));
        return;
      case "bigint":
        return fail(p, `a BigInt (${v}n)`);
      case "function":
        return fail(p, "a function");
      case "symbol":
        return fail(p, "a symbol");
      case "undefined":
        return fail(p, "undefined");
    }
    if (v === null) return;
    const obj = v as object;
    if (seen.has(obj)) fail(p, "a circular reference");
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") {
      if (obj instanceof Date && Number.isNaN(obj.getTime())) fail(p, "an invalid Date");
      // A typed toJSON defines what the value means in JSON (Date -> ISO string).
      seen.add(obj);
      walk((toJSON as () => unknown).call(obj), p);
      seen.delete(obj);
      return;
    }
    seen.add(obj);
    if (Array.isArray(obj)) {
      for (let i = 0; i < obj.length; i++) {
        if (!(i in obj)) fail(`${p}[${i}]`, "a hole in a sparse array");
        walk(obj[i], `${p}[${i}]`);
      }
    } else {
      const proto = Object.getPrototypeOf(obj);
      if (proto !== Object.prototype && proto !== null && !plainPrototypes.has(proto)) {
        fail(p, `an instance of ${obj.constructor?.name ?? "a class"}`);
      }
      for (const key of Object.keys(obj)) {
        if (key.includes("\u0000")) failNul(p, "an object with a key");
        const child = (obj as Record<string, unknown>)[key];
        if (child === undefined) continue; // left out, as JSON.stringify does
        walk(child, /^[A-Za-z_$][\w$]*$/.test(key) ? `${p}.${key}` : `${p}[${JSON.stringify(key)}]`);
      }
      if (Object.getOwnPropertySymbols(obj).length > 0) fail(p, "an object with symbol keys");
    }
    seen.delete(obj);
  };
  walk(value, path);
}
