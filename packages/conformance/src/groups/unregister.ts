import {
  type DeadLetterTarget,
  type Driver,
  DriverClosedError,
  InvalidArgumentError,
  MqError,
  TopologyError,
  type UnregisterResult,
  UnsupportedError,
} from '@mq-drivers/core';
import { check, show } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import { needs } from '../case.js';
import type { CaseContext } from '../harness.js';
import { waitFor, withDeadline } from '../wait.js';
import { rejectionOf } from './lifecycle.js';

const KEEP = 'conf.unregister.keep';
const DROP = 'conf.unregister.drop';
const TOPIC = 'conf.unregister.event';

/** `driver.unregister(target)`, checked to be there and to resolve to `{dropped}`. */
async function unregister(ctx: CaseContext, driver: Driver, target: DeadLetterTarget): Promise<UnregisterResult> {
  check(typeof driver.unregister === 'function', 'capabilities.unregister is true but driver.unregister is not a function');
  const result = await withDeadline(driver.unregister(target), ctx.timeoutMs, `unregister(${show(target)})`);
  check(
    result !== null &&
      typeof result === 'object' &&
      (result.dropped === undefined || (Number.isInteger(result.dropped) && result.dropped >= 0)),
    `unregister(${show(target)}) resolved to ${show(result)}; expected {dropped: a count >= 0, or undefined}`,
  );
  return result;
}

function checkDropped(result: UnregisterResult, waiting: number, label: string): void {
  check(
    result.dropped === undefined || result.dropped === waiting,
    `${label}: unregister reported dropped ${show(result.dropped)}; ${waiting} messages were waiting (or undefined if unknown)`,
  );
}

/** Expects `call` to reject with TopologyError (in use) naming the driver. */
async function expectInUse(ctx: CaseContext, driverName: string, call: () => unknown, label: string): Promise<void> {
  const error = await rejectionOf(call, ctx.timeoutMs, label);
  check(TopologyError.isInstance(error), `${label} rejected with ${show(error)}; expected TopologyError (a consumer is open)`);
  check(
    error.message.startsWith(driverName),
    `${label}: error message ${show(error.message)} does not start with the driver name ${driverName}`,
  );
}

