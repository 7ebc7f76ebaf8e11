import { assertExactlyOnce } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import { needs } from '../case.js';
import { withDeadline } from '../wait.js';

const KIND = 'conf.durable';
const TOPIC = 'conf.durable.event';

export const durableCases: CaseDefinition[] = [
  {
    id: 'durable.tasks',
    group: 'durable',
    name: 'a kind whose workers all closed (subscription or whole driver) gets the tasks published meanwhile when a worker returns',
    skip: needs.durable,
    async run(ctx) {
      const producer = await ctx.driver();
      const driverA = await ctx.driver();
      const driverB = await ctx.driver();
      const workerA = await ctx.taskConsume(driverA, ctx.recorder.handler('a'), { segment: ctx.segment, topic: KIND });
      await ctx.taskConsume(driverB, ctx.recorder.handler('b'), { segment: ctx.segment, topic: KIND });
      const before = await ctx.publishTasks(producer, 4);
      await ctx.expectExactlyOnce(before, { consumer: ['a', 'b'], label: 'workers a and b' });
      await withDeadline(workerA.close(), ctx.timeoutMs, 'worker a subscription.close()');
      await withDeadline(driverB.close(), ctx.timeoutMs, 'worker b driver.close()');
      const meanwhile = await ctx.publishTasks(producer, ctx.messageCount);
      await ctx.taskConsume(await ctx.driver(), ctx.recorder.handler('returning'), { segment: ctx.segment, topic: KIND });
      const after = await ctx.publishTasks(producer, 2);
      await ctx.expectExactlyOnce([...meanwhile, ...after], {
        consumer: 'returning',
        label: 'the returning worker (tasks published while no worker ran, then new ones)',
      });
      assertExactlyOnce(before, ctx.recorder.ids(['a', 'b']), 'workers a and b (closed)');
    },
  },
  {
    id: 'durable.named-subscription',
    group: 'durable',
    name: 'a named share subscription keeps what was published while it was closed and resumes without repeats; another name keeps its own',
    skip: needs.durable,
    async run(ctx) {
      const producer = await ctx.driver();
      const options = { segment: ctx.segment, topics: ['conf.durable.#'], name: 'conf-resume' };
      const first = await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('one'), options);
      await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('two'), { ...options, name: 'conf-other' });
      const before = await ctx.publishShares(producer, TOPIC, 3);
      await ctx.expectExactlyOnce(before, { consumer: 'one', label: 'named subscription conf-resume (first run)' });
      await withDeadline(first.close(), ctx.timeoutMs, 'subscription.close()');
      const meanwhile = await ctx.publishShares(producer, TOPIC, ctx.messageCount);
      await producer.sharePublish({ unrelated: true }, { segment: ctx.segment, topic: 'conf.unrelated' });
      await ctx.recorder.waitForIds([...before, ...meanwhile], {
        consumer: 'two',
        timeoutMs: ctx.timeoutMs,
        description: 'the other named subscription, open all along',
      });
      await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('one-again'), options);
      const after = await ctx.publishShares(producer, TOPIC, 2);
      await ctx.expectExactlyOnce([...meanwhile, ...after], {
        consumer: 'one-again',
        label: 'conf-resume reopened (what was published while closed, then new ones; nothing seen before)',
      });
      assertExactlyOnce([...before, ...meanwhile, ...after], ctx.recorder.ids('two'), 'conf-other (open all along)');
      assertExactlyOnce(before, ctx.recorder.ids('one'), 'conf-resume (first run)');
    },
  },
];
