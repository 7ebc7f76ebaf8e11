/**
 * Option helpers every package uses to read its options object: unknown keys refused (with the
 * known ones, and a "did you mean" for a near miss), numbers, booleans, durations and backoffs
 * checked, and no secret in any error — a URL's password and the value of a secret-looking key
 * are hidden in messages and in the error's `value`.
 */
import { type BackoffOptions, validateBackoffOptions } from './backoff.js';
import { InvalidArgumentError } from './errors/index.js';
import { describeValue } from './names.js';
import { redactUrl } from './redact.js';

/** What an error shows instead of a secret. */
export const REDACTED = '***';

/** Option and query names whose values are never shown (an unknown key might still hold a secret). */
export function isSecretName(name: string): boolean {
  // `key` and `pfx` are TLS private keys (amqplib socket options); `pass` also covers `passphrase`.
  return /secret|pass|token|credential|signature|auth|pfx|^key$|privatekey/i.test(name);
}

/** A value as an error may carry it: URLs with their password hidden, secret-looking fields of plain objects masked. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactUrl(value);
  if (depth > 4) return value;
  if (Array.isArray(value)) return value.map((entry) => redactValue(entry, depth + 1));
  if (value !== null && typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    const copy: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(value)) copy[key] = isSecretName(key) ? REDACTED : redactValue(entry, depth + 1);
    return copy;
  }
  return value;
}

/** The known name `key` was probably meant to be: same letters in another case, or one or two edits away. */
export function nearestName(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const sameCase = known.find((name) => name.toLowerCase() === lower);
  if (sameCase) return sameCase;
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of known) {
    const distance = editDistance(lower, name.toLowerCase());
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * Rejects a key of an options object that is not one of `known` (a typo must not pass silently),
 * with InvalidArgumentError naming it as `${prefix}${key}`, the known keys, and the near miss if
 * any. Keys whose value is undefined pass: they ask for nothing. The value of a secret-looking key
 * is not carried by the error.
 */
export function rejectUnknownKeys(driver: string, value: object, known: readonly string[], prefix = ''): void {
  for (const key of Object.keys(value)) {
    const entry = (value as Record<string, unknown>)[key];
    if (known.includes(key) || entry === undefined) continue;
    const like = nearestName(key, known);
    throw new InvalidArgumentError({
      driver,
      argument: `${prefix}${key}`,
      value: isSecretName(key) ? REDACTED : redactValue(entry),
      message: `${describeValue(key)} is not a known option (known: ${known.join(', ')})${like ? `; did you mean ${like}?` : ''}`,
    });
  }
}

/** Reads a driver's options object: an object, holding only `known` keys (named `options.<key>` when not). */
export function readOptions(driver: string, options: unknown, known: readonly string[]): Record<string, unknown> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError({
      driver,
      argument: 'options',
      value: redactValue(options),
      message: `${describeValue(redactValue(options))} must be an object`,
    });
  }
  rejectUnknownKeys(driver, options, known, 'options.');
  return options as Record<string, unknown>;
}

function bad(driver: string, key: string, value: unknown, message: string): never {
  const shown = redactValue(value);
  throw new InvalidArgumentError({
    driver,
    argument: `options.${key}`,
    value: shown,
    message: `${describeValue(shown)} ${message}`,
  });
}

/** Reads `options[key]`: a number from `min` to `max`, or `fallback` when absent. */
export type NumberOptionReader = (
  driver: string,
  raw: Record<string, unknown>,
  key: string,
  fallback: number,
  min: number,
  max: number,
) => number;

/** `options[key]`: a whole number from `min` to `max`, or `fallback` when absent. */
export const integerOption: NumberOptionReader = (...args) => rangeOption(true, ...args);

/** `options[key]`: a finite number from `min` to `max` (a duration in ms, say), or `fallback` when absent. */
export const numberOption: NumberOptionReader = (...args) => rangeOption(false, ...args);

function rangeOption(whole: boolean, ...[driver, raw, key, fallback, min, max]: Parameters<NumberOptionReader>): number {
  const value = raw[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(whole ? Number.isInteger(value) : Number.isFinite(value)) || value < min || value > max) {
    bad(driver, key, value, `must be a ${whole ? 'whole number' : 'number'} from ${min} to ${max}`);
  }
  return value;
}

/** `options[key]`: a boolean, or `fallback` when absent. */
export function booleanOption(driver: string, raw: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = raw[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') bad(driver, key, value, 'must be a boolean');
  return value;
}

/** `options[key]`: a backoff `{baseMs, maxMs}` (see `validateBackoffOptions`), or `fallback` when absent. */
export function backoffOption(
  driver: string,
  raw: Record<string, unknown>,
  key: string,
  fallback: BackoffOptions,
): BackoffOptions {
  const value = raw[key];
  if (value === undefined) return fallback;
  const checked = validateBackoffOptions(driver, value, `options.${key}`);
  return { baseMs: checked.baseMs, maxMs: checked.maxMs };
}
