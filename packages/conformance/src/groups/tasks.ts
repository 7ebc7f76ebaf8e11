import type { JsonValue, Message } from '@mq-drivers/core';
import { assertExactlyOnce, assertJsonEqual, check, fail, list, show } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import { pause } from '../harness.js';
import { withDeadline } from '../wait.js';

const KIND = 'conf.worker';

/** Checks a first delivery against what was published. */
export function checkFirstDelivery(
  message: Message,
  expected: {
    id: string;
    body: JsonValue;
    segment: string;
    topic: string;
    headers: Record<string, string>;
    before: number;
    after: number;
  },
  label: string,
): void {
  check(message !== null && typeof message === 'object', `${label}: handler got ${show(message)} instead of a message`);
  check(message.id === expected.id, `${label}: message.id is ${show(message.id)}, the publish receipt said ${expected.id}`);
  assertJsonEqual(message.body, expected.body, `${label}: body of ${expected.id}`);
  check(
    message.segment === expected.segment,
    `${label}: message.segment is ${show(message.segment)}, expected ${expected.segment}`,
  );
  check(message.topic === expected.topic, `${label}: message.topic is ${show(message.topic)}, expected ${expected.topic}`);
  check(message.attempt === 1, `${label}: first delivery of ${expected.id} has attempt ${show(message.attempt)}, expected 1`);
  assertJsonEqual({ ...message.headers }, expected.headers, `${label}: headers of ${expected.id}`);
  const at = message.publishedAt;
  check(
    Object.prototype.toString.call(at) === '[object Date]' && Number.isFinite(at.getTime()),
    `${label}: message.publishedAt is ${show(at)}, expected a valid Date`,
  );
  check(
    at.getTime() >= expected.before - 2_000 && at.getTime() <= expected.after + 2_000,
    `${label}: publishedAt ${at.toISOString()} is not within 2 s of the publish call (${new Date(expected.before).toISOString()} .. ${new Date(expected.after).toISOString()})`,
  );
}

