import { closedPort, type TcpProxy } from '@mq-drivers/conformance/services';
import type { Message } from '@mq-drivers/core';
import { type MirrorErrorEvent, type TeeDriver, TeePublishError, tee } from '@mq-drivers/tee';
import { afterEach, describe, expect, it } from 'vitest';
import { expectSameIds, replayIds, segment, until } from './helpers.js';
import { rabbit, s3, s3Proxy, servicesSkipReason } from './services.js';

// tee(rabbitmq, s3) against the real services: RabbitMQ for live consumption, S3 for history.
// The S3 mirror is made unreachable through a local TCP proxy (refused or black-holed), and an
// S3 driver pointed at a closed port stands for an S3 that never comes back.
const skipReason = await servicesSkipReason();

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.allSettled(cleanup.splice(0).map((step) => step()));
});

function own<T extends { close(): Promise<unknown> }>(driver: T): T {
  cleanup.push(() => driver.close());
  return driver;
}

async function proxy(): Promise<TcpProxy> {
  const started = await s3Proxy();
  cleanup.push(() => started.stop());
  return started;
}

/** A live share consumer on the tee (it reads from RabbitMQ) collecting every delivery. */
async function live(mq: TeeDriver, seg: string) {
  const seen: Message[] = [];
  await mq.shareConsume(
    (message) => {
      seen.push(message);
    },
    { segment: seg, topics: ['Order.#'], prefetch: 50 },
  );
  return seen;
}

const ids = (messages: readonly Message[]) => messages.map((message) => message.id);
const QUIET_MS = 500;

