import { randomBytes } from 'node:crypto';
import type { Capabilities, Driver, Handler, JsonValue, Message, Subscription } from '@mq-drivers/core';
import { assertExactlyOnce, ConformanceError, check, fail, list, show } from './assert.js';
import type { ResolvedOptions } from './options.js';
import { waitFor, watchQuiet, withDeadline } from './wait.js';

/** A fresh segment name: `conf-` and 10 random hex characters. */
export function uniqueSegment(): string {
  return `conf-${randomBytes(5).toString('hex')}`;
}

/** One handler call as the suite saw it. Every call is kept: nothing is deduplicated. */
export interface RecordedDelivery {
  /** Which consumer (worker, subscriber) got it. */
  consumer: string;
  message: Message;
  /** `Date.now()` when the handler was called. */
  at: number;
}

/**
 * Records every handler call of a case. `handler(name, behaviour)` makes a handler that records
 * the call, then runs `behaviour` (whose result or error is the handler's).
 */
export class Recorder {
  readonly deliveries: RecordedDelivery[] = [];

  handler(consumer: string, behaviour?: (message: Message, delivery: RecordedDelivery) => unknown): Handler {
    return (message: Message) => {
      const delivery = { consumer, message, at: Date.now() };
      this.deliveries.push(delivery);
      return behaviour?.(message, delivery);
    };
  }

  /** Delivered ids in delivery order, duplicates kept; for one consumer, several, or all. */
  ids(consumer?: string | readonly string[]): string[] {
    return this.of(consumer).map((delivery) => delivery.message.id);
  }

  of(consumer?: string | readonly string[]): RecordedDelivery[] {
    if (consumer === undefined) return [...this.deliveries];
    const wanted = typeof consumer === 'string' ? [consumer] : consumer;
    return this.deliveries.filter((delivery) => wanted.includes(delivery.consumer));
  }

  /** Waits until every id was delivered at least once to the consumer(s); names the missing ones at the deadline. */
  async waitForIds(
    expectedIds: readonly string[],
    { consumer, timeoutMs, description }: { consumer?: string | readonly string[]; timeoutMs: number; description: string },
  ): Promise<void> {
    const missing = () => {
      const seen = new Set(this.ids(consumer));
      return expectedIds.filter((id) => !seen.has(id));
    };
    await waitFor(() => missing().length === 0, {
      timeoutMs,
      description,
      details: () => {
        const absent = missing();
        const others = this.ids(consumer).filter((id) => !expectedIds.includes(id));
        return `missing ${absent.length} of ${expectedIds.length}: ${list(absent)}${others.length > 0 ? `; unexpected: ${list(others)}` : ''}`;
      },
    });
  }

  /** Waits until at least `count` deliveries reached the consumer(s). */
  async waitForCount(
    count: number,
    { consumer, timeoutMs, description }: { consumer?: string | readonly string[]; timeoutMs: number; description: string },
  ): Promise<void> {
    await waitFor(() => this.of(consumer).length >= count, {
      timeoutMs,
      description,
      details: () => `received ${this.of(consumer).length}: ${list(this.ids(consumer))}`,
    });
  }
}

/** Counts handlers running at once. */
export class ConcurrencyMeter {
  running = 0;
  max = 0;
  async around<T>(work: () => Promise<T>): Promise<T> {
    this.running++;
    this.max = Math.max(this.max, this.running);
    try {
      return await work();
    } finally {
      this.running--;
    }
  }
}

/** A promise a handler can hang on until the case opens it (cleanup always opens it). */
export interface Gate {
  readonly promise: Promise<void>;
  readonly opened: boolean;
  /** Resolves the promise. */
  open(): void;
  /** Rejects the promise with `error`. */
  fail(error: Error): void;
}

function createGate(): Gate {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  const gate = {
    promise,
    opened: false,
    open() {
      gate.opened = true;
      resolve();
    },
    fail(error: Error) {
      gate.opened = true;
      reject(error);
    },
  };
  return gate;
}

/** A handler delay: lets the broker spread work, it is not a wait of the test. */
export const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * What a case gets: fresh drivers (all closed at the end, even on failure), a unique segment,
 * gates, a recorder and the harness settings.
 */
export class CaseContext {
  readonly segment = uniqueSegment();
  readonly recorder = new Recorder();
  private readonly drivers: Driver[] = [];
  private readonly subscriptions: Subscription[] = [];
  private readonly gates: Gate[] = [];
  private readonly deferred: (() => unknown)[] = [];

  constructor(
    readonly options: ResolvedOptions,
    readonly capabilities: Capabilities,
  ) {}

  get timeoutMs(): number {
    return this.options.timeoutMs;
  }

  get quietMs(): number {
    return this.options.quietMs;
  }

  get messageCount(): number {
    return this.options.messageCount;
  }

  /** Another unique segment (for isolation cases). */
  newSegment(): string {
    return uniqueSegment();
  }

