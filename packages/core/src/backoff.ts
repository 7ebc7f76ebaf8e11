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