describe.skipIf(skipReason !== undefined)(
  `tee(rabbitmq, s3) on the real services${skipReason ? ` [skipped: ${skipReason}]` : ''}`,
  () => {
    it('publishes once to both; replay from S3 returns exactly the ids the RabbitMQ consumer saw', async () => {
      const mq = own(tee({ rabbitmq: rabbit(), s3: s3() }));
      expect(mq.name).toBe('tee(rabbitmq,s3)');
      expect(mq.capabilities.maxMessageBytes).toBe(Math.min(mq.target(0).capabilities.maxMessageBytes, 1024 * 1024));
      const seg = segment('tee-real');
      const seen = await live(mq, seg);
      const published: string[] = [];
      for (let round = 0; round < 3; round++) {
        const batch = await Promise.all(
          Array.from({ length: 10 }, (_, n) => mq.sharePublish({ round, n }, { segment: seg, topic: `Order.Created.r${round}` })),
        );
        published.push(...batch.map((receipt) => receipt.id));
      }
      await until(
        () => seen.length >= published.length,
        () => `RabbitMQ deliveries (${seen.length}/${published.length})`,
        20_000,
      );
      await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
      expectSameIds('RabbitMQ live consumer', published, ids(seen));
      const replayed = await replayIds(mq.target('s3'), seg, published.length, { timeoutMs: 20_000 });
      expectSameIds('S3 replay vs RabbitMQ consumer', ids(seen), replayed);

      // Tasks: a kind registered on both targets receives every task with the same id on each.
      const taskSeg = segment('tee-real-task');
      const fromRabbit: Message[] = [];
      const fromS3: Message[] = [];
      own(await mq.taskConsume((m) => void fromRabbit.push(m), { topic: 'Invoice', segment: taskSeg }));
      own(await mq.target('s3').taskConsume((m) => void fromS3.push(m), { topic: 'Invoice', segment: taskSeg }));
      const tasks = await Promise.all(Array.from({ length: 8 }, (_, n) => mq.taskPublish({ n }, { segment: taskSeg })));
      await until(
        () => fromRabbit.length >= 8 && fromS3.length >= 8,
        () => `tasks (${fromRabbit.length}, ${fromS3.length})`,
        20_000,
      );
      await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
      expectSameIds(
        'RabbitMQ tasks',
        tasks.map((t) => t.id),
        ids(fromRabbit),
      );
      expectSameIds('S3 tasks vs RabbitMQ tasks', ids(fromRabbit), ids(fromS3));
    });

    it("mode 'all': S3 refused → TeePublishError naming s3; retries with the same ids complete both targets", async () => {
      const gate = await proxy();
      const mq = own(tee({ rabbitmq: rabbit(), s3: s3({ endpoint: gate.url, requestTimeoutMs: 3_000 }) }));
      const seg = segment('tee-all-down');
      const seen = await live(mq, seg);
      const ok: string[] = [];
      for (let n = 0; n < 5; n++) ok.push((await mq.sharePublish({ n }, { segment: seg, topic: 'Order.Created' })).id);

      await gate.refuse();
      const failed: string[] = [];
      for (let n = 5; n < 10; n++) {
        const id = `all-down-${seg}-${n}`;
        const error = await mq.sharePublish({ n }, { segment: seg, topic: 'Order.Created', id }).catch((e: unknown) => e);
        expect(TeePublishError.isInstance(error), String(error)).toBe(true);
        const failure = error as TeePublishError;
        expect(failure).toMatchObject({ reason: 'targets-failed', messageId: id, succeeded: ['rabbitmq'] });
        expect(failure.failures.map((f) => f.target)).toEqual(['s3']);
        expect(failure.message).toMatch(new RegExp(`^tee\\(rabbitmq,s3\\): message ${id} was not accepted by s3 \\(`));
        failed.push(id);
      }

      await gate.forward();
      for (const [index, id] of failed.entries()) {
        await mq.sharePublish({ n: index + 5 }, { segment: seg, topic: 'Order.Created', id });
      }
      const all = [...ok, ...failed];
      // RabbitMQ accepted the failed ones twice (first try and retry): detectable by id.
      const expectedLive = [...ok, ...failed, ...failed];
      await until(
        () => seen.length >= expectedLive.length,
        () => `RabbitMQ deliveries (${seen.length}/${expectedLive.length})`,
        20_000,
      );
      await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
      expect([...ids(seen)].sort()).toEqual([...expectedLive].sort());
      const replayed = await replayIds(mq.target('s3'), seg, all.length, { timeoutMs: 20_000 });
      expectSameIds('S3 after recovery', all, replayed);
      expectSameIds('S3 replay vs distinct RabbitMQ ids', [...new Set(ids(seen))], replayed);
    });

    it("mode 'primary': S3 black-holed → publishes resolve on RabbitMQ; the outbox catches up after recovery", async () => {
      const gate = await proxy();
      const events: MirrorErrorEvent[] = [];
      const mq = own(
        tee(
          { rabbitmq: rabbit(), s3: s3({ endpoint: gate.url, requestTimeoutMs: 1_500 }) },
          { mode: 'primary', retryBackoff: { baseMs: 50, maxMs: 300 }, onMirrorError: (event) => events.push(event) },
        ),
      );
      const seg = segment('tee-primary-down');
      const seen = await live(mq, seg);
      const published: string[] = [(await mq.sharePublish({ n: 0 }, { segment: seg, topic: 'Order.Created' })).id];
      expect((await mq.flush({ timeoutMs: 10_000 })).caughtUp).toBe(true);

      await gate.hang();
      for (let n = 1; n <= 20; n++) published.push((await mq.sharePublish({ n }, { segment: seg, topic: 'Order.Created' })).id);
      // All 20 resolved while S3 answers nothing: they wait for S3 in the background.
      expect(mq.stats().targets[1]).toMatchObject({ name: 's3', unconfirmed: 20 });
      await until(() => events.length > 0 && mq.outboxDepth() > 0, 'S3 timeouts reported through onMirrorError', 20_000);
      expect(events[0]).toMatchObject({ target: 's3', attempts: 1 });
      expect(published).toContain(events[0]?.messageId);
      await gate.refuse();
      await until(() => events.length >= 3, 'retries failing against a refused port', 20_000);
      expect((await mq.flush({ timeoutMs: 100 })).caughtUp).toBe(false);

      await gate.forward();
      const flushed = await mq.flush({ timeoutMs: 30_000 });
      expect(flushed).toEqual({ caughtUp: true, unconfirmed: 0, outboxDepth: 0 });
      await until(
        () => seen.length >= published.length,
        () => `RabbitMQ deliveries (${seen.length}/${published.length})`,
        20_000,
      );
      await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
      expectSameIds('RabbitMQ live consumer', published, ids(seen));
      const replayed = await replayIds(mq.target('s3'), seg, published.length, { timeoutMs: 20_000 });
      expectSameIds('S3 replay (distinct ids) vs RabbitMQ consumer', ids(seen), [...new Set(replayed)]);
      // At least once: a write that timed out in the black hole may have reached S3 all the same, and
      // its retry then stores the message again. Only such a message may be there twice.
      const retried = new Set(events.map((event) => event.messageId));
      const twice = replayed.filter((id, index) => replayed.indexOf(id) !== index);
      expect(
        twice.filter((id) => !retried.has(id)),
        'ids stored twice without a timed-out write',
      ).toEqual([]);
    });

    it("mode 'primary': a full outbox rejects before RabbitMQ receives the message", async () => {
      const gate = await proxy();
      const mq = own(
        tee(
          { rabbitmq: rabbit(), s3: s3({ endpoint: gate.url, requestTimeoutMs: 1_500 }) },
          { mode: 'primary', outboxLimit: 4, retryBackoff: { baseMs: 50, maxMs: 200 } },
        ),
      );
      const seg = segment('tee-outbox-full');
      const seen = await live(mq, seg);
      await mq.sharePublish({ warm: true }, { segment: seg, topic: 'Order.Warm' });
      await mq.flush({ timeoutMs: 10_000 });
      await gate.refuse();
      const queued: string[] = [];
      for (let n = 0; n < 4; n++) queued.push((await mq.sharePublish({ n }, { segment: seg, topic: 'Order.Created' })).id);
      const overId = `over-${seg}`;
      const error = (await mq
        .sharePublish({ n: 4 }, { segment: seg, topic: 'Order.Created', id: overId })
        .catch((e: unknown) => e)) as TeePublishError;
      expect(TeePublishError.isInstance(error)).toBe(true);
      expect(error).toMatchObject({ reason: 'outbox-full', messageId: overId, succeeded: [] });
      expect(error.failures.map((f) => f.target)).toEqual(['s3']);
      await until(
        () => seen.length >= 5,
        () => `RabbitMQ deliveries (${seen.length}/5)`,
        20_000,
      );
      await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
      expect(ids(seen)).not.toContain(overId); // RabbitMQ never received the rejected message

      await gate.forward();
      expect((await mq.flush({ timeoutMs: 30_000 })).caughtUp).toBe(true);
      await mq.sharePublish({ n: 4 }, { segment: seg, topic: 'Order.Created', id: overId });
      await mq.flush({ timeoutMs: 30_000 });
      await until(
        () => seen.length >= 6,
        () => `RabbitMQ deliveries (${seen.length}/6)`,
        20_000,
      );
      const replayed = await replayIds(mq.target('s3'), seg, 6, { timeoutMs: 20_000 });
      expectSameIds('S3 replay vs RabbitMQ consumer', ids(seen), replayed);
    });

    it('an S3 mirror that never answers: mode all rejects every publish; mode primary reports the undelivered on close', async () => {
      const port = await closedPort();
      const deadS3 = () => s3({ endpoint: `http://127.0.0.1:${port}`, requestTimeoutMs: 1_000 });
      const seg = segment('tee-dead-s3');

      const strict = own(tee({ rabbitmq: rabbit(), s3: deadS3() }));
      const error = (await strict.taskPublish({ n: 1 }, { segment: seg }).catch((e: unknown) => e)) as TeePublishError;
      expect(TeePublishError.isInstance(error)).toBe(true);
      expect(error.failures.map((f) => f.target)).toEqual(['s3']);
      expect(error.succeeded).toEqual(['rabbitmq']);

      const lenient = tee({ rabbitmq: rabbit(), s3: deadS3() }, { mode: 'primary', retryBackoff: { baseMs: 50, maxMs: 200 } });
      const seen = await live(lenient, seg);
      const published: string[] = [];
      for (let n = 0; n < 3; n++)
        published.push((await lenient.sharePublish({ n }, { segment: seg, topic: 'Order.Created' })).id);
      await until(
        () => seen.length >= 3,
        () => `RabbitMQ deliveries (${seen.length}/3)`,
        20_000,
      );
      const report = await lenient.closeWithReport({ timeoutMs: 1_000 });
      expectSameIds(
        'undelivered copies',
        published,
        report.undelivered.map((copy) => copy.messageId),
      );
      expect(report.undelivered.every((copy) => copy.target === 's3' && copy.kind === 'share')).toBe(true);
      expectSameIds('RabbitMQ live consumer', published, ids(seen));
    });
  },
);
