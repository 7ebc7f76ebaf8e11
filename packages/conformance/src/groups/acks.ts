import {
  DEFAULT_PREFETCH,
  type DeadLetter,
  type DeadLetterTarget,
  type Driver,
  type JsonValue,
  type Message,
  type Subscription,
} from '@mq-drivers/core';
import { assertExactlyOnce, assertJsonEqual, check, list, show } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import { needs } from '../case.js';
import { type CaseContext, ConcurrencyMeter, pause } from '../harness.js';
import { waitFor, watchQuiet, withDeadline } from '../wait.js';

const KIND = 'conf.retry';
const TOPIC = 'conf.retry.event';

/** Checks that a redelivery kept every field but `attempt`, which must be `expectedAttempt`. */
function checkRedelivery(first: Message, again: Message, expectedAttempt: number, label: string): void {
  check(again.id === first.id, `${label}: redelivery has id ${show(again.id)}, the first delivery had ${first.id}`);
  check(
    again.attempt === expectedAttempt,
    `${label}: delivery #${expectedAttempt} of ${first.id} has attempt ${show(again.attempt)}, expected ${expectedAttempt}`,
  );
  assertJsonEqual(again.body, first.body, `${label}: body of ${first.id} on attempt ${expectedAttempt}`);
  check(again.segment === first.segment, `${label}: segment changed on redelivery: ${show(again.segment)} vs ${first.segment}`);
  check(again.topic === first.topic, `${label}: topic changed on redelivery: ${show(again.topic)} vs ${first.topic}`);
  check(
    again.publishedAt?.getTime?.() === first.publishedAt.getTime(),
    `${label}: publishedAt changed on redelivery: ${show(again.publishedAt)} vs ${first.publishedAt.toISOString()}`,
  );
  assertJsonEqual({ ...again.headers }, { ...first.headers }, `${label}: headers of ${first.id} on attempt ${expectedAttempt}`);
}

function attemptsOf(ctx: CaseContext, id: string, consumer?: string): number[] {
  return ctx.recorder
    .of(consumer)
    .filter((delivery) => delivery.message.id === id)
    .map((delivery) => delivery.message.attempt);
}

async function redeliveryCase(ctx: CaseContext, pattern: 'task' | 'share'): Promise<void> {
  const producer = await ctx.driver();
  const consumer = await ctx.driver();
  // Attempt 1 throws synchronously, attempt 2 rejects asynchronously, attempt 3 succeeds.
  const handler = ctx.recorder.handler('consumer', (message) => {
    if (message.attempt === 1) throw new Error('planned synchronous failure of attempt 1');
    if (message.attempt === 2) return pause(1).then(() => Promise.reject(new Error('planned asynchronous failure of attempt 2')));
  });
  if (pattern === 'task') await ctx.taskConsume(consumer, handler, { segment: ctx.segment, topic: KIND, maxAttempts: 5 });
  else await ctx.shareConsume(consumer, handler, { segment: ctx.segment, topics: ['conf.#'], maxAttempts: 5 });
  const headers = { 'trace-id': 't-9', tenant: 'acme' };
  const ids: string[] = [];
  for (const n of [1, 2]) {
    const body = { n, nested: { list: [1, 'two', null] } };
    const receipt =
      pattern === 'task'
        ? await producer.taskPublish(body, { segment: ctx.segment, headers })
        : await producer.sharePublish(body, { segment: ctx.segment, topic: TOPIC, headers });
    ids.push(receipt.id);
  }
  await waitFor(() => ids.every((id) => attemptsOf(ctx, id).length >= 3), {
    timeoutMs: ctx.timeoutMs * 2,
    description: 'each message to be delivered 3 times (2 planned failures, then success)',
    details: () => ids.map((id) => `${id}: attempts ${show(attemptsOf(ctx, id))}`).join('; '),
  });
  await watchQuiet(
    ctx.quietMs,
    () => {
      for (const id of ids) {
        const attempts = attemptsOf(ctx, id);
        check(
          attempts.join() === '1,2,3',
          `${id} was delivered with attempts ${show(attempts)}; expected exactly [1,2,3] (then acked)`,
        );
      }
      assertExactlyOnce(
        ids,
        ctx.recorder.ids().filter((_, index) => ctx.recorder.deliveries[index]!.message.attempt === 3),
        'successful deliveries',
      );
    },
    'deliveries after the ack',
  );
  for (const id of ids) {
    const deliveries = ctx.recorder.of().filter((delivery) => delivery.message.id === id);
    const first = deliveries[0]!.message;
    assertJsonEqual({ ...first.headers }, headers, `headers of ${id}`);
    for (const [index, delivery] of deliveries.entries()) checkRedelivery(first, delivery.message, index + 1, pattern);
  }
}

