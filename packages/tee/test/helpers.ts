import { randomUUID } from 'node:crypto';
import { describeIdDiff } from '@mq-drivers/conformance/services';
import { ConnectionError, type Driver, type Message } from '@mq-drivers/core';

/** A unique segment per test. */
export const segment = (prefix = 'tee') => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Polls until `check()` is true; fails naming `what` after the deadline. */
export async function until(check: () => boolean, what: string | (() => string), timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Asserts that `actual` holds exactly the ids of `expected` (any order, no duplicates). */
export function expectSameIds(label: string, expected: readonly string[], actual: readonly string[]): void {
  const ok =
    actual.length === expected.length && new Set(actual).size === actual.length && expected.every((id) => actual.includes(id));
  if (!ok) throw new Error(`${label}: ${describeIdDiff(expected, actual)}`);
}

/**
 * Reads every share message of a segment from a driver with `replay` (from `earliest`) until
 * `count` arrived and nothing more comes for `quietMs`, or the deadline passes.
 */
export async function replayIds(
  driver: Driver,
  seg: string,
  count: number,
  { timeoutMs = 10_000, quietMs = 300 }: { timeoutMs?: number; quietMs?: number } = {},
): Promise<string[]> {
  const seen: Message[] = [];
  const subscription = await driver.shareConsume(
    (message) => {
      seen.push(message);
    },
    { segment: seg, topics: ['#'], from: 'earliest', prefetch: 100 },
  );
  try {
    await until(
      () => seen.length >= count,
      () => `${count} replayed messages on ${driver.name} (got ${seen.length})`,
      timeoutMs,
    );
    // Watch a little longer so duplicates and extras show up in the caller's assertion.
    await new Promise((resolve) => setTimeout(resolve, quietMs));
  } finally {
    await subscription.close();
  }
  return seen.map((message) => message.id);
}

export interface FlakyControl {
  /** While true, publishes reject (or throw synchronously when `throwSync`). */
  failing: boolean;
  /** Throw synchronously from publish instead of returning a rejected promise. */
  throwSync: boolean;
  /** Publish calls seen (failed or not). */
  calls: number;
  /** Publish calls that went through to the wrapped driver. */
  passed: number;
}

/**
 * A driver wrapper whose publishes fail while `control.failing` is true (a broker that is down),
 * delegating everything else. Not a mock: the wrapped driver is a real one.
 */
export function flaky(driver: Driver, name = driver.name): Driver & { control: FlakyControl } {
  const control: FlakyControl = { failing: false, throwSync: false, calls: 0, passed: 0 };
  const fail = () => new ConnectionError({ driver: name, host: 'flaky-test-broker', message: 'broker is down (test)' });
  const guard = <T>(publish: () => Promise<T>): Promise<T> => {
    control.calls++;
    if (control.failing) {
      if (control.throwSync) throw fail();
      return Promise.reject(fail());
    }
    control.passed++;
    return publish();
  };
  return {
    control,
    specificationVersion: driver.specificationVersion,
    name,
    capabilities: driver.capabilities,
    taskPublish: (body, options) => guard(() => driver.taskPublish(body, options)),
    sharePublish: (body, options) => guard(() => driver.sharePublish(body, options)),
    taskConsume: (handler, options) => driver.taskConsume(handler, options),
    shareConsume: (handler, options) => driver.shareConsume(handler, options),
    listDeadLetters: (target) => driver.listDeadLetters(target),
    redriveDeadLetters: (target, options) => driver.redriveDeadLetters(target, options),
    close: () => driver.close(),
  };
}
