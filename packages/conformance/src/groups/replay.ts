import { InvalidArgumentError } from '@mq-drivers/core';
import { assertExactlyOnce, assertInOrder, check, show } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import { needs } from '../case.js';
import type { CaseContext } from '../harness.js';
import { clockPast, watchQuiet, withDeadline } from '../wait.js';
import { rejectionOf } from './lifecycle.js';

const TOPIC = 'conf.replay.event';

/** Exactly once, and in publish order when the driver promises per-publisher order. */
async function expectHistory(ctx: CaseContext, ids: readonly string[], consumer: string, label: string): Promise<void> {
  await ctx.recorder.waitForIds(ids, { consumer, timeoutMs: ctx.timeoutMs, description: label });
  await watchQuiet(
    ctx.quietMs,
    () =>
      ctx.capabilities.ordering === 'per-publisher'
        ? assertInOrder(ids, ctx.recorder.ids(consumer), `${label} (in publish order)`)
        : assertExactlyOnce(ids, ctx.recorder.ids(consumer), label),
    `${label}: extra deliveries`,
  );
}

export const replayCases: CaseDefinition[] = [
  {
    id: 'replay.earliest',
    group: 'replay',
    name: "`from: 'earliest'` sees every matching message published before it opened (in order), then new ones",
    skip: needs.replay,
    async run(ctx) {
      const producer = await ctx.driver();
      const history: string[] = [];
      for (let index = 0; index < ctx.messageCount; index++) {
        history.push((await producer.sharePublish({ index }, { segment: ctx.segment, topic: TOPIC })).id);
        if (index % 5 === 0) await producer.sharePublish({ skip: index }, { segment: ctx.segment, topic: 'conf.unmatched' });
      }
      await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('replayer'), {
        segment: ctx.segment,
        topics: ['conf.replay.#'],
        from: 'earliest',
        prefetch: 1,
      });
      const live = await ctx.publishShares(producer, TOPIC, 3);
      await expectHistory(ctx, [...history, ...live], 'replayer', 'subscription from earliest');
    },
  },
  {
    id: 'replay.date',
    group: 'replay',
    name: '`from: Date` sees only what was published after that time',
    skip: needs.replay,
    async run(ctx) {
      const producer = await ctx.driver();
      const old = await ctx.publishShares(producer, TOPIC, 5);
      await clockPast(new Date(), ctx.timeoutMs);
      const mark = new Date();
      await clockPast(mark, ctx.timeoutMs);
      const recent = await ctx.publishShares(producer, TOPIC, 5);
      await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('replayer'), {
        segment: ctx.segment,
        topics: ['#'],
        from: mark,
        prefetch: 1,
      });
      const live = await ctx.publishShares(producer, TOPIC, 2);
      await expectHistory(
        ctx,
        [...recent, ...live],
        'replayer',
        `subscription from ${mark.toISOString()} (must not get ${old.join(', ')})`,
      );
    },
  },
  {
    id: 'replay.cursor',
    group: 'replay',
    name: '`from: {cursor}` resumes right after the last message acknowledged when the cursor was taken, and can be reused',
    skip: needs.replay,
    async run(ctx) {
      const producer = await ctx.driver();
      const first = await ctx.publishShares(producer, TOPIC, 5);
      const reader = await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('reader'), {
        segment: ctx.segment,
        topics: ['#'],
        from: 'earliest',
        prefetch: 1,
      });
      await ctx.expectExactlyOnce(first, { consumer: 'reader', label: 'the first reader' });
      await withDeadline(reader.close(), ctx.timeoutMs, 'close() of the first reader');
      check(typeof reader.cursor === 'function', 'a replay-capable driver must offer subscription.cursor()');
      const cursor = reader.cursor?.();
      check(
        typeof cursor === 'string' && cursor.length > 0,
        `subscription.cursor() returned ${show(cursor)} after acknowledging ${first.length} messages; expected a string`,
      );
      const second = await ctx.publishShares(producer, TOPIC, 4);
      for (const name of ['resumed-1', 'resumed-2']) {
        await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler(name), {
          segment: ctx.segment,
          topics: ['#'],
          from: { cursor: cursor! },
          prefetch: 1,
        });
        await expectHistory(ctx, second, name, `${name} from the saved cursor (must not get ${first.join(', ')})`);
      }
    },
  },
  {
    id: 'replay.named-resumes',
    group: 'replay',
    name: "a named subscription with `from: 'earliest'` resumes from its own position when reopened, not from earliest again",
    skip: (capabilities) => needs.replay(capabilities) ?? needs.durable(capabilities),
    async run(ctx) {
      const producer = await ctx.driver();
      const history = await ctx.publishShares(producer, TOPIC, 4);
      const options = { segment: ctx.segment, topics: ['#'], name: 'conf-replayer', from: 'earliest' as const, prefetch: 1 };
      const first = await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('first'), options);
      await expectHistory(ctx, history, 'first', 'named subscription, first run');
      await withDeadline(first.close(), ctx.timeoutMs, 'close()');
      const meanwhile = await ctx.publishShares(producer, TOPIC, 3);
      await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('second'), options);
      await expectHistory(ctx, meanwhile, 'second', `named subscription reopened (must not get ${history.join(', ')} again)`);
    },
  },
  {
    id: 'replay.bad-cursor',
    group: 'replay',
    name: '`from: {cursor}` with a cursor the driver never issued is rejected with InvalidArgumentError(from)',
    skip: needs.replay,
    async run(ctx) {
      const consumer = await ctx.driver();
      const problems: string[] = [];
      for (const cursor of ['not-a-cursor', '', '{"bogus":true}']) {
        const error = await rejectionOf(
          () => consumer.shareConsume(ctx.recorder.handler('bad'), { segment: ctx.segment, topics: ['#'], from: { cursor } }),
          ctx.timeoutMs,
          `shareConsume from {cursor: ${show(cursor)}}`,
        ).catch((failure: Error) => {
          problems.push(failure.message);
          return undefined;
        });
        if (error === undefined) continue;
        if (!InvalidArgumentError.isInstance(error) || !(error.argument === 'from' || error.argument.startsWith('from.'))) {
          problems.push(
            `cursor ${show(cursor)}: rejected with ${show(error)}; expected InvalidArgumentError(from or from.cursor)`,
          );
        }
      }
      check(problems.length === 0, () => problems.join('; '));
    },
  },
];
