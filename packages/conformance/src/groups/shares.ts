import type { Driver } from '@mq-drivers/core';
import { assertExactlyOnce, check, show } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import type { CaseContext } from '../harness.js';
import { watchQuiet } from '../wait.js';
import { checkFirstDelivery } from './tasks.js';

const TOPIC = 'conf.Customer.Signup';

/**
 * Opens one subscriber per entry (`name → patterns`, each on its own driver), publishes one
 * message per topic, and checks that each subscriber got exactly the messages whose topic it
 * matches according to `expected` (`name → topics`), once each.
 */
export async function checkRouting(
  ctx: CaseContext,
  subscribers: Record<string, readonly string[]>,
  topics: readonly string[],
  expected: Record<string, readonly string[]>,
): Promise<void> {
  const producer = await ctx.driver();
  for (const [name, patterns] of Object.entries(subscribers)) {
    await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler(name), { segment: ctx.segment, topics: patterns });
  }
  const idOf = new Map<string, string>();
  for (const topic of topics) {
    const receipt = await producer.sharePublish({ topic }, { segment: ctx.segment, topic });
    idOf.set(topic, receipt.id);
  }
  const label = (name: string) => `subscriber ${name} ${show(subscribers[name])}`;
  const want = (name: string) => (expected[name] ?? []).map((topic) => idOf.get(topic)!);
  for (const name of Object.keys(subscribers)) {
    await ctx.recorder.waitForIds(want(name), { consumer: name, timeoutMs: ctx.timeoutMs, description: label(name) });
  }
  const topicOf = new Map([...idOf].map(([topic, id]) => [id, topic]));
  const named = (ids: string[]) => ids.map((id) => `${id} (${topicOf.get(id) ?? 'unknown topic'})`);
  await watchQuiet(
    ctx.quietMs,
    () => {
      for (const name of Object.keys(subscribers)) {
        assertExactlyOnce(named(want(name)), named(ctx.recorder.ids(name)), label(name));
      }
    },
    'extra or misrouted shares',
  );
  for (const delivery of ctx.recorder.deliveries) {
    const topic = topicOf.get(delivery.message.id);
    check(
      delivery.message.topic === topic,
      `${delivery.consumer} got ${delivery.message.id} with topic ${show(delivery.message.topic)}; it was published on ${topic}`,
    );
  }
}

async function subscribers(ctx: CaseContext, count: number, options: { topics: string[]; segment?: string }): Promise<string[]> {
  const names: string[] = [];
  for (let index = 0; index < count; index++) {
    const name = `subscriber-${index + 1}`;
    const driver: Driver = await ctx.driver();
    await ctx.shareConsume(driver, ctx.recorder.handler(name), {
      segment: options.segment ?? ctx.segment,
      topics: options.topics,
    });
    names.push(name);
  }
  return names;
}

