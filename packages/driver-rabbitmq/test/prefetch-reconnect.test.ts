import { describeIdDiff } from '@mq-drivers/conformance/services';
import type { Message, MqError } from '@mq-drivers/core';
import { createRabbitMqDriver } from '@mq-drivers/rabbitmq';
import { afterAll, describe, expect, it } from 'vitest';
import { brokerSkipReason, FAST, freshVhost, haveRabbitmqctl, rabbitmqctl, segment, until, urlWithVhost } from './helpers.js';

// Breaks connections with `rabbitmqctl close_all_connections -p`, on a virtual host of its own so
// no other test file sees it.
const VHOST = 'mq-prefetch-reconnect';
const skipReason = await brokerSkipReason();
const ctl = skipReason === undefined && (await haveRabbitmqctl());
if (ctl) await freshVhost(VHOST);
const why = skipReason ?? (ctl ? undefined : 'rabbitmqctl unavailable');

describe.skipIf(why !== undefined)(`rabbitmq prefetch across reconnects${why ? ` [skipped: ${why}]` : ''}`, () => {
  const url = urlWithVhost(VHOST);
  const drivers: Array<{ close(): Promise<void> }> = [];
  afterAll(async () => {
    await Promise.all(drivers.map((d) => d.close()));
  });

  it.each(['classic', 'quorum'] as const)(
    'concurrency never exceeds prefetch, and one message never runs twice at once, across two connection losses (%s queue)',
    async (queueType) => {
      const seg = segment(`prefetch-rc-${queueType}`);
      const PREFETCH = 5;
      const TASKS = 20;
      const HANDLER_MS = 2_500;
      const producer = createRabbitMqDriver({ url, ...FAST, onError: () => {} });
      drivers.push(producer);
      const lost: MqError[] = [];
      const worker = createRabbitMqDriver({
        url,
        ...FAST,
        queueType,
        connectionName: 'prefetch-reconnect worker',
        onError: (error) => {
          if (/lost/.test(error.message)) lost.push(error);
        },
      });
      drivers.push(worker);

      let active = 0;
      let maxActive = 0;
      const activeIds = new Map<string, number>();
      const overlaps: string[] = [];
      const finished: string[] = [];
      const runs: string[] = [];
      const sub = await worker.taskConsume(
        async (m: Message) => {
          runs.push(m.id);
          active++;
          maxActive = Math.max(maxActive, active);
          const same = (activeIds.get(m.id) ?? 0) + 1;
          activeIds.set(m.id, same);
          if (same > 1) overlaps.push(`${m.id} (attempt ${m.attempt}) x${same}`);
          try {
            await new Promise((resolve) => setTimeout(resolve, HANDLER_MS));
          } finally {
            active--;
            activeIds.set(m.id, (activeIds.get(m.id) ?? 1) - 1);
            finished.push(m.id);
          }
        },
        { segment: seg, topic: 'slow', prefetch: PREFETCH, maxAttempts: 10 },
      );
      const ids: string[] = [];
      for (let i = 0; i < TASKS; i++) ids.push((await producer.taskPublish({ i }, { segment: seg })).id);

      await until(
        () => active === PREFETCH,
        () => `${active} handlers running, expected ${PREFETCH}`,
      );
      // Two connection losses about a second apart while the first handlers still run.
      await rabbitmqctl('-q', 'close_all_connections', '-p', VHOST, 'test: first break');
      await until(
        () => lost.length >= 1,
        () => 'the worker did not report the lost connection',
      );
      const secondBreakAt = Date.now() + 1_000;
      await until(
        () => Date.now() >= secondBreakAt,
        () => 'pause between the breaks',
        2_000,
      );
      await rabbitmqctl('-q', 'close_all_connections', '-p', VHOST, 'test: second break');
      await until(
        () => lost.length >= 2,
        () => 'the worker did not report the second lost connection',
      );

      await until(
        () => ids.every((id) => finished.includes(id)),
        () => `not every task finished: ${describeIdDiff(ids, finished)}; max concurrency ${maxActive}`,
        60_000,
      );
      expect(overlaps, `messages running in two handlers at once: ${overlaps.join(', ')}`).toEqual([]);
      expect(maxActive, `max concurrent handlers ${maxActive} > prefetch ${PREFETCH}`).toBeLessThanOrEqual(PREFETCH);
      expect(
        ids.filter((id) => !runs.includes(id)),
        describeIdDiff(ids, runs),
      ).toEqual([]);
      await sub.close();
    },
    120_000,
  );

  it('a handler that outlives its channel settles the redelivered copy: success acknowledges it, failure counts an attempt', async () => {
    const seg = segment('outlive');
    const producer = createRabbitMqDriver({ url, ...FAST, onError: () => {} });
    drivers.push(producer);
    const lost: MqError[] = [];
    const worker = createRabbitMqDriver({
      url,
      ...FAST,
      connectionName: 'prefetch-reconnect outlive',
      onError: (error) => {
        if (/lost/.test(error.message)) lost.push(error);
      },
    });
    drivers.push(worker);
    const runs: string[] = [];
    const gates: Array<() => void> = [];
    const sub = await worker.taskConsume<{ ok: boolean }>(
      async (m) => {
        runs.push(`${m.body.ok ? 'ok' : 'bad'}#${m.attempt}`);
        if (m.attempt > 1) return;
        await new Promise<void>((resolve) => gates.push(resolve));
        if (!m.body.ok) throw new Error('fails on purpose');
      },
      { segment: seg, topic: 'k', prefetch: 2, maxAttempts: 5 },
    );
    await producer.taskPublish({ ok: true }, { segment: seg });
    await producer.taskPublish({ ok: false }, { segment: seg });
    await until(
      () => gates.length === 2,
      () => `runs so far: ${runs.join(', ')}`,
    );
    await rabbitmqctl('-q', 'close_all_connections', '-p', VHOST, 'test: handlers outlive their channel');
    await until(
      () => lost.length >= 1,
      () => 'the worker did not report the lost connection',
    );
    // Both copies are requeued by the broker; they must not start again while the first runs still go on.
    for (const open of gates) open();
    await until(
      () => runs.includes('bad#2'),
      () => `expected the failure to count as an attempt (bad#2); runs: ${runs.join(', ')}`,
      30_000,
    );
    await sub.close();
    // Nothing of the two is left in the queue: a new worker sees only a marker published now.
    const probe = createRabbitMqDriver({ url, ...FAST, onError: () => {} });
    drivers.push(probe);
    const left: string[] = [];
    const after = await probe.taskConsume((m) => void left.push(m.id), { segment: seg, topic: 'k' });
    const marker = await producer.taskPublish({ ok: true }, { segment: seg });
    await until(
      () => left.includes(marker.id),
      () => describeIdDiff([marker.id], left),
    );
    await after.close();
    expect(left, describeIdDiff([marker.id], left)).toEqual([marker.id]);
    expect(runs.sort(), 'each copy runs once: ok#1, bad#1 and the retry bad#2').toEqual(['bad#1', 'bad#2', 'ok#1']);
  }, 120_000);
});