async function listDeadLetters(driver: Driver, target: DeadLetterTarget, ctx: CaseContext): Promise<DeadLetter[]> {
  const letters = await withDeadline(driver.listDeadLetters(target), ctx.timeoutMs, `listDeadLetters(${show(target)})`);
  check(Array.isArray(letters), `listDeadLetters(${show(target)}) resolved to ${show(letters)}; expected an array`);
  return letters;
}

/** Waits until the dead-letter store of `target` holds exactly `ids`. */
async function waitForDeadLetters(driver: Driver, target: DeadLetterTarget, ids: readonly string[], ctx: CaseContext) {
  let letters: DeadLetter[] = [];
  await waitFor(
    async () => {
      letters = await listDeadLetters(driver, target, ctx);
      const have = new Set(letters.map((letter) => letter.message?.id));
      return ids.every((id) => have.has(id));
    },
    {
      timeoutMs: ctx.timeoutMs * 2,
      intervalMs: 20,
      description: `dead letters ${list([...ids])} in ${show(target)}`,
      details: () => `listDeadLetters shows ${list(letters.map((letter) => letter.message?.id))}`,
    },
  );
  assertExactlyOnce(
    ids,
    letters.map((letter) => letter.message.id),
    `listDeadLetters(${show(target)})`,
  );
  return letters;
}

async function deadLetterCase(ctx: CaseContext, pattern: 'task' | 'share'): Promise<void> {
  const producer = await ctx.driver();
  const consumer = await ctx.driver();
  const handler = ctx.recorder.handler('consumer', (message) => {
    const body = message.body as { fail?: string };
    if (body.fail === 'error') throw new Error(`boom ${message.id}`);
    if (body.fail === 'string') throw `plain string failure ${message.id}`;
  });
  let subscription: Subscription;
  if (pattern === 'task') {
    subscription = await ctx.taskConsume(consumer, handler, { segment: ctx.segment, topic: KIND, maxAttempts: 3 });
  } else {
    subscription = await ctx.shareConsume(consumer, handler, { segment: ctx.segment, topics: ['conf.#'], maxAttempts: 3 });
    check(
      typeof subscription.name === 'string' && subscription.name.length > 0,
      `share subscription name is ${show(subscription.name)}; expected a (generated) name`,
    );
  }
  const target: DeadLetterTarget =
    pattern === 'task' ? { segment: ctx.segment, kind: KIND } : { segment: ctx.segment, subscription: subscription.name };
  const publish = async (body: JsonValue) =>
    (pattern === 'task'
      ? await producer.taskPublish(body, { segment: ctx.segment, headers: { origin: 'conf' } })
      : await producer.sharePublish(body, { segment: ctx.segment, topic: TOPIC, headers: { origin: 'conf' } })
    ).id;
  const errorId = await publish({ fail: 'error' });
  const stringId = await publish({ fail: 'string' });
  const goodId = await publish({ fail: 'no' });
  const letters = await waitForDeadLetters(consumer, target, [errorId, stringId], ctx);
  await watchQuiet(
    ctx.quietMs,
    () => {
      for (const id of [errorId, stringId]) {
        const attempts = attemptsOf(ctx, id);
        check(
          attempts.join() === '1,2,3',
          `${id} (always failing, maxAttempts 3) was delivered with attempts ${show(attempts)}; expected exactly [1,2,3], then the dead-letter store`,
        );
      }
      assertExactlyOnce(
        [goodId],
        ctx.recorder.ids().filter((id) => id === goodId),
        'the message that succeeded',
      );
    },
    'deliveries after dead-lettering',
  );
  for (const [id, text] of [
    [errorId, `boom ${errorId}`],
    [stringId, `plain string failure ${stringId}`],
  ] as const) {
    const letter = letters.find((entry) => entry.message.id === id)!;
    check(
      typeof letter.error === 'string' && letter.error.includes(text),
      `dead letter ${id}: error is ${show(letter.error)}; expected the handler's error text ${show(text)}`,
    );
    check(
      Object.prototype.toString.call(letter.failedAt) === '[object Date]' && Number.isFinite(letter.failedAt.getTime()),
      `dead letter ${id}: failedAt is ${show(letter.failedAt)}; expected a valid Date`,
    );
    const first = ctx.recorder.of().find((delivery) => delivery.message.id === id)!.message;
    assertJsonEqual(letter.message.body, first.body, `dead letter ${id}: body`);
    check(letter.message.segment === ctx.segment, `dead letter ${id}: segment ${show(letter.message.segment)}`);
    check(
      letter.message.topic === first.topic,
      `dead letter ${id}: topic ${show(letter.message.topic)}, expected ${first.topic}`,
    );
    assertJsonEqual({ ...letter.message.headers }, { origin: 'conf' }, `dead letter ${id}: headers`);
  }
  const elsewhere = { ...target, segment: ctx.newSegment() };
  const leaked = await listDeadLetters(producer, elsewhere, ctx);
  check(leaked.length === 0, `listDeadLetters on another segment shows ${list(leaked.map((letter) => letter.message?.id))}`);
  const fromProducer = await listDeadLetters(producer, target, ctx);
  assertExactlyOnce(
    [errorId, stringId],
    fromProducer.map((letter) => letter.message.id),
    'listDeadLetters from another driver on the same broker',
  );
}

