import { type Driver, DriverClosedError, MqError, SPECIFICATION_VERSION } from '@mq-drivers/core';
import { assertExactlyOnce, check, fail, jsonEqual, show } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import { watchQuiet, withDeadline } from '../wait.js';

const KIND = 'conf.life';
const TOPIC = 'conf.life.event';

/**
 * Calls `call` and returns the error it rejects with. A method that throws synchronously instead
 * of returning a rejected promise breaks the contract (every method returns a promise).
 */
export async function rejectionOf(call: () => unknown, timeoutMs: number, description: string): Promise<unknown> {
  let result: unknown;
  try {
    result = call();
  } catch (error) {
    fail(`${description} threw synchronously (${show(error)}); every driver method must return a rejected promise instead`);
  }
  check(
    result !== null && typeof (result as Promise<unknown>)?.then === 'function',
    `${description} returned ${show(result)}; expected a promise`,
  );
  try {
    await withDeadline(Promise.resolve(result), timeoutMs, description);
  } catch (error) {
    return error;
  }
  return fail(`${description} resolved; expected it to reject`);
}

function methodsAfterClose(driver: Driver, segment: string): [string, () => unknown][] {
  const handler = () => fail('a handler registered after driver.close() was called');
  return [
    ['taskPublish', () => driver.taskPublish({ late: true }, { segment })],
    ['sharePublish', () => driver.sharePublish({ late: true }, { segment, topic: TOPIC })],
    ['taskConsume', () => driver.taskConsume(handler, { segment, topic: KIND })],
    ['shareConsume', () => driver.shareConsume(handler, { segment, topics: ['#'] })],
    ['listDeadLetters', () => driver.listDeadLetters({ segment, kind: KIND })],
    ['redriveDeadLetters', () => driver.redriveDeadLetters({ segment, kind: KIND })],
  ];
}

