import { InvalidArgumentError } from './errors/index.js';
import { describeValue, validateNonNegativeNumber } from './names.js';
import { rejectUnknownKeys } from './options.js';

export interface BackoffOptions {
  /** Delay before the first redelivery, in ms. */
  baseMs: number;
  /** Upper bound for any delay, in ms. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1_000, maxMs: 60_000 };

/**
 * Exponential backoff with full jitter in the upper half: delay for the redelivery that follows
 * failed attempt `attempt` (1-based) lies in [d/2, d] with d = min(maxMs, baseMs * 2^(attempt-1)).
 * The half floor keeps retries from hammering; the jitter keeps crowds of retries apart.
 */
export function backoffDelay(attempt: number, { baseMs, maxMs }: BackoffOptions, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * Checks a `{baseMs, maxMs}` option (for drivers' own options): an object with exactly those keys
 * (others are rejected, naming them as `${argument}.${key}`), each a finite number >= 0.
 */
export function validateBackoffOptions(driver: string, value: unknown, argument: string): BackoffOptions {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError({ driver, argument, value, message: `${describeValue(value)} must be {baseMs, maxMs}` });
  }
  rejectUnknownKeys(driver, value, ['baseMs', 'maxMs'], `${argument}.`);
  const raw = value as Record<string, unknown>;
  return {
    baseMs: validateNonNegativeNumber(driver, raw.baseMs, `${argument}.baseMs`),
    maxMs: validateNonNegativeNumber(driver, raw.maxMs, `${argument}.maxMs`),
  };
}
