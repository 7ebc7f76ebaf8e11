import type { JsonValue } from './contract.js';
import { InvalidArgumentError } from './errors/index.js';

/**
 * Encodes a body as JSON, refusing anything that would not come back unchanged:
 * undefined, functions, symbols, BigInt, NaN/Infinity, cycles, sparse arrays, and objects that
 * are not plain (Date, Map, Set, class instances, Buffers). The error names the path at fault.
 */
export function encodeBody(driver: string, body: unknown, argument = 'body'): string {
  checkJson(driver, body, argument, new Set());
  return JSON.stringify(body);
}

function reject(driver: string, path: string, value: unknown, what: string): never {
  throw new InvalidArgumentError({
    driver,
    argument: path,
    value,
    message: `${what} does not survive JSON; bodies must be JSON values (null, boolean, finite number, string, array, plain object)`,
  });
}

function checkJson(driver: string, value: unknown, path: string, ancestors: Set<object>): void {
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
  ancestors.add(object);
  if (Array.isArray(object)) {
    for (let index = 0; index < object.length; index++) {
      if (!(index in object)) reject(driver, `${path}[${index}]`, undefined, 'a hole in a sparse array');
      checkJson(driver, object[index], `${path}[${index}]`, ancestors);
    }
  } else {
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      reject(driver, path, value, `an instance of ${object.constructor?.name ?? 'a class'}`);
    }
    if (Object.getOwnPropertySymbols(object).length > 0) reject(driver, path, value, 'a symbol key');
    for (const [key, entry] of Object.entries(object)) {
      checkJson(driver, entry, `${path}.${key}`, ancestors);
    }
  }
  ancestors.delete(object);
}

/** Parses a stored body back; the inverse of encodeBody. */
export function decodeBody(json: string): JsonValue {
  return JSON.parse(json) as JsonValue;
}