export const lifecycleCases: CaseDefinition[] = [
  {
    id: 'lifecycle.capabilities',
    group: 'lifecycle',
    name: "a driver reports specificationVersion 'v1', a name and well-formed capabilities, the same on every instance",
    async run(ctx) {
      const [a, b] = [await ctx.driver(), await ctx.driver()];
      check(
        a.specificationVersion === SPECIFICATION_VERSION,
        `specificationVersion is ${show(a.specificationVersion)}; expected ${JSON.stringify(SPECIFICATION_VERSION)}`,
      );
      check(typeof a.name === 'string' && a.name.length > 0, `driver.name is ${show(a.name)}; expected a non-empty string`);
      const caps = a.capabilities;
      const problems: string[] = [];
      if (typeof caps?.durable !== 'boolean') problems.push(`durable is ${show(caps?.durable)} (boolean expected)`);
      if (typeof caps?.replay !== 'boolean') problems.push(`replay is ${show(caps?.replay)} (boolean expected)`);
      if (typeof caps?.deadLetter !== 'boolean') problems.push(`deadLetter is ${show(caps?.deadLetter)} (boolean expected)`);
      if (caps?.ordering !== 'per-publisher' && caps?.ordering !== 'none') {
        problems.push(`ordering is ${show(caps?.ordering)} ('per-publisher' or 'none' expected)`);
      }
      if (!Number.isSafeInteger(caps?.maxMessageBytes) || caps.maxMessageBytes < 1024) {
        problems.push(`maxMessageBytes is ${show(caps?.maxMessageBytes)} (a whole number >= 1024 expected)`);
      }
      const refused = caps?.refusedHeaders;
      if (
        refused !== undefined &&
        (!Array.isArray(refused) || !refused.every((entry) => typeof entry === 'string' && entry.length > 0))
      ) {
        problems.push(`refusedHeaders is ${show(refused)} (absent, or an array of header names expected)`);
      }
      check(problems.length === 0, () => `malformed capabilities: ${problems.join('; ')}`);
      check(
        jsonEqual({ ...a.capabilities }, { ...b.capabilities }) && a.name === b.name,
        `two drivers from createDriver() differ: ${a.name} ${show(a.capabilities)} vs ${b.name} ${show(b.capabilities)}`,
      );
      check(jsonEqual({ ...a.capabilities }, { ...ctx.capabilities }), 'capabilities changed between drivers of one run');
    },
  },
  {
    id: 'lifecycle.close-drains',
    group: 'lifecycle',
    name: 'subscription close waits for an in-flight handler to finish, then the message counts as acked (no redelivery)',
    async run(ctx) {
      const producer = await ctx.driver();
      const gate = ctx.gate();
      let finishedAt = 0;
      const subscription = await ctx.taskConsume(
        await ctx.driver(),
        ctx.recorder.handler('draining', async () => {
          await gate.promise;
          finishedAt = Date.now();
        }),
        { segment: ctx.segment, topic: KIND },
      );
      const [id] = await ctx.publishTasks(producer, 1);
      await ctx.recorder.waitForIds([id!], { timeoutMs: ctx.timeoutMs, description: 'the handler to start' });
      let closedAt = 0;
      let closeError: unknown;
      const closing = subscription.close({ timeoutMs: ctx.timeoutMs * 3 }).then(
        () => {
          closedAt = Date.now();
        },
        (error: unknown) => {
          closeError = error;
          closedAt = Date.now();
        },
      );
      await watchQuiet(
        ctx.quietMs,
        () =>
          check(
            closedAt === 0,
            'subscription.close() resolved while its handler was still running; close must drain in-flight handlers',
          ),
        'close must wait for the running handler',
      );
      gate.open();
      await withDeadline(closing, ctx.timeoutMs, 'close() to resolve after the handler finished');
      check(closeError === undefined, () => `subscription.close() rejected: ${show(closeError)}`);
      check(closedAt >= finishedAt && finishedAt > 0, 'close() resolved before the handler finished');
      check(subscription.closed === true, `subscription.closed is ${show(subscription.closed)} after close()`);
      await ctx.taskConsume(await ctx.driver(), ctx.recorder.handler('next'), { segment: ctx.segment, topic: KIND });
      const [fresh] = await ctx.publishTasks(producer, 1);
      await ctx.expectExactlyOnce([fresh!], {
        consumer: 'next',
        label: `the next worker (${id} was acked by the drained handler; it must not come back)`,
      });
      assertExactlyOnce([id!], ctx.recorder.ids('draining'), 'the closed worker');
    },
  },
  {
    id: 'lifecycle.close-stops-delivery',
    group: 'lifecycle',
    name: 'a closed subscription gets nothing more (tasks and shares)',
    async run(ctx) {
      const producer = await ctx.driver();
      const consumer = await ctx.driver();
      const worker = await ctx.taskConsume(consumer, ctx.recorder.handler('worker'), { segment: ctx.segment, topic: KIND });
      const subscriber = await ctx.shareConsume(consumer, ctx.recorder.handler('subscriber'), {
        segment: ctx.segment,
        topics: ['#'],
      });
      await Promise.all([worker.close(), subscriber.close()]);
      check(worker.closed && subscriber.closed, 'subscription.closed is not true after close()');
      await ctx.publishTasks(producer, 2);
      await ctx.publishShares(producer, TOPIC, 2);
      await ctx.expectNothing(['worker', 'subscriber'], 'closed subscriptions');
    },
  },
  {
    id: 'lifecycle.driver-close-closes-subscriptions',
    group: 'lifecycle',
    name: 'driver.close() closes its subscriptions: their handlers are not called afterwards',
    async run(ctx) {
      const producer = await ctx.driver();
      const consumer = await ctx.driver();
      const worker = await ctx.taskConsume(consumer, ctx.recorder.handler('worker'), { segment: ctx.segment, topic: KIND });
      const subscriber = await ctx.shareConsume(consumer, ctx.recorder.handler('subscriber'), {
        segment: ctx.segment,
        topics: ['#'],
      });
      const [before] = await ctx.publishTasks(producer, 1);
      await ctx.recorder.waitForIds([before!], {
        consumer: 'worker',
        timeoutMs: ctx.timeoutMs,
        description: 'a task before close',
      });
      await withDeadline(consumer.close(), ctx.timeoutMs, 'driver.close()');
      check(worker.closed === true, `task subscription.closed is ${show(worker.closed)} after driver.close()`);
      check(subscriber.closed === true, `share subscription.closed is ${show(subscriber.closed)} after driver.close()`);
      await ctx.publishTasks(producer, 2);
      await ctx.publishShares(producer, TOPIC, 2);
      await ctx.expectNothing('subscriber', 'subscriber of a closed driver');
      await ctx.expectNothing('worker', 'worker of a closed driver', [before!]);
    },
  },
  {
    id: 'lifecycle.use-after-close',
    group: 'lifecycle',
    name: 'after driver.close() every method rejects with DriverClosedError',
    async run(ctx) {
      const driver = await ctx.driver();
      await withDeadline(driver.close(), ctx.timeoutMs, 'driver.close()');
      const problems: string[] = [];
      for (const [method, call] of methodsAfterClose(driver, ctx.segment)) {
        const error = await rejectionOf(call, ctx.timeoutMs, `${method}() after close()`).catch((e: Error) => {
          problems.push(e.message);
          return undefined;
        });
        if (error === undefined) continue;
        if (!DriverClosedError.isInstance(error))
          problems.push(`${method}() after close() rejected with ${show(error)}, not DriverClosedError`);
        else if (!MqError.isInstance(error) || !error.message.startsWith(`${driver.name}`)) {
          problems.push(`${method}(): DriverClosedError message ${show(error.message)} does not start with the driver name`);
        }
      }
      check(problems.length === 0, () => problems.join('; '));
    },
  },
  {
    id: 'lifecycle.idempotent-close',
    group: 'lifecycle',
    name: 'close is idempotent: driver and subscription close twice, concurrently and again, all resolve',
    async run(ctx) {
      const driver = await ctx.driver();
      const subscription = await ctx.taskConsume(driver, ctx.recorder.handler('worker'), { segment: ctx.segment, topic: KIND });
      await withDeadline(
        Promise.all([subscription.close(), subscription.close()]),
        ctx.timeoutMs,
        'two concurrent subscription.close()',
      );
      await withDeadline(subscription.close(), ctx.timeoutMs, 'a third subscription.close()');
      const other = await ctx.shareConsume(driver, ctx.recorder.handler('subscriber'), { segment: ctx.segment, topics: ['#'] });
      await withDeadline(Promise.all([driver.close(), driver.close()]), ctx.timeoutMs, 'two concurrent driver.close()');
      await withDeadline(driver.close(), ctx.timeoutMs, 'a third driver.close()');
      await withDeadline(other.close(), ctx.timeoutMs, 'subscription.close() after driver.close()');
      check(other.closed === true, 'subscription not closed after driver.close()');
      const second = await ctx.driver();
      await withDeadline(
        Promise.all([second.close(), second.close(), second.close()]),
        ctx.timeoutMs,
        'three concurrent close() of an unused driver',
      );
    },
  },
];
