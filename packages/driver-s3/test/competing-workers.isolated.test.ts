import { describeIdDiff } from '@mq-drivers/conformance/services';
import type { Driver } from '@mq-drivers/core';
import { afterEach, describe, expect, it } from 'vitest';
import { newDriver, s3Unavailable, segmentName, waitFor } from './helpers.js';

const unavailable = await s3Unavailable();

const TASKS = 300;
const BURST = 50;

describe.skipIf(unavailable !== undefined)(`s3 competing workers${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const drivers: Driver[] = [];
  // The default poll and lease settings (the helpers' fast ones hid the bug: a worker counts its
  // peers every half lease, at most every 10 s, and one counted before its peers started).
  const open = (): Driver => {
    const driver = newDriver({ minPollIntervalMs: 50, maxPollIntervalMs: 1000, leaseMs: 30_000 });
    drivers.push(driver);
    return driver;
  };
  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((driver) => driver.close()));
  });

  // Issue 9: with batched log objects, the worker that lost a claim race backed off while the
  // winner claimed the next range at once: one worker of two handled ~263 of 300 tasks.
  for (const workers of [2, 3]) {
    it(`${workers} workers of one kind (prefetch 1, 5 ms handlers) each handle at least half an even share of ${TASKS} tasks published in bursts of ${BURST}`, async () => {
      const segment = segmentName(`competing-${workers}`);
      const handled: string[][] = Array.from({ length: workers }, () => []);
      for (const mine of handled) {
        await open().taskConsume(
          async (message) => {
            await new Promise((resolve) => setTimeout(resolve, 5));
            mine.push(message.id);
          },
          { segment, topic: 'work', prefetch: 1 },
        );
      }
      const producer = open();
      const ids: string[] = [];
      for (let sent = 0; sent < TASKS; sent += BURST) {
        const receipts = await Promise.all(
          Array.from({ length: BURST }, (_, i) => producer.taskPublish({ n: sent + i }, { segment })),
        );
        ids.push(...receipts.map((receipt) => receipt.id));
      }
      const all = (): string[] => handled.flat();
      await waitFor(
        () => all().length >= TASKS,
        90_000,
        () => `handled ${all().length} of ${TASKS}: ${describeIdDiff(ids, all())}`,
      );
      const shares = handled.map((mine) => mine.length);
      expect(all().sort(), describeIdDiff(ids, all())).toEqual([...ids].sort());
      const fair = Math.floor(TASKS / workers / 2);
      for (const [worker, count] of shares.entries()) {
        expect(
          count,
          `worker ${worker + 1} handled ${count} of ${TASKS} (shares: ${shares.join(', ')}); at least ${fair} expected`,
        ).toBeGreaterThanOrEqual(fair);
      }
    }, 120_000);
  }
});
