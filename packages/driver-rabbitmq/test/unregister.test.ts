import { randomBytes } from 'node:crypto';
import { describeIdDiff } from '@mq-drivers/conformance/services';
import { DriverClosedError, InvalidArgumentError, type Message, TopologyError } from '@mq-drivers/core';
import { delayBucket, kindDeadQueue, kindQueue, shareDeadQueue, shareQueue } from '@mq-drivers/rabbitmq';
import { describe, expect, it } from 'vitest';
import { brokerBench, brokerSkipReason, segment, until } from './helpers.js';

const skipReason = await brokerSkipReason();
/** {@link until} for a condition that must ask the broker. */
async function untilAsync(condition: () => Promise<boolean>, describe: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.skipIf(skipReason !== undefined)(
  `rabbitmq unregister on a real broker${skipReason ? ` [skipped: ${skipReason}]` : ''}`,
  () => {
    const { make, rawChannel } = brokerBench();

    /** Whether a queue exists, asked on a raw channel of its own (a 404 closes it). */
    async function queueExists(name: string): Promise<boolean> {
      const channel = await rawChannel();
      try {
        await channel.checkQueue(name);
        await channel.close();
        return true;
      } catch (error) {
        expect((error as { code?: unknown }).code).toBe(404);
        return false;
      }
    }

    /** Ready messages in a queue (0 when it does not exist). */
    async function depth(name: string): Promise<number> {
      const channel = await rawChannel();
      try {
        const { messageCount } = await channel.checkQueue(name);
        await channel.close();
        return messageCount;
      } catch {
        return 0;
      }
    }

    /** Collects messages; `ids()` for id diffs. */
    function collector() {
      const got: Message[] = [];
      return { got, handler: (m: Message) => void got.push(m), ids: () => got.map((m) => m.id) };
    }

    it('removes a kind: waiting tasks and dead letters go, other kinds keep everything, a later worker starts afresh', async () => {
      const seg = segment('unreg-kind');
      const driver = make();
      const other = collector();
      await driver.taskConsume(other.handler, { segment: seg, topic: 'other' });
      const failing = await driver.taskConsume(
        () => {
          throw new Error('boom');
        },
        { segment: seg, topic: 'k', maxAttempts: 1 },
      );
      const sent: string[] = [];
      for (let i = 0; i < 2; i++) sent.push((await driver.taskPublish({ dead: i }, { segment: seg })).id);
      const target = { segment: seg, kind: 'k' };
      let dead = 0;
      await untilAsync(
        async () => {
          dead = (await driver.listDeadLetters(target)).length;
          return dead === 2;
        },
        () => `${dead} of 2 dead letters`,
      );
      await failing.close();
      for (let i = 0; i < 3; i++) sent.push((await driver.taskPublish({ waiting: i }, { segment: seg })).id);

      expect(await driver.unregister!(target)).toEqual({ dropped: 3 });
      expect(await queueExists(kindQueue('mq', seg, 'k'))).toBe(false);
      expect(await queueExists(kindDeadQueue('mq', seg, 'k'))).toBe(false);
      expect(await driver.listDeadLetters(target)).toEqual([]);

      // Published while the kind is gone: reaches only `other`.
      for (let i = 0; i < 2; i++) sent.push((await driver.taskPublish({ gone: i }, { segment: seg })).id);
      const fresh = collector();
      await driver.taskConsume(fresh.handler, { segment: seg, topic: 'k' });
      const after: string[] = [];
      for (let i = 0; i < 3; i++) after.push((await driver.taskPublish({ after: i }, { segment: seg })).id);
      sent.push(...after);
      await until(
        () => other.got.length >= sent.length && fresh.got.length >= after.length,
        () => `other: ${describeIdDiff(sent, other.ids())}; fresh: ${describeIdDiff(after, fresh.ids())}`,
      );
      // One publisher, so everything earlier reached its queues before the last message: no extras.
      expect(other.ids().sort()).toEqual([...sent].sort());
      expect(fresh.ids().sort()).toEqual([...after].sort());
    });

    it('drops retries of removed messages that come back from the delay queues after the kind is registered again', async () => {
      const seg = segment('unreg-retry');
      // A prefix of its own: its delay queues hold only this test's retries.
      const prefix = `ut${randomBytes(4).toString('hex')}`;
      const backoff = { baseMs: 1_300, maxMs: 1_300 };
      const driver = make({ prefix, redeliveryBackoff: backoff });
      let failed = 0;
      const failing = await driver.taskConsume(
        () => {
          failed++;
          throw new Error('retry me');
        },
        { segment: seg, topic: 'k', maxAttempts: 5 },
      );
      const stale = (await driver.taskPublish({ stale: true }, { segment: seg })).id;
      await until(
        () => failed === 1,
        () => 'the first attempt did not fail yet',
      );
      await failing.close(); // waits until the retry is in a delay queue
      expect(await driver.unregister!({ segment: seg, kind: 'k' })).toEqual({ dropped: 0 });
      const fresh = collector();
      await driver.taskConsume(fresh.handler, { segment: seg, topic: 'k' });

      // Every delay bucket the retry may have gone to (backoff jitter: 650-1300 ms).
      const buckets = new Set<number>();
      for (let ms = 650; ms <= 1_300; ms++) buckets.add(delayBucket(ms));
      let waiting = 0;
      await untilAsync(
        async () => {
          waiting = 0;
          for (const bucket of buckets) waiting += await depth(`${prefix}._delay.${bucket}`);
          return waiting === 0;
        },
        () => `${waiting} retries still in the delay queues`,
      );
      const last = (await driver.taskPublish({ last: true }, { segment: seg })).id;
      await until(
        () => fresh.got.length >= 1,
        () => describeIdDiff([last], fresh.ids()),
      );
      expect(fresh.ids()).toEqual([last]);
      expect(fresh.ids()).not.toContain(stale);
    });

    it('refuses while a worker of the kind is open in this driver, and removes nothing', async () => {
      const seg = segment('unreg-local');
      const driver = make();
      const worker = collector();
      await driver.taskConsume(worker.handler, { segment: seg, topic: 'k' });
      const queue = kindQueue('mq', seg, 'k');
      const error = await driver.unregister!({ segment: seg, kind: 'k' }).catch((e: unknown) => e);
      expect(TopologyError.isInstance(error)).toBe(true);
      expect((error as TopologyError).resource).toBe(queue);
      expect((error as Error).message).toMatch(/consumer .*close it first/);
      expect(await queueExists(queue)).toBe(true);
      expect(await queueExists(kindDeadQueue('mq', seg, 'k'))).toBe(true);
      const id = (await driver.taskPublish({ still: 'here' }, { segment: seg })).id;
      await until(
        () => worker.got.length === 1,
        () => describeIdDiff([id], worker.ids()),
      );
    });

    for (const queueType of ['classic', 'quorum'] as const) {
      it(`refuses while a worker of the kind is open in another driver (${queueType} queues), and removes nothing`, async () => {
        const seg = segment(`unreg-remote-${queueType}`);
        const owner = make({ queueType });
        const worker = collector();
        await owner.taskConsume(worker.handler, { segment: seg, topic: 'k' });
        const other = make({ queueType });
        const error = await other.unregister!({ segment: seg, kind: 'k' }).catch((e: unknown) => e);
        expect(TopologyError.isInstance(error), String(error)).toBe(true);
        expect((error as TopologyError).resource).toBe(kindQueue('mq', seg, 'k'));
        expect((error as Error).message).toMatch(/consumer outside this driver/);
        expect(await queueExists(kindQueue('mq', seg, 'k'))).toBe(true);
        expect(await queueExists(kindDeadQueue('mq', seg, 'k'))).toBe(true);
        // Both drivers keep working: the refusal broke neither connection.
        const ids = [
          (await owner.taskPublish({ from: 'owner' }, { segment: seg })).id,
          (await other.taskPublish({ from: 'other' }, { segment: seg })).id,
        ];
        await until(
          () => worker.got.length === 2,
          () => describeIdDiff(ids, worker.ids()),
        );
      });
    }

    it('removes a named share subscription: reopened by name, it gets nothing published before', async () => {
      const seg = segment('unreg-share');
      const driver = make();
      const first = collector();
      const sub = await driver.shareConsume(first.handler, { segment: seg, topics: ['a.#'], name: 'audit' });
      const seen = (await driver.sharePublish({ n: 0 }, { segment: seg, topic: 'a.b' })).id;
      await until(
        () => first.got.length === 1,
        () => describeIdDiff([seen], first.ids()),
      );
      await sub.close();
      const old: string[] = [];
      for (let i = 0; i < 2; i++) old.push((await driver.sharePublish({ old: i }, { segment: seg, topic: 'a.b' })).id);
      const target = { segment: seg, subscription: 'audit' };
      expect(await driver.unregister!(target)).toEqual({ dropped: 2 });
      expect(await queueExists(shareQueue('mq', seg, 'audit'))).toBe(false);
      expect(await queueExists(shareDeadQueue('mq', seg, 'audit'))).toBe(false);
      // Published while it is gone: kept for no one.
      old.push((await driver.sharePublish({ gone: true }, { segment: seg, topic: 'a.b' })).id);
      const again = collector();
      await driver.shareConsume(again.handler, { segment: seg, topics: ['a.#'], name: 'audit' });
      const fresh = (await driver.sharePublish({ fresh: true }, { segment: seg, topic: 'a.c' })).id;
      await until(
        () => again.got.length >= 1,
        () => describeIdDiff([fresh], again.ids()),
      );
      expect(again.ids()).toEqual([fresh]);
    });

    it('resolves dropped 0 for what does not exist and leaves nothing behind', async () => {
      const seg = segment('unreg-none');
      const driver = make();
      expect(await driver.unregister!({ segment: seg, kind: 'never.seen' })).toEqual({ dropped: 0 });
      expect(await driver.unregister!({ segment: seg, subscription: 'nobody' })).toEqual({ dropped: 0 });
      for (const queue of [
        kindQueue('mq', seg, 'never.seen'),
        kindDeadQueue('mq', seg, 'never.seen'),
        shareQueue('mq', seg, 'nobody'),
        shareDeadQueue('mq', seg, 'nobody'),
      ]) {
        expect(await queueExists(queue), queue).toBe(false);
      }
    });

    it('rejects a bad target with InvalidArgumentError, and every call after close with DriverClosedError', async () => {
      const seg = segment('unreg-bad');
      const driver = make();
      for (const target of [
        { segment: 'no spaces', kind: 'k' },
        { segment: seg, kind: 'bad..kind' },
        { segment: seg, subscription: 'a.b' },
        { segment: seg },
        undefined,
      ]) {
        const error = await driver.unregister!(target as never).catch((e: unknown) => e);
        expect(InvalidArgumentError.isInstance(error), JSON.stringify(target)).toBe(true);
      }
      await driver.close();
      const error = await driver.unregister!({ segment: seg, kind: 'k' }).catch((e: unknown) => e);
      expect(DriverClosedError.isInstance(error)).toBe(true);
    });
  },
);