export const taskCases: CaseDefinition[] = [
  {
    id: 'tasks.one-worker',
    group: 'tasks',
    name: 'one worker gets every task exactly once',
    async run(ctx) {
      const producer = await ctx.driver();
      const worker = await ctx.driver();
      const subscription = await ctx.taskConsume(worker, ctx.recorder.handler('worker'), { segment: ctx.segment, topic: KIND });
      check(subscription.name === KIND, `a task subscription's name is ${show(subscription.name)}; expected its kind ${KIND}`);
      check(subscription.closed === false, `a new subscription reports closed = ${show(subscription.closed)}`);
      const ids = await ctx.publishTasks(producer, ctx.messageCount);
      await ctx.expectExactlyOnce(ids, { label: 'the only worker' });
    },
  },
  {
    id: 'tasks.message-fields',
    group: 'tasks',
    name: 'a delivered task carries the receipt id, body, segment, kind as topic, publishedAt, attempt 1 and headers',
    async run(ctx) {
      const producer = await ctx.driver();
      const worker = await ctx.driver();
      await ctx.taskConsume(worker, ctx.recorder.handler('worker'), { segment: ctx.segment, topic: KIND });
      const body = { order: 'A-1', items: [{ sku: 'x', qty: 2 }], note: 'ünïcødé ✓', nothing: null, ok: true, n: -1.5 };
      const headers = { 'trace-id': 'abc-123', 'x-custom.key_1': 'value with spaces' };
      const before = Date.now();
      const receipt = await producer.taskPublish(body, { segment: ctx.segment, headers });
      const after = Date.now();
      await ctx.expectExactlyOnce([receipt.id], { label: 'the worker' });
      const message = ctx.recorder.deliveries[0]!.message;
      checkFirstDelivery(message, { id: receipt.id, body, segment: ctx.segment, topic: KIND, headers, before, after }, 'task');
      const custom = await producer.taskPublish('custom', { segment: ctx.segment, id: 'conf-custom-id_1:x' });
      check(
        custom.id === 'conf-custom-id_1:x',
        `taskPublish with id 'conf-custom-id_1:x' returned receipt id ${show(custom.id)}`,
      );
      await ctx.expectExactlyOnce([receipt.id, custom.id], { label: 'the worker (custom id)' });
    },
  },
  {
    id: 'tasks.json-bodies',
    group: 'tasks',
    name: 'every kind of JSON body arrives unchanged',
    async run(ctx) {
      const bodies: JsonValue[] = [
        null,
        true,
        false,
        0,
        -0.25,
        1e21,
        Number.MAX_SAFE_INTEGER,
        '',
        'plain',
        'ünïcødé 😀 \u0000 \n "quoted" \\',
        [],
        {},
        [1, 'two', [3, [4]], { five: 5 }],
        { 'key with spaces': 1, ключ: 'значение', nested: { deep: { deeper: [null, false] } } },
      ];
      const producer = await ctx.driver();
      const worker = await ctx.driver();
      await ctx.taskConsume(worker, ctx.recorder.handler('worker'), { segment: ctx.segment, topic: KIND });
      const ids: string[] = [];
      for (const body of bodies) ids.push((await producer.taskPublish(body, { segment: ctx.segment })).id);
      await ctx.expectExactlyOnce(ids, { label: 'the worker' });
      for (const [index, id] of ids.entries()) {
        const delivery = ctx.recorder.deliveries.find((d) => d.message.id === id)!;
        assertJsonEqual(delivery.message.body, bodies[index], `body #${index} (${id})`);
      }
    },
  },
  {
    id: 'tasks.competing-workers',
    group: 'tasks',
    name: '3 competing workers of one kind (prefetch 1) get every task exactly once between them, each a fair share',
    async run(ctx) {
      const producer = await ctx.driver();
      const names = ['worker-a', 'worker-b', 'worker-c'];
      for (const name of names) {
        const driver = await ctx.driver();
        await ctx.taskConsume(
          driver,
          ctx.recorder.handler(name, () => pause(5)),
          { segment: ctx.segment, topic: KIND, prefetch: 1 },
        );
      }
      const count = Math.max(ctx.messageCount, 30);
      const ids = await ctx.publishTasks(producer, count);
      await ctx.expectExactlyOnce(ids, { label: 'the 3 workers together' });
      const floor = Math.floor((count / 3) * 0.5);
      const shares = names.map((name) => `${name}: ${ctx.recorder.of(name).length}`);
      for (const name of names) {
        check(
          ctx.recorder.of(name).length >= floor,
          `unfair share: each of 3 workers should get at least ${floor} of ${count} tasks (half a fair share); got ${shares.join(', ')}`,
        );
      }
    },
  },
  {
    id: 'tasks.competing-workers-bursts',
    group: 'tasks',
    name: '2 competing workers of one kind (prefetch 1) share tasks published in bursts of concurrent publishes fairly, each exactly once',
    async run(ctx) {
      // Bursts let a driver batch several tasks into one broker write; a worker that wins the
      // claim of a batch must not starve the other one (awaited publishes never show this).
      const producer = await ctx.driver();
      const names = ['worker-a', 'worker-b'];
      for (const name of names) {
        await ctx.taskConsume(
          await ctx.driver(),
          ctx.recorder.handler(name, () => pause(5)),
          { segment: ctx.segment, topic: KIND, prefetch: 1 },
        );
      }
      const burst = 25;
      const bursts = 4;
      const ids: string[] = [];
      for (let round = 0; round < bursts; round++) {
        const receipts = await withDeadline(
          Promise.all(Array.from({ length: burst }, (_, n) => producer.taskPublish({ round, n }, { segment: ctx.segment }))),
          ctx.timeoutMs,
          `burst #${round} of ${burst} concurrent publishes`,
        );
        ids.push(...receipts.map((receipt) => receipt.id));
      }
      // 100 tasks at prefetch 1 take a slow broker (S3) longer than one deadline.
      await ctx.recorder.waitForIds(ids, { timeoutMs: ctx.timeoutMs * 2, description: 'the 2 workers together' });
      await ctx.expectExactlyOnce(ids, { label: 'the 2 workers together' });
      const floor = Math.floor((ids.length / names.length) * 0.5);
      const shares = names.map((name) => `${name}: ${ctx.recorder.of(name).length}`);
      for (const name of names) {
        check(
          ctx.recorder.of(name).length >= floor,
          `unfair share: each of 2 workers should get at least ${floor} of ${ids.length} burst-published tasks (half a fair share); got ${shares.join(', ')}`,
        );
      }
    },
  },
  {
    id: 'tasks.kinds-fan-out',
    group: 'tasks',
    name: '3 kinds × 2 workers: every kind gets every task exactly once, on exactly one of its workers',
    async run(ctx) {
      const producer = await ctx.driver();
      const kinds = ['conf.billing', 'conf.mailer', 'conf.audit.log'];
      const objects = new Map<object, string>();
      for (const kind of kinds) {
        for (const worker of ['1', '2']) {
          const driver = await ctx.driver();
          await ctx.taskConsume(
            driver,
            ctx.recorder.handler(`${kind}#${worker}`, (message) => {
              const seen = objects.get(message);
              if (seen !== undefined)
                fail(`the same message object (${message.id}) was handed to ${seen} and to ${kind}#${worker}`);
              objects.set(message, `${kind}#${worker}`);
              check(
                message.topic === kind,
                `${kind}#${worker} got a message with topic ${show(message.topic)}, expected its kind ${kind}`,
              );
              return pause(1);
            }),
            { segment: ctx.segment, topic: kind, prefetch: 2 },
          );
        }
      }
      const ids = await ctx.publishTasks(producer, ctx.messageCount);
      for (const kind of kinds) {
        await ctx.recorder.waitForIds(ids, {
          consumer: [`${kind}#1`, `${kind}#2`],
          timeoutMs: ctx.timeoutMs,
          description: `kind ${kind}`,
        });
      }
      await ctx.expectExactlyOnce(ids, { consumer: [`${kinds[0]}#1`, `${kinds[0]}#2`], label: `kind ${kinds[0]}` });
      for (const kind of kinds) assertExactlyOnce(ids, ctx.recorder.ids([`${kind}#1`, `${kind}#2`]), `kind ${kind}`);
    },
  },
  {
    id: 'tasks.concurrent-publish',
    group: 'tasks',
    name: 'concurrent publishes (all at once) each resolve with a distinct id and arrive exactly once',
    async run(ctx) {
      const producer = await ctx.driver();
      const worker = await ctx.driver();
      await ctx.taskConsume(worker, ctx.recorder.handler('worker'), { segment: ctx.segment, topic: KIND });
      const receipts = await withDeadline(
        Promise.all(Array.from({ length: ctx.messageCount }, (_, n) => producer.taskPublish({ n }, { segment: ctx.segment }))),
        ctx.timeoutMs,
        `${ctx.messageCount} concurrent publishes`,
      );
      await ctx.expectExactlyOnce(
        receipts.map((receipt) => receipt.id),
        { label: 'the worker' },
      );
    },
  },
  {
    id: 'tasks.unregistered-kind',
    group: 'tasks',
    name: 'a task published before its kind registered (first taskConsume) reaches no one; the publish still resolves',
    async run(ctx) {
      const producer = await ctx.driver();
      const early = await withDeadline(
        producer.taskPublish('early', { segment: ctx.segment }),
        ctx.timeoutMs,
        'publish with no kind',
      );
      const worker = await ctx.driver();
      await ctx.taskConsume(worker, ctx.recorder.handler('worker'), { segment: ctx.segment, topic: KIND });
      const late = await ctx.publishTasks(producer, 1);
      await ctx.expectExactlyOnce(late, { label: `the worker (must not get ${early.id}, published before the kind existed)` });
    },
  },
  {
    id: 'tasks.shares-separate',
    group: 'tasks',
    name: 'tasks and shares do not mix: a task never reaches a share subscription, a share never reaches a worker, even with equal names',
    async run(ctx) {
      const producer = await ctx.driver();
      const consumer = await ctx.driver();
      await ctx.taskConsume(consumer, ctx.recorder.handler('worker'), { segment: ctx.segment, topic: KIND });
      await ctx.shareConsume(consumer, ctx.recorder.handler('subscriber'), { segment: ctx.segment, topics: [KIND] });
      await ctx.shareConsume(consumer, ctx.recorder.handler('everything'), { segment: ctx.segment, topics: ['#'] });
      const tasks = await ctx.publishTasks(producer, 3);
      const shares = await ctx.publishShares(producer, KIND, 3);
      await ctx.recorder.waitForIds(shares, {
        consumer: 'everything',
        timeoutMs: ctx.timeoutMs,
        description: 'the `#` subscriber',
      });
      await ctx.expectExactlyOnce(tasks, {
        consumer: 'worker',
        label: `worker of kind ${KIND} (must not get shares on topic ${KIND})`,
      });
      assertExactlyOnce(
        shares,
        ctx.recorder.ids('subscriber'),
        `subscriber of topic ${KIND} (must not get tasks of kind ${KIND})`,
      );
      assertExactlyOnce(shares, ctx.recorder.ids('everything'), 'subscriber of `#` (must not get tasks)');
    },
  },
  {
    id: 'tasks.segment-isolation',
    group: 'tasks',
    name: 'segments isolate tasks: a worker of the same kind on another segment gets nothing',
    async run(ctx) {
      const other = ctx.newSegment();
      const producer = await ctx.driver();
      await ctx.taskConsume(await ctx.driver(), ctx.recorder.handler('here'), { segment: ctx.segment, topic: KIND });
      await ctx.taskConsume(await ctx.driver(), ctx.recorder.handler('there'), { segment: other, topic: KIND });
      const here = await ctx.publishTasks(producer, 5);
      const there = await ctx.publishTasks(producer, 3, { segment: other });
      await ctx.recorder.waitForIds(there, { consumer: 'there', timeoutMs: ctx.timeoutMs, description: `tasks on ${other}` });
      await ctx.expectExactlyOnce(here, { consumer: 'here', label: `worker on ${ctx.segment}` });
      assertExactlyOnce(there, ctx.recorder.ids('there'), `worker on ${other}`);
      for (const delivery of ctx.recorder.deliveries) {
        const expected = delivery.consumer === 'here' ? ctx.segment : other;
        check(
          delivery.message.segment === expected,
          `${delivery.consumer} got ${delivery.message.id} with segment ${show(delivery.message.segment)}; expected ${expected}`,
        );
      }
      check(
        !ctx.recorder.ids('here').some((id) => there.includes(id)),
        () => `segment leak: worker on ${ctx.segment} got ${list(ctx.recorder.ids('here').filter((id) => there.includes(id)))}`,
      );
    },
  },
];