export const ackCases: CaseDefinition[] = [
  {
    id: 'acks.task-redelivery',
    group: 'acks',
    name: 'a failed task is redelivered with attempt+1, the same id and every field intact, until it succeeds',
    async run(ctx) {
      await redeliveryCase(ctx, 'task');
    },
  },
  {
    id: 'acks.share-redelivery',
    group: 'acks',
    name: 'a failed share is redelivered with attempt+1, the same id and every field intact, until it succeeds',
    async run(ctx) {
      await redeliveryCase(ctx, 'share');
    },
  },
  {
    id: 'acks.task-dead-letter',
    group: 'acks',
    name: 'a task failing maxAttempts times goes to the dead-letter store with the error text and is not delivered again',
    skip: needs.deadLetter,
    async run(ctx) {
      await deadLetterCase(ctx, 'task');
    },
  },
  {
    id: 'acks.share-dead-letter',
    group: 'acks',
    name: 'a share failing maxAttempts times goes to the dead-letter store of its subscription and is not delivered again',
    skip: needs.deadLetter,
    async run(ctx) {
      await deadLetterCase(ctx, 'share');
    },
  },
  {
    id: 'acks.redrive',
    group: 'acks',
    name: 'redriveDeadLetters re-delivers with attempt 1 and the same id (all, or only given ids) and empties the store',
    skip: needs.deadLetter,
    async run(ctx) {
      const producer = await ctx.driver();
      const consumer = await ctx.driver();
      let failing = true;
      await ctx.taskConsume(
        consumer,
        ctx.recorder.handler('worker', () => {
          if (failing) throw new Error('failing until redrive');
        }),
        { segment: ctx.segment, topic: KIND, maxAttempts: 2 },
      );
      const target = { segment: ctx.segment, kind: KIND };
      const ids = await ctx.publishTasks(producer, 3);
      await waitForDeadLetters(producer, target, ids, ctx);
      const before = ctx.recorder.deliveries.length;
      failing = false;
      const [firstId, ...restIds] = ids as [string, ...string[]];
      const some = await withDeadline(
        producer.redriveDeadLetters(target, { ids: [firstId] }),
        ctx.timeoutMs,
        'redrive of one id',
      );
      check(some === 1, `redriveDeadLetters(target, {ids: [${firstId}]}) returned ${show(some)}; expected 1`);
      const redriven = () => ctx.recorder.deliveries.slice(before).map((delivery) => delivery.message);
      await waitFor(() => redriven().some((message) => message.id === firstId), {
        timeoutMs: ctx.timeoutMs,
        description: `redriven ${firstId} to be delivered`,
        details: () => `delivered since redrive: ${list(redriven().map((message) => message.id))}`,
      });
      await watchQuiet(
        ctx.quietMs,
        () =>
          assertExactlyOnce(
            [firstId],
            redriven().map((message) => message.id),
            'deliveries after redriving one id',
          ),
        'only the chosen id is redriven',
      );
      const remaining = await listDeadLetters(producer, target, ctx);
      assertExactlyOnce(
        restIds,
        remaining.map((letter) => letter.message.id),
        'dead letters left after redriving one id',
      );
      const rest = await withDeadline(producer.redriveDeadLetters(target), ctx.timeoutMs, 'redrive of all');
      check(rest === restIds.length, `redriveDeadLetters(target) returned ${show(rest)}; expected ${restIds.length}`);
      await waitFor(() => ids.every((id) => redriven().some((message) => message.id === id)), {
        timeoutMs: ctx.timeoutMs,
        description: 'every redriven message to be delivered',
        details: () => `delivered since redrive: ${list(redriven().map((message) => message.id))}`,
      });
      await watchQuiet(
        ctx.quietMs,
        () =>
          assertExactlyOnce(
            ids,
            redriven().map((message) => message.id),
            'deliveries after redrive',
          ),
        'duplicate redeliveries',
      );
      for (const message of redriven()) {
        check(message.attempt === 1, `redriven ${message.id} arrived with attempt ${show(message.attempt)}; expected 1`);
        const original = ctx.recorder.deliveries.find((delivery) => delivery.message.id === message.id)!.message;
        assertJsonEqual(message.body, original.body, `body of redriven ${message.id}`);
      }
      const after = await listDeadLetters(producer, target, ctx);
      check(after.length === 0, `dead-letter store still holds ${list(after.map((letter) => letter.message.id))} after redrive`);
      const none = await withDeadline(producer.redriveDeadLetters(target), ctx.timeoutMs, 'redrive of an empty store');
      check(none === 0, `redriveDeadLetters on an empty store returned ${show(none)}; expected 0`);
    },
  },
  {
    id: 'acks.handback-on-close',
    group: 'acks',
    name: 'a worker closed while its handler hangs hands the message back: another worker of the kind gets it (same id, attempt 1)',
    async run(ctx) {
      const producer = await ctx.driver();
      const hung = ctx.gate();
      const worker1 = await ctx.taskConsume(
        await ctx.driver(),
        ctx.recorder.handler('worker-1', () => hung.promise),
        { segment: ctx.segment, topic: KIND, prefetch: 1 },
      );
      const [id] = await ctx.publishTasks(producer, 1);
      await ctx.recorder.waitForIds([id!], {
        consumer: 'worker-1',
        timeoutMs: ctx.timeoutMs,
        description: 'worker-1 to get the task',
      });
      await ctx.taskConsume(await ctx.driver(), ctx.recorder.handler('worker-2'), {
        segment: ctx.segment,
        topic: KIND,
        prefetch: 1,
      });
      const started = Date.now();
      await withDeadline(
        worker1.close({ timeoutMs: 200 }),
        ctx.timeoutMs,
        'subscription.close({timeoutMs: 200}) to resolve while its handler hangs',
      );
      check(
        worker1.closed === true,
        `subscription.closed is ${show(worker1.closed)} after close() resolved (took ${Date.now() - started} ms)`,
      );
      await ctx.recorder.waitForIds([id!], {
        consumer: 'worker-2',
        timeoutMs: ctx.timeoutMs,
        description: `worker-2 to get ${id} handed back by the closed worker-1`,
      });
      const again = ctx.recorder.of('worker-2')[0]!.message;
      const first = ctx.recorder.of('worker-1')[0]!.message;
      check(
        again.attempt === 1,
        `handed-back ${id} arrived with attempt ${again.attempt}; a hand-back on close must not count an attempt`,
      );
      assertJsonEqual(again.body, first.body, `body of handed-back ${id}`);
      // The late handler of the closed worker now fails: that must have no effect.
      hung.fail(new Error('late failure after hand-back'));
      await watchQuiet(
        ctx.quietMs,
        () => {
          assertExactlyOnce([id!], ctx.recorder.ids('worker-2'), 'worker-2');
          assertExactlyOnce([id!], ctx.recorder.ids('worker-1'), 'worker-1 (closed)');
        },
        'after the closed worker’s late handler failed',
      );
    },
  },
  {
    id: 'acks.retry-survives-close',
    group: 'acks',
    name: 'a failed task waiting for redelivery is not lost when its only worker closes: the next worker gets it (same id, attempt > 1)',
    async run(ctx) {
      const producer = await ctx.driver();
      const failing = await ctx.taskConsume(
        await ctx.driver(),
        ctx.recorder.handler('failing', () => {
          throw new Error('always fails');
        }),
        { segment: ctx.segment, topic: KIND, prefetch: 1, maxAttempts: 1000 },
      );
      const [id] = await ctx.publishTasks(producer, 1);
      await ctx.recorder.waitForIds([id!], {
        consumer: 'failing',
        timeoutMs: ctx.timeoutMs,
        description: 'the first, failing attempt',
      });
      await withDeadline(failing.close(), ctx.timeoutMs, 'close() of the failing worker');
      await ctx.taskConsume(await ctx.driver(), ctx.recorder.handler('next'), { segment: ctx.segment, topic: KIND });
      await ctx.expectExactlyOnce([id!], { consumer: 'next', label: 'the next worker (after the failing one closed)' });
      const message = ctx.recorder.of('next')[0]!.message;
      const failures = ctx.recorder.of('failing').length;
      check(
        message.attempt === failures + 1,
        `after ${failures} failed attempt(s) the next worker got ${id} with attempt ${show(message.attempt)}; expected ${failures + 1}`,
      );
    },
  },
  {
    id: 'acks.close-hands-back-unstarted',
    group: 'acks',
    name: 'closing a busy worker loses nothing: in-flight tasks finish, unstarted ones go to the next worker, each exactly once',
    async run(ctx) {
      const producer = await ctx.driver();
      const first = await ctx.taskConsume(
        await ctx.driver(),
        ctx.recorder.handler('first', () => pause(20)),
        { segment: ctx.segment, topic: KIND, prefetch: 4 },
      );
      // All at once: published one by one, a driver whose publish is slower than a handler (e.g. a
      // tee with an S3 mirror) lets the worker finish each task before the next one exists.
      const receipts = await withDeadline(
        Promise.all(Array.from({ length: ctx.messageCount }, (_, n) => producer.taskPublish({ n }, { segment: ctx.segment }))),
        ctx.timeoutMs,
        'publishing the tasks',
      );
      const ids = receipts.map((receipt) => receipt.id);
      await ctx.recorder.waitForCount(2, {
        consumer: 'first',
        timeoutMs: ctx.timeoutMs,
        description: 'the first worker to start',
      });
      await withDeadline(first.close(), ctx.timeoutMs, 'close() of a busy worker');
      const handled = ctx.recorder.ids('first');
      check(
        handled.length < ids.length,
        `the first worker (prefetch 4, 20 ms handlers) had been handed all ${ids.length} tasks when close() was called; prefetch cannot have bounded it`,
      );
      await ctx.taskConsume(await ctx.driver(), ctx.recorder.handler('second'), { segment: ctx.segment, topic: KIND });
      await ctx.expectExactlyOnce(ids, { label: 'both workers together (first closed mid-way)' });
    },
  },
  {
    id: 'acks.prefetch-bound',
    group: 'acks',
    name: 'prefetch is never exceeded (tasks prefetch 3, shares prefetch 2, default prefetch ≤ 10)',
    async run(ctx) {
      const producer = await ctx.driver();
      const tasks = new ConcurrencyMeter();
      const shares = new ConcurrencyMeter();
      const defaults = new ConcurrencyMeter();
      await ctx.taskConsume(
        await ctx.driver(),
        ctx.recorder.handler('tasks', () => tasks.around(() => pause(15))),
        { segment: ctx.segment, topic: KIND, prefetch: 3 },
      );
      await ctx.taskConsume(
        await ctx.driver(),
        ctx.recorder.handler('defaults', () => defaults.around(() => pause(15))),
        { segment: ctx.segment, topic: 'conf.defaults' },
      );
      await ctx.shareConsume(
        await ctx.driver(),
        ctx.recorder.handler('shares', () => shares.around(() => pause(15))),
        { segment: ctx.segment, topics: ['conf.#'], prefetch: 2 },
      );
      const count = Math.max(ctx.messageCount, 25);
      const taskIds = (
        await Promise.all(Array.from({ length: count }, (_, n) => producer.taskPublish({ n }, { segment: ctx.segment })))
      ).map((receipt) => receipt.id);
      const shareIds = (
        await Promise.all(
          Array.from({ length: Math.ceil(count / 2) }, (_, n) =>
            producer.sharePublish({ n }, { segment: ctx.segment, topic: TOPIC }),
          ),
        )
      ).map((receipt) => receipt.id);
      await ctx.recorder.waitForIds(taskIds, { consumer: 'tasks', timeoutMs: ctx.timeoutMs, description: 'tasks' });
      await ctx.recorder.waitForIds(taskIds, {
        consumer: 'defaults',
        timeoutMs: ctx.timeoutMs,
        description: 'default-prefetch tasks',
      });
      await ctx.expectExactlyOnce(shareIds, { consumer: 'shares', label: 'shares' });
      assertExactlyOnce(taskIds, ctx.recorder.ids('tasks'), 'prefetch-3 worker');
      assertExactlyOnce(taskIds, ctx.recorder.ids('defaults'), 'default-prefetch worker');
      check(tasks.max <= 3, `a worker with prefetch 3 ran ${tasks.max} handlers at once`);
      check(shares.max <= 2, `a subscriber with prefetch 2 ran ${shares.max} handlers at once`);
      check(
        defaults.max <= DEFAULT_PREFETCH,
        `a worker with the default prefetch ran ${defaults.max} handlers at once (default is ${DEFAULT_PREFETCH})`,
      );
      check(tasks.max >= 1 && shares.max >= 1, 'no handler ran');
    },
  },
];
