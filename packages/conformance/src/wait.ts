import { ConformanceError, fail } from './assert.js';

export interface WaitForOptions {
  /** Deadline in ms. */
  timeoutMs: number;
  /** What is awaited, for the error: "all 30 tasks at worker A". */
  description: string;
  /** Extra detail for the error, computed at the deadline (e.g. which ids are missing). */
  details?: () => string;
  /** Poll interval in ms. Default 5. */
  intervalMs?: number;
}

const tick = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `predicate` until it returns true or the deadline passes. Never a bare sleep: it returns
 * as soon as the condition holds, and fails with the description (and details) at the deadline.
 * A predicate that throws fails at once.
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, options: WaitForOptions): Promise<void> {
  const started = Date.now();
  const interval = options.intervalMs ?? 5;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() - started >= options.timeoutMs) {
      const details = options.details ? `; ${options.details()}` : '';
      fail(`timed out after ${options.timeoutMs} ms waiting for ${options.description}${details}`);
    }
    await tick(interval);
  }
}

/**
 * Resolves with the promise's value, or fails once `timeoutMs` passed (the promise keeps running).
 */
export async function withDeadline<T>(promise: Promise<T>, timeoutMs: number, description: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ConformanceError(`timed out after ${timeoutMs} ms waiting for ${description}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * THE one deliberate wait of the suite: a watch window. After the expected deliveries arrived,
 * it watches for `quietMs` for things that must NOT happen (a duplicate, a late redelivery, a
 * leak across segments), calling `check` every few ms and failing at the first violation.
 * It is not a sleep that waits for something to happen: when it ends without a violation the
 * case continues, and every case that uses it also proves liveness with a positive delivery.
 */
export async function watchQuiet(quietMs: number, check: () => void, description: string): Promise<void> {
  const started = Date.now();
  for (;;) {
    try {
      check();
    } catch (error) {
      if (error instanceof ConformanceError) {
        fail(`during the ${quietMs} ms watch window (${description}), after ${Date.now() - started} ms: ${error.message}`);
      }
      throw error;
    }
    if (Date.now() - started >= quietMs) return;
    await tick(Math.min(10, quietMs));
  }
}

/** Resolves once the wall clock has moved past `date` (used to separate "before" and "after" a timestamp). */
export async function clockPast(date: Date, timeoutMs: number): Promise<void> {
  await waitFor(() => Date.now() > date.getTime() + 1, { timeoutMs, description: 'the clock to advance', intervalMs: 1 });
}
