import { assertInOrder } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import { needs } from '../case.js';
import { pause } from '../harness.js';
import { watchQuiet } from '../wait.js';

export const orderingCases: CaseDefinition[] = [
  {
    id: 'ordering.tasks',
    group: 'ordering',
    name: 'tasks from one publisher reach a prefetch-1 worker in publish order',
    skip: needs.ordering,
    async run(ctx) {
      const producer = await ctx.driver();
      await ctx.taskConsume(
        await ctx.driver(),
        ctx.recorder.handler('worker', (message) =>
          message.attempt === 1 && ctx.recorder.deliveries.length % 7 === 0 ? pause(3) : undefined,
        ),
        { segment: ctx.segment, topic: 'conf.ordered', prefetch: 1 },
      );
      const ids = await ctx.publishTasks(producer, ctx.messageCount * 2);
      await ctx.recorder.waitForIds(ids, { timeoutMs: ctx.timeoutMs, description: 'all tasks' });
      await watchQuiet(
        ctx.quietMs,
        () => assertInOrder(ids, ctx.recorder.ids(), 'prefetch-1 worker'),
        'out-of-order or extra tasks',
      );
    },
  },
  {
    id: 'ordering.shares',
    group: 'ordering',
    name: 'shares from one publisher reach a prefetch-1 subscriber in publish order, across topics',
    skip: needs.ordering,
    async run(ctx) {
      const producer = await ctx.driver();
      await ctx.shareConsume(
        await ctx.driver(),
        ctx.recorder.handler('subscriber', () => (ctx.recorder.deliveries.length % 7 === 0 ? pause(3) : undefined)),
        { segment: ctx.segment, topics: ['conf.ordered.#'], prefetch: 1 },
      );
      const ids: string[] = [];
      for (let index = 0; index < ctx.messageCount * 2; index++) {
        const topic = index % 3 === 0 ? 'conf.ordered' : index % 3 === 1 ? 'conf.ordered.a' : 'conf.ordered.b.c';
        ids.push((await producer.sharePublish({ index }, { segment: ctx.segment, topic })).id);
      }
      await ctx.recorder.waitForIds(ids, { timeoutMs: ctx.timeoutMs, description: 'all shares' });
      await watchQuiet(
        ctx.quietMs,
        () => assertInOrder(ids, ctx.recorder.ids(), 'prefetch-1 subscriber'),
        'out-of-order or extra shares',
      );
    },
  },
];
