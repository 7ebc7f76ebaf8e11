import {
  type CloseOptions,
  DEFAULT_CLOSE_TIMEOUT_MS,
  type Handler,
  InvalidArgumentError,
  validateNonNegativeNumber,
} from '@mq-drivers/core';
import { type StoredMessage, toMessage } from './layout.js';
import { DRIVER_NAME } from './options.js';

/** Validates `close({timeoutMs})` before anything is closed. */
export function closeTimeout(options: CloseOptions | undefined): number {
  if (options === undefined) return DEFAULT_CLOSE_TIMEOUT_MS;
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError({ driver: DRIVER_NAME, argument: 'options', value: options, message: 'must be an object' });
  }
  if (options.timeoutMs === undefined) return DEFAULT_CLOSE_TIMEOUT_MS;
  return validateNonNegativeNumber(DRIVER_NAME, options.timeoutMs, 'timeoutMs');
}

/** One message handed to a handler; the owner decides what its outcome means. */
export interface Delivery {
  stored: StoredMessage;
  state: 'queued' | 'running' | 'settled' | 'returned';
  /** Called once with the handler's outcome, unless the delivery was handed back first. */
  settle(ok: boolean, error: unknown): void;
}

/** Runs handlers, at most `prefetch` at once, in arrival order. */
export class Runner {
  private readonly queue: Delivery[] = [];
  private readonly running = new Set<Delivery>();
  private readonly idleWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly handler: Handler,
    private readonly prefetch: number,
    private readonly onSettled: () => void,
  ) {}

  /** Queued plus running deliveries. */
  get load(): number {
    return this.queue.length + this.running.size;
  }

  push(delivery: Delivery): void {
    if (this.stopped) {
      delivery.state = 'returned';
      return;
    }
    this.queue.push(delivery);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.prefetch && this.queue.length > 0) {
      const delivery = this.queue.shift()!;
      if (delivery.state !== 'queued') continue;
      delivery.state = 'running';
      this.running.add(delivery);
      void this.run(delivery);
    }
  }

  private async run(delivery: Delivery): Promise<void> {
    let ok = true;
    let failure: unknown;
    try {
      await this.handler(toMessage(delivery.stored));
    } catch (error) {
      ok = false;
      failure = error;
    }
    this.running.delete(delivery);
    if (delivery.state === 'running') {
      delivery.state = 'settled';
      try {
        delivery.settle(ok, failure);
      } catch {
        // The owner's bookkeeping never throws by design; a bug here must not stop the runner.
      }
    }
    if (this.running.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    this.pump();
    this.onSettled();
  }

  /**
   * Stops starting handlers, waits for running ones up to `timeoutMs`, then marks every unsettled
   * delivery (never started, or still running) as returned and hands them back.
   */
  async stop(timeoutMs: number): Promise<Delivery[]> {
    this.stopped = true;
    const returned = this.queue.splice(0).filter((d) => d.state === 'queued');
    for (const d of returned) d.state = 'returned';
    if (this.running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    for (const d of this.running) {
      d.state = 'returned';
      returned.push(d);
    }
    this.running.clear();
    return returned;
  }
}

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
