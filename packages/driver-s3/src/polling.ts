// What the polling loops of task workers and share subscriptions use: an interruptible sleep, an
// adaptive poll interval, and writes that survive S3 hiccups.

/** A sleep that `wake()` cuts short (new capacity, close). */
export class Sleeper {
  private wakers: (() => void)[] = [];

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const wakers = this.wakers;
      function done(): void {
        clearTimeout(timer);
        const index = wakers.indexOf(done);
        if (index >= 0) wakers.splice(index, 1);
        resolve();
      }
      wakers.push(done);
    });
  }

  wake(): void {
    for (const wake of this.wakers.slice()) wake();
  }
}

/**
 * Adaptive poll interval: the minimum while there is traffic (data found, or a lost race, within the
 * last second), then doubling up to the maximum while idle.
 */
export class PollInterval {
  private current: number;
  private lastActivity = 0;
  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {
    this.current = min;
  }
  found(): void {
    this.current = this.min;
    this.lastActivity = Date.now();
  }
  /** The interval to wait now; the next idle wait is longer once traffic stopped. */
  idle(): number {
    if (Date.now() - this.lastActivity < 1000) return this.min;
    const wait = this.current;
    this.current = Math.min(this.max, this.current * 2);
    return wait;
  }
}

/** Runs `fn` until it succeeds or `shouldStop()`; waits with growing pauses between attempts. */
export async function persist(fn: () => Promise<void>, shouldStop: () => boolean, maxPauseMs = 2000): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fn();
      return true;
    } catch {
      if (shouldStop()) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(maxPauseMs, 50 * 2 ** attempt)));
    }
  }
}

/** Background writes a subscription must finish (or give up) before its close resolves. */
export class Tracker {
  private readonly pending = new Set<Promise<unknown>>();

  track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    const forget = (): void => {
      this.pending.delete(promise);
    };
    promise.then(forget, forget);
    return promise;
  }

  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}
