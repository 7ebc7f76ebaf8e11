import { describeIdDiff, FreezingProxy, testS3 } from '@mq-drivers/conformance/services';
import { type Driver, PublishError } from '@mq-drivers/core';
import { afterEach, describe, expect, it } from 'vitest';
import { newDriver, s3Unavailable, segmentName, waitFor } from './helpers.js';

const unavailable = await s3Unavailable();

/** Short, so a test shows the difference between one timeout and a pool full of them. */
const REQUEST_TIMEOUT_MS = 1500;
const MAX_POLL_MS = 200;
/** Room for a loaded 2-core machine on top of what the driver promises. */
const SLACK_MS = 1000;

/** Waits until `ms` have passed, as a deadline (the length of an outage is the scenario). */
const outage = (ms: number): Promise<void> => {
  const end = Date.now() + ms;
  return waitFor(
    () => Date.now() >= end,
    ms + 1000,
    () => 'the end of the outage',
  );
};

describe.skipIf(unavailable !== undefined)(
  `s3 behind a network black hole${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    const drivers: Driver[] = [];
    const proxies: FreezingProxy[] = [];
    const open = (endpoint?: string): Driver => {
      const driver = newDriver({
        prefix: 'black-hole',
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        maxPollIntervalMs: MAX_POLL_MS,
        ...(endpoint ? { endpoint } : {}),
      });
      drivers.push(driver);
      return driver;
    };
    const proxy = async (): Promise<FreezingProxy> => {
      const started = await FreezingProxy.inFrontOf(testS3.endpoint);
      proxies.push(started);
      return started;
    };
    afterEach(async () => {
      // Frozen connections would make close() wait for their timeouts: cut them first.
      await Promise.all(proxies.splice(0).map((p) => p.stop()));
      await Promise.all(drivers.splice(0).map((driver) => driver.close()));
    });

    // Issue 9, item 3: the subscriber's keep-alive pool held sockets opened before the freeze; after
    // the endpoint healed, each request took one of them and waited the whole request timeout.
    it('a live subscriber delivers again within requestTimeoutMs + its backoff after the endpoint heals', async () => {
      const segment = segmentName('freeze-sub');
      const hole = await proxy();
      const producer = open();
      const subscriber = open(hole.url);
      // A backlog of log objects: catching up, the subscriber reads ahead in parallel, which leaves
      // several sockets in its keep-alive pool.
      const before: string[] = [];
      for (let i = 0; i < 20; i++) before.push((await producer.sharePublish({ i }, { segment, topic: 't' })).id);
      const got: string[] = [];
      await subscriber.shareConsume((message) => void got.push(message.id), { segment, topics: ['#'], from: 'earliest' });
      await waitFor(
        () => got.length >= before.length,
        15_000,
        () => describeIdDiff(before, got),
      );
      expect(
        hole.accepted,
        'the subscriber should hold several pooled connections for this test to mean anything',
      ).toBeGreaterThan(3);

      hole.freeze();
      await outage(REQUEST_TIMEOUT_MS + 500);
      hole.heal();
      const healed = Date.now();
      const { id } = await producer.sharePublish({ after: 'heal' }, { segment, topic: 't' });
      const bound = REQUEST_TIMEOUT_MS + MAX_POLL_MS + SLACK_MS;
      await waitFor(
        () => got.includes(id),
        bound + 20_000,
        () => `not delivered ${Date.now() - healed} ms after the heal: ${describeIdDiff([...before, id], got)}`,
      );
      const took = Date.now() - healed;
      expect(took, `delivered ${took} ms after the heal; at most ${bound} expected`).toBeLessThanOrEqual(bound);
    }, 60_000);

    // Issue 9, item 4: a publish queued behind a stuck write waited for it, then for its own write.
    it('a publish rejects within requestTimeoutMs of its call, also when it waits behind a stuck write', async () => {
      const segment = segmentName('freeze-pub');
      const hole = await proxy();
      const publisher = open(hole.url);
      await publisher.taskPublish('warm-up', { segment }); // bucket checked, a pooled connection
      hole.freeze();
      const timed = async (body: string): Promise<{ error: unknown; ms: number }> => {
        const called = Date.now();
        const error = await publisher.taskPublish(body, { segment }).then(
          () => undefined,
          (e: unknown) => e,
        );
        return { error, ms: Date.now() - called };
      };
      const first = timed('stuck');
      const halfway = Date.now() + REQUEST_TIMEOUT_MS / 2;
      await waitFor(
        () => Date.now() >= halfway,
        REQUEST_TIMEOUT_MS,
        () => 'half the request timeout',
      );
      const second = timed('queued behind it');
      const results = await Promise.all([first, second]);
      for (const [index, { error, ms }] of results.entries()) {
        expect(PublishError.isInstance(error), `publish #${index + 1}: ${String(error)}`).toBe(true);
        expect((error as Error).message.startsWith('s3: ')).toBe(true);
        expect(ms, `publish #${index + 1} rejected after ${ms} ms (${String(error)})`).toBeLessThanOrEqual(
          REQUEST_TIMEOUT_MS + 300,
        );
      }
      // After the heal, the publisher recovers within one request timeout too (its pool is not stuck).
      hole.heal();
      const healed = Date.now();
      await publisher.taskPublish('after heal', { segment });
      expect(Date.now() - healed).toBeLessThanOrEqual(REQUEST_TIMEOUT_MS + SLACK_MS);
    }, 60_000);
  },
);
