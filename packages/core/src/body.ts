import type { JsonValue } from './contract.js';
import { InvalidArgumentError } from './errors/index.js';

/**
 * Encodes a body as JSON, refusing anything that would not come back unchanged:
 * undefined, functions, symbols, BigInt, NaN/Infinity, cycles, sparse arrays, and objects that
 * are not plain (Date, Map, Set, class instances, Buffers), and nesting deeper than
 * {@link MAX_BODY_DEPTH}. The error names the path at fault.
 */
export function encodeBody(driver: string, body: unknown, argument = 'body'): string {
  // Every publish passes here: a quick walk that builds no paths vouches for the usual body; only
  // a body it cannot vouch for takes the walk that finds the exact path to name in the error.
  if (!plainJson(body, 0)) checkJson(driver, body, argument, new Set(), 1);
  return JSON.stringify(body);
}

/**
 * Deepest nesting of arrays and objects a body may have: `[[1]]` is 2 levels, `1` none. Deeper
 * bodies are refused with `InvalidArgumentError` before anything is sent: without a limit a few
 * thousand levels overflow the stack (a raw `RangeError`), here or in a consumer's JSON parser.
 */
export const MAX_BODY_DEPTH = 256;

/**
 * Past this depth the quick walk gives up (a cycle never ends); the full walk then decides. Must
 * stay below MAX_BODY_DEPTH, which only the full walk enforces.
 */
const QUICK_DEPTH = 64;

/** True when `value` is certainly a JSON value that round-trips; false means "look closer". */
function plainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth >= QUICK_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      if (!(index in value) || !plainJson(value[index], depth + 1)) return false;
    }
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  if (Object.getOwnPropertySymbols(value).length > 0) return false;
  for (const key of Object.keys(value)) {
    if (!plainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

function reject(driver: string, path: string, value: unknown, what: string): never {
  throw new InvalidArgumentError({
    driver,
    argument: path,
    value,
    message: `${what} does not survive JSON; bodies must be JSON values (null, boolean, finite number, string, array, plain object)`,
  });
}

/** `depth` is the nesting level `value` would have if it is an array or object (the body's own is 1). */
function checkJson(driver: string, value: unknown, path: string, ancestors: Set<object>, depth: number): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) reject(driver, path, value, String(value));
      return;
    case 'undefined':
      reject(driver, path, value, 'undefined');
      break;
    case 'bigint':
      reject(driver, path, value, `BigInt ${String(value)}n`);
      break;
    case 'function':
      reject(driver, path, value, 'a function');
      break;
    case 'symbol':
      reject(driver, path, value, 'a symbol');
      break;
  }
  if (value === null) return;
  const object = value as object;
  if (ancestors.has(object)) reject(driver, path, value, 'a circular reference');
  if (depth > MAX_BODY_DEPTH) {
    // No `value`: a logger serialising the error would overflow on it just the same.
    throw new InvalidArgumentError({
      driver,
      argument: path,
      value: undefined,
      message: `${Array.isArray(object) ? 'an array' : 'an object'} nested deeper than ${MAX_BODY_DEPTH} levels; bodies may nest arrays and objects at most ${MAX_BODY_DEPTH} levels deep`,
    });
  }
  ancestors.add(object);
  if (Array.isArray(object)) {
    for (let index = 0; index < object.length; index++) {
      if (!(index in object)) reject(driver, `${path}[${index}]`, undefined, 'a hole in a sparse array');
      checkJson(driver, object[index], `${path}[${index}]`, ancestors, depth + 1);
    }
  } else {
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      reject(driver, path, value, `an instance of ${object.constructor?.name ?? 'a class'}`);
    }
    if (Object.getOwnPropertySymbols(object).length > 0) reject(driver, path, value, 'a symbol key');
    for (const [key, entry] of Object.entries(object)) {
      checkJson(driver, entry, `${path}.${key}`, ancestors, depth + 1);
    }
  }
  ancestors.delete(object);
}

/** Parses a stored body back; the inverse of encodeBody. */
export function decodeBody(json: string): JsonValue {
  return JSON.parse(json) as JsonValue;
}