  /** A fresh driver from the harness' `createDriver`; closed at the end of the case. */
  async driver(): Promise<Driver> {
    const driver = await withDeadline(
      Promise.resolve().then(() => this.options.createDriver()),
      this.timeoutMs,
      'createDriver() to return a driver',
    );
    check(driver !== null && typeof driver === 'object', `createDriver() returned ${show(driver)} instead of a driver`);
    if (this.drivers.includes(driver)) {
      fail('createDriver() returned the same driver object twice; it must return a fresh driver on every call');
    }
    this.drivers.push(driver);
    return driver;
  }

  /** Keeps a subscription to close at the end (drivers are closed too; this is belt and braces). */
  track<S>(subscription: S): S {
    const candidate = subscription as unknown as Subscription | null;
    if (candidate !== null && typeof candidate === 'object' && typeof candidate.close === 'function') {
      this.subscriptions.push(candidate);
    }
    return subscription;
  }

  /** A gate a handler can hang on; opened at the latest when the case ends. */
  gate(): Gate {
    const gate = createGate();
    this.gates.push(gate);
    return gate;
  }

  /** Runs `fn` at cleanup, before subscriptions and drivers are closed. */
  defer(fn: () => unknown): void {
    this.deferred.push(fn);
  }

  async taskConsume(driver: Driver, handler: Handler, options: Parameters<Driver['taskConsume']>[1]): Promise<Subscription> {
    return this.track(await withDeadline(driver.taskConsume(handler, options), this.timeoutMs, `taskConsume(${show(options)})`));
  }

  async shareConsume(driver: Driver, handler: Handler, options: Parameters<Driver['shareConsume']>[1]): Promise<Subscription> {
    return this.track(
      await withDeadline(driver.shareConsume(handler, options), this.timeoutMs, `shareConsume(${show(options)})`),
    );
  }

  /** Publishes tasks one after another (each awaited); returns the receipt ids in publish order. */
  async publishTasks(
    driver: Driver,
    count: number,
    { segment = this.segment, body = (index: number) => ({ n: index }) as JsonValue } = {},
  ): Promise<string[]> {
    const ids: string[] = [];
    for (let index = 0; index < count; index++) {
      const receipt = await withDeadline(driver.taskPublish(body(index), { segment }), this.timeoutMs, `taskPublish #${index}`);
      ids.push(receiptId(receipt));
    }
    return ids;
  }

  /** Publishes shares one after another (each awaited); returns the receipt ids in publish order. */
  async publishShares(
    driver: Driver,
    topic: string,
    count: number,
    { segment = this.segment, body = (index: number) => ({ n: index }) as JsonValue } = {},
  ): Promise<string[]> {
    const ids: string[] = [];
    for (let index = 0; index < count; index++) {
      const receipt = await withDeadline(
        driver.sharePublish(body(index), { segment, topic }),
        this.timeoutMs,
        `sharePublish #${index} on ${topic}`,
      );
      ids.push(receiptId(receipt));
    }
    return ids;
  }

  /** Waits for the ids, watches the quiet window for extras, then checks exactly-once (no dedup). */
  async expectExactlyOnce(
    expectedIds: readonly string[],
    { consumer, label }: { consumer?: string | readonly string[]; label: string },
  ): Promise<void> {
    await this.recorder.waitForIds(expectedIds, { consumer, timeoutMs: this.timeoutMs, description: label });
    await watchQuiet(this.quietMs, () => assertExactlyOnce(expectedIds, this.recorder.ids(consumer), label), label);
  }

  /** Watches the quiet window: the consumer(s) must receive nothing (more than `alreadyExpected`). */
  async expectNothing(consumer: string | readonly string[], label: string, allowedIds: readonly string[] = []): Promise<void> {
    await watchQuiet(
      this.quietMs,
      () => {
        const extra = this.recorder.ids(consumer);
        assertExactlyOnce(allowedIds, extra, label);
      },
      label,
    );
  }

  /** Closes everything the case opened. Errors of a broken close are reported (when the case itself passed). */
  async cleanup(): Promise<string[]> {
    const problems: string[] = [];
    for (const gate of this.gates) if (!gate.opened) gate.open();
    for (const fn of this.deferred) {
      try {
        await fn();
      } catch (error) {
        problems.push(`cleanup step failed: ${show(error)}`);
      }
    }
    await Promise.all(
      this.subscriptions.map(async (subscription) => {
        try {
          await withDeadline(Promise.resolve(subscription.close({ timeoutMs: 100 })), this.timeoutMs, 'subscription.close()');
        } catch (error) {
          if (!isClosedError(error)) problems.push(`subscription.close() at cleanup failed: ${show(error)}`);
        }
      }),
    );
    await Promise.all(
      this.drivers.map(async (driver) => {
        try {
          await withDeadline(Promise.resolve(driver.close()), this.timeoutMs, 'driver.close()');
        } catch (error) {
          problems.push(`driver.close() at cleanup failed: ${error instanceof ConformanceError ? error.message : show(error)}`);
        }
      }),
    );
    return problems;
  }
}

function isClosedError(error: unknown): boolean {
  return error !== null && typeof error === 'object' && (error as { name?: unknown }).name === 'DriverClosedError';
}

function receiptId(receipt: unknown): string {
  const id = (receipt as { id?: unknown } | null | undefined)?.id;
  check(typeof id === 'string' && id.length > 0, `publish resolved to ${show(receipt)}; expected a receipt {id: string}`);
  return id;
}