export const shareCases: CaseDefinition[] = [
  {
    id: 'shares.every-subscriber',
    group: 'shares',
    name: 'every subscriber of a topic gets each message exactly once',
    async run(ctx) {
      const producer = await ctx.driver();
      const names = await subscribers(ctx, 2, { topics: [TOPIC] });
      const named = await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('named'), {
        segment: ctx.segment,
        topics: [TOPIC],
        name: 'conf-named',
      });
      check(named.name === 'conf-named', `a named share subscription reports name ${show(named.name)}; expected conf-named`);
      names.push('named');
      const ids = await ctx.publishShares(producer, TOPIC, ctx.messageCount);
      for (const name of names) {
        await ctx.recorder.waitForIds(ids, { consumer: name, timeoutMs: ctx.timeoutMs, description: name });
      }
      await watchQuiet(
        ctx.quietMs,
        () => {
          for (const name of names) assertExactlyOnce(ids, ctx.recorder.ids(name), name);
        },
        'duplicate shares',
      );
    },
  },
  {
    id: 'shares.message-fields',
    group: 'shares',
    name: 'a delivered share carries the receipt id, body, segment, published topic, publishedAt, attempt 1 and headers',
    async run(ctx) {
      const producer = await ctx.driver();
      await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('subscriber'), {
        segment: ctx.segment,
        topics: ['conf.#'],
      });
      const body = { customer: 42, tags: ['a', 'b'], profile: { name: 'Zoë', vip: false } };
      const headers = { 'correlation-id': 'c-1', lang: 'de' };
      const before = Date.now();
      const receipt = await producer.sharePublish(body, { segment: ctx.segment, topic: TOPIC, headers });
      const after = Date.now();
      await ctx.expectExactlyOnce([receipt.id], { label: 'the subscriber' });
      checkFirstDelivery(
        ctx.recorder.deliveries[0]!.message,
        { id: receipt.id, body, segment: ctx.segment, topic: TOPIC, headers, before, after },
        'share',
      );
    },
  },
  {
    id: 'shares.non-matching',
    group: 'shares',
    name: 'subscribers whose patterns do not match get nothing',
    async run(ctx) {
      await checkRouting(
        ctx,
        {
          exact: ['conf.a.b'],
          other: ['conf.a.c'],
          longer: ['conf.a.b.c'],
          shorter: ['conf.a'],
          prefix: ['conf'],
          case: ['conf.A.b'],
        },
        ['conf.a.b'],
        { exact: ['conf.a.b'] },
      );
    },
  },
  {
    id: 'shares.star-pattern',
    group: 'shares',
    name: '`*` matches exactly one word',
    async run(ctx) {
      await checkRouting(
        ctx,
        { middle: ['conf.*.c'], last: ['conf.b.*'], two: ['conf.*.*'], all: ['*.*.*'] },
        ['conf.b.c', 'conf.x.c', 'conf.c', 'conf.b.b.c', 'conf.b', 'conf.b.x', 'conf.b.c.d'],
        {
          middle: ['conf.b.c', 'conf.x.c'],
          last: ['conf.b.c', 'conf.b.x'],
          two: ['conf.b.c', 'conf.x.c', 'conf.b.x'],
          all: ['conf.b.c', 'conf.x.c', 'conf.b.x'],
        },
      );
    },
  },
  {
    id: 'shares.hash-pattern',
    group: 'shares',
    name: '`#` matches zero or more words (`a.#`, `#`, `a.#.z`, `#.z`)',
    async run(ctx) {
      const topics = ['conf', 'conf.z', 'conf.b.z', 'conf.b.c.z', 'conf.b', 'conf.b.z.x', 'other.z', 'z'];
      await checkRouting(ctx, { tail: ['conf.#'], everything: ['#'], inner: ['conf.#.z'], head: ['#.z'] }, topics, {
        tail: ['conf', 'conf.z', 'conf.b.z', 'conf.b.c.z', 'conf.b', 'conf.b.z.x'],
        everything: topics,
        inner: ['conf.z', 'conf.b.z', 'conf.b.c.z'],
        head: ['conf.z', 'conf.b.z', 'conf.b.c.z', 'other.z', 'z'],
      });
    },
  },
  {
    id: 'shares.overlapping-patterns',
    group: 'shares',
    name: 'a message matching several patterns of one subscription arrives once',
    async run(ctx) {
      await checkRouting(
        ctx,
        { overlapping: ['conf.a.b', 'conf.*.b', 'conf.#', '#'], twice: ['conf.a.b', 'conf.a.b'] },
        ['conf.a.b', 'conf.x.b', 'zzz'],
        { overlapping: ['conf.a.b', 'conf.x.b', 'zzz'], twice: ['conf.a.b'] },
      );
    },
  },
  {
    id: 'shares.segment-isolation',
    group: 'shares',
    name: 'segments isolate shares: a `#` subscriber on another segment gets nothing',
    async run(ctx) {
      const other = ctx.newSegment();
      const producer = await ctx.driver();
      await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('here'), { segment: ctx.segment, topics: ['#'] });
      await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('there'), { segment: other, topics: ['#'] });
      const here = await ctx.publishShares(producer, TOPIC, 5);
      const there = await ctx.publishShares(producer, TOPIC, 3, { segment: other });
      await ctx.recorder.waitForIds(there, { consumer: 'there', timeoutMs: ctx.timeoutMs, description: `shares on ${other}` });
      await ctx.expectExactlyOnce(here, { consumer: 'here', label: `subscriber on ${ctx.segment}` });
      assertExactlyOnce(there, ctx.recorder.ids('there'), `subscriber on ${other}`);
      for (const delivery of ctx.recorder.deliveries) {
        const expected = delivery.consumer === 'here' ? ctx.segment : other;
        check(
          delivery.message.segment === expected,
          `${delivery.consumer} got ${delivery.message.id} with segment ${show(delivery.message.segment)}; expected ${expected}`,
        );
      }
    },
  },
  {
    id: 'shares.ephemeral',
    group: 'shares',
    name: 'an unnamed subscription gets only what is published while it is open',
    async run(ctx) {
      const producer = await ctx.driver();
      const before = await ctx.publishShares(producer, TOPIC, 3);
      const first = await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('first'), {
        segment: ctx.segment,
        topics: ['#'],
      });
      const during = await ctx.publishShares(producer, TOPIC, 3);
      await ctx.expectExactlyOnce(during, { consumer: 'first', label: `open subscription (must not get ${before.join(', ')})` });
      await first.close();
      const closed = await ctx.publishShares(producer, TOPIC, 3);
      await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('second'), { segment: ctx.segment, topics: ['#'] });
      const after = await ctx.publishShares(producer, TOPIC, 2);
      await ctx.expectExactlyOnce(after, {
        consumer: 'second',
        label: `new unnamed subscription (must not get earlier ${[...before, ...during, ...closed].join(', ')})`,
      });
      assertExactlyOnce(during, ctx.recorder.ids('first'), 'closed subscription');
    },
  },
  {
    id: 'shares.from-latest',
    group: 'shares',
    name: "`from: 'latest'` is accepted by every driver and sees only what is published after opening",
    async run(ctx) {
      const producer = await ctx.driver();
      const before = await ctx.publishShares(producer, TOPIC, 2);
      await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('latest'), {
        segment: ctx.segment,
        topics: ['#'],
        from: 'latest',
      });
      const after = await ctx.publishShares(producer, TOPIC, 3);
      await ctx.expectExactlyOnce(after, { label: `subscription from latest (must not get ${before.join(', ')})` });
    },
  },
];