export const unregisterCases: CaseDefinition[] = [
  {
    id: 'unregister.kind',
    group: 'unregister',
    name: 'an unregistered kind keeps nothing: what waited for it and its dead letters are gone, a worker that starts later gets only newer tasks, other kinds are untouched',
    skip: needs.unregister,
    budget: 6,
    async run(ctx) {
      const producer = await ctx.driver();
      const keeper = await ctx.driver();
      const dropper = await ctx.driver();
      const segment = ctx.segment;
      await ctx.taskConsume(keeper, ctx.recorder.handler('keep'), { segment, topic: KEEP });
      const failing = ctx.recorder.handler('drop', (message) => {
        if ((message.body as { fail?: boolean }).fail) throw new Error('planned failure');
      });
      const dropWorker = await ctx.taskConsume(dropper, failing, { segment, topic: DROP, maxAttempts: 1 });
      const first = await ctx.publishTasks(producer, 2);
      const doomed = await ctx.publishTasks(producer, 1, { body: () => ({ fail: true }) });
      await ctx.recorder.waitForIds([...first, ...doomed], {
        consumer: 'drop',
        timeoutMs: ctx.timeoutMs,
        description: 'the drop kind',
      });
      if (ctx.capabilities.deadLetter) {
        await waitFor(async () => (await producer.listDeadLetters({ segment, kind: DROP })).length === 1, {
          timeoutMs: ctx.timeoutMs,
          intervalMs: 20,
          description: `the failed task ${doomed[0]} in the dead letters of ${DROP}`,
        });
      }
      await withDeadline(dropWorker.close(), ctx.timeoutMs, 'the drop worker close()');
      // Kept for the kind while no worker runs (durable drivers); then the kind is removed.
      const waiting = await ctx.publishTasks(producer, 3);
      const result = await unregister(ctx, producer, { segment, kind: DROP });
      checkDropped(result, ctx.capabilities.durable ? waiting.length : 0, `kind ${DROP}`);
      if (ctx.capabilities.deadLetter) {
        const letters = await producer.listDeadLetters({ segment, kind: DROP });
        check(
          letters.length === 0,
          `dead letters of the unregistered kind are still listed: ${show(letters.map((l) => l.message.id))}`,
        );
      }
      const meanwhile = await ctx.publishTasks(producer, 2);
      await ctx.taskConsume(await ctx.driver(), ctx.recorder.handler('drop-again'), { segment, topic: DROP });
      const after = await ctx.publishTasks(producer, 2);
      await ctx.expectExactlyOnce(after, {
        consumer: 'drop-again',
        label: `a worker of ${DROP} started after unregister (nothing published before it started)`,
      });
      await ctx.expectExactlyOnce([...first, ...doomed, ...waiting, ...meanwhile, ...after], {
        consumer: 'keep',
        label: `the other kind ${KEEP}, untouched`,
      });
    },
  },
  {
    id: 'unregister.subscription',
    group: 'unregister',
    name: 'an unregistered named subscription keeps nothing: reopened by its name it gets only what is published after',
    skip: (capabilities) => needs.unregister(capabilities) ?? needs.durable(capabilities),
    budget: 6,
    async run(ctx) {
      const producer = await ctx.driver();
      const options = { segment: ctx.segment, topics: ['conf.unregister.#'], name: 'conf-gone' };
      const first = await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('one'), options);
      const before = await ctx.publishShares(producer, TOPIC, 2);
      await ctx.expectExactlyOnce(before, { consumer: 'one', label: 'named subscription conf-gone (first run)' });
      await withDeadline(first.close(), ctx.timeoutMs, 'subscription.close()');
      const waiting = await ctx.publishShares(producer, TOPIC, 3);
      checkDropped(await unregister(ctx, producer, { segment: ctx.segment, subscription: 'conf-gone' }), 3, 'conf-gone');
      await ctx.shareConsume(await ctx.driver(), ctx.recorder.handler('again'), options);
      const after = await ctx.publishShares(producer, TOPIC, 2);
      await ctx.expectExactlyOnce(after, {
        consumer: 'again',
        label: `conf-gone reopened after unregister (not the ${waiting.length} kept before it)`,
      });
    },
  },
  {
    id: 'unregister.in-use',
    group: 'unregister',
    name: 'unregister is refused with TopologyError while a worker (also in another driver) or a subscriber of it is open, and removes nothing',
    skip: needs.unregister,
    budget: 6,
    async run(ctx) {
      const producer = await ctx.driver();
      const consumer = await ctx.driver();
      const segment = ctx.segment;
      await ctx.taskConsume(consumer, ctx.recorder.handler('worker'), { segment, topic: DROP });
      await ctx.shareConsume(consumer, ctx.recorder.handler('subscriber'), {
        ...{ segment, topics: [TOPIC] },
        name: 'conf-busy',
      });
      for (const [driver, whose] of [
        [consumer, 'the same driver'],
        [producer, 'another driver'],
      ] as const) {
        await expectInUse(
          ctx,
          consumer.name,
          () => driver.unregister?.({ segment, kind: DROP }),
          `unregister of kind ${DROP} from ${whose} while its worker is open`,
        );
      }
      // Only the same driver: a broker may not see share subscribers of other clients (S3 cannot).
      await expectInUse(
        ctx,
        consumer.name,
        () => consumer.unregister?.({ segment, subscription: 'conf-busy' }),
        'unregister of subscription conf-busy from the same driver while it is open',
      );
      const tasks = await ctx.publishTasks(producer, 2);
      const shares = await ctx.publishShares(producer, TOPIC, 2);
      await ctx.expectExactlyOnce(tasks, { consumer: 'worker', label: 'the worker after the refused unregister' });
      await ctx.expectExactlyOnce(shares, { consumer: 'subscriber', label: 'the subscriber after the refused unregister' });
    },
  },
  {
    id: 'unregister.edges',
    group: 'unregister',
    name: 'unregister of what does not exist resolves {dropped: 0}; a bad target is an InvalidArgumentError; after close it rejects with DriverClosedError',
    skip: needs.unregister,
    async run(ctx) {
      const driver = await ctx.driver();
      const none = await unregister(ctx, driver, { segment: ctx.segment, kind: 'conf.unregister.never' });
      check(none.dropped === 0, `unregister of a kind never registered resolved ${show(none)}; expected {dropped: 0}`);
      const noSub = await unregister(ctx, driver, { segment: ctx.segment, subscription: 'conf-never' });
      check(noSub.dropped === 0, `unregister of a subscription never opened resolved ${show(noSub)}; expected {dropped: 0}`);
      for (const [target, argument] of [
        [{ segment: ctx.segment, kind: 'conf.*' }, 'target.kind'],
        [{ segment: 'bad segment', kind: KEEP }, 'target.segment'],
        [{ segment: ctx.segment }, 'target'],
      ] as const) {
        const error = await rejectionOf(
          () => driver.unregister?.(target as DeadLetterTarget),
          ctx.timeoutMs,
          `unregister(${show(target)})`,
        );
        check(
          InvalidArgumentError.isInstance(error) && error.argument === argument,
          `unregister(${show(target)}) rejected with ${show(error)}; expected InvalidArgumentError naming ${argument}`,
        );
      }
      await withDeadline(driver.close(), ctx.timeoutMs, 'driver.close()');
      const closed = await rejectionOf(
        () => driver.unregister?.({ segment: ctx.segment, kind: KEEP }),
        ctx.timeoutMs,
        'unregister() after close()',
      );
      check(
        DriverClosedError.isInstance(closed),
        `unregister() after close() rejected with ${show(closed)}; expected DriverClosedError`,
      );
    },
  },
  {
    id: 'unregister.unsupported',
    group: 'unregister',
    name: 'without the unregister capability, driver.unregister is absent or rejects with UnsupportedError(unregister)',
    skip: (capabilities) => (capabilities.unregister ? 'driver has the unregister capability' : undefined),
    async run(ctx) {
      const driver = await ctx.driver();
      if (driver.unregister === undefined) return;
      const error = await rejectionOf(
        () => driver.unregister?.({ segment: ctx.segment, kind: KEEP }),
        ctx.timeoutMs,
        'unregister() without the capability',
      );
      check(
        UnsupportedError.isInstance(error) && error.feature === 'unregister',
        `unregister() without the capability rejected with ${show(error)}; expected UnsupportedError(unregister)`,
      );
      check(MqError.isInstance(error) && error.message.startsWith(driver.name), 'the error message starts with the driver name');
    },
  },
];
