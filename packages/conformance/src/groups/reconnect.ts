import type { Driver } from '@mq-drivers/core';
import { check, list, show } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import { type CaseContext, ConcurrencyMeter, pause } from '../harness.js';
import { waitFor, watchQuiet, withDeadline } from '../wait.js';

const KIND = 'conf.reconnect';
const TOPIC = 'conf.reconnect.event';

const noHook = (_: unknown, options: { reconnect: unknown }) =>
  options.reconnect === undefined ? 'the harness gives no `reconnect` hook' : undefined;

/**
 * Publishes until confirmed or the deadline: a publish may be refused while the connection is
 * down (it was not confirmed, so it may be lost), but the driver must recover within timeoutMs.
 * Retries reuse the message id.
 */
async function publishConfirmed(ctx: CaseContext, producer: Driver, kind: 'task' | 'share', index: number, failures: string[]) {
  const id = `conf-reconnect-${kind}-${index}-${ctx.segment}`;
  const started = Date.now();
  for (;;) {
    try {
      const receipt =
        kind === 'task'
          ? await withDeadline(
              producer.taskPublish({ index }, { segment: ctx.segment, id }),
              ctx.timeoutMs,
              `taskPublish #${index}`,
            )
          : await withDeadline(
              producer.sharePublish({ index }, { segment: ctx.segment, topic: TOPIC, id }),
              ctx.timeoutMs,
              `sharePublish #${index}`,
            );
      check(receipt.id === id, `publish with id ${id} returned receipt id ${show(receipt.id)}`);
      return id;
    } catch (error) {
      failures.push(`${kind} #${index}: ${show(error)}`);
      if (Date.now() - started > ctx.timeoutMs) {
        throw new Error(
          `publishing did not recover within ${ctx.timeoutMs} ms after reconnect; failures: ${failures.join('; ')}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

export const reconnectCases: CaseDefinition[] = [
  {
    id: 'reconnect.keeps-working',
    group: 'reconnect',
    name: 'publish and consume keep working across a broken connection; no confirmed message is lost (duplicates allowed)',
    skip: noHook,
    budget: 8,
    async run(ctx) {
      const producer = await ctx.driver();
      const consumer = await ctx.driver();
      await ctx.taskConsume(consumer, ctx.recorder.handler('worker'), { segment: ctx.segment, topic: KIND });
      await ctx.shareConsume(consumer, ctx.recorder.handler('subscriber'), { segment: ctx.segment, topics: ['#'] });
      const failures: string[] = [];
      const tasks: string[] = [];
      const shares: string[] = [];
      const half = Math.ceil(ctx.messageCount / 2);
      for (let index = 0; index < half; index++) {
        tasks.push(await publishConfirmed(ctx, producer, 'task', index, failures));
        shares.push(await publishConfirmed(ctx, producer, 'share', index, failures));
      }
      await ctx.recorder.waitForIds(tasks, {
        consumer: 'worker',
        timeoutMs: ctx.timeoutMs,
        description: 'tasks before reconnect',
      });
      // Publishing continues while the connections are being broken.
      let index = half;
      let hookDone = false;
      const during = (async () => {
        while (!hookDone) {
          tasks.push(await publishConfirmed(ctx, producer, 'task', index, failures));
          shares.push(await publishConfirmed(ctx, producer, 'share', index, failures));
          index++;
        }
      })();
      await withDeadline(ctx.options.reconnect!(), ctx.timeoutMs * 3, 'the reconnect hook');
      hookDone = true;
      await during;
      for (let end = index + half; index < end; index++) {
        tasks.push(await publishConfirmed(ctx, producer, 'task', index, failures));
        shares.push(await publishConfirmed(ctx, producer, 'share', index, failures));
      }
      for (const [consumerName, ids] of [
        ['worker', tasks],
        ['subscriber', shares],
      ] as const) {
        await waitFor(() => ids.every((id) => ctx.recorder.ids(consumerName).includes(id)), {
          timeoutMs: ctx.timeoutMs * 2,
          description: `every confirmed message at the ${consumerName} (same subscription as before the reconnect)`,
          details: () => {
            const seen = new Set(ctx.recorder.ids(consumerName));
            return `lost ${list(ids.filter((id) => !seen.has(id)))}; publish failures (not confirmed): ${failures.length}`;
          },
        });
      }
    },
  },
  {
    id: 'reconnect.prefetch-bound',
    group: 'reconnect',
    name: 'across a broken connection prefetch still bounds the running handlers, and no message runs in two handlers of one subscription at once',
    skip: noHook,
    budget: 8,
    async run(ctx) {
      const prefetch = 3;
      const producer = await ctx.driver();
      const consumer = await ctx.driver();
      const meter = new ConcurrencyMeter();
      const running = new Map<string, number>();
      const overlaps: string[] = [];
      // Handlers hang until the gate opens: they are still running while the connection breaks,
      // so a driver that resumes with a fresh prefetch window (or starts the redelivered copies of
      // running messages) shows it before any of them finishes.
      const gate = ctx.gate();
      const handler = ctx.recorder.handler('worker', (message) =>
        meter.around(async () => {
          const copies = (running.get(message.id) ?? 0) + 1;
          running.set(message.id, copies);
          if (copies > 1)
            overlaps.push(`${message.id} (attempt ${message.attempt}) started while ${copies - 1} run(s) of it were still going`);
          try {
            await gate.promise;
            await pause(5);
          } finally {
            running.set(message.id, (running.get(message.id) ?? 1) - 1);
          }
        }),
      );
      await ctx.taskConsume(consumer, handler, { segment: ctx.segment, topic: KIND, prefetch });
      // A probe on the same consumer driver tells when its connection is back after the hook.
      await ctx.taskConsume(consumer, ctx.recorder.handler('probe'), {
        segment: ctx.segment,
        topic: `${KIND}.probe`,
        prefetch: 1,
      });
      const failures: string[] = [];
      const ids: string[] = [];
      for (let index = 0; index < prefetch * 4; index++) ids.push(await publishConfirmed(ctx, producer, 'task', index, failures));
      await waitFor(() => meter.running >= 1, {
        timeoutMs: ctx.timeoutMs,
        description: 'a handler running before the reconnect',
      });
      // A driver that fills its prefetch shows it within moments; one that does not is not wrong.
      await waitFor(() => meter.running === prefetch, { timeoutMs: ctx.quietMs * 4, description: 'a full prefetch' }).catch(
        () => undefined,
      );
      await withDeadline(ctx.options.reconnect!(), ctx.timeoutMs * 3, 'the reconnect hook');
      const probe = await publishConfirmed(ctx, producer, 'task', ids.length, failures);
      await ctx.recorder.waitForIds([probe], {
        consumer: 'probe',
        timeoutMs: ctx.timeoutMs * 2,
        description: 'the probe task at the consumer driver (its connection is back)',
      });
      const bounded = () => {
        check(meter.max <= prefetch, `${meter.max} handlers ran at once with prefetch ${prefetch} (after the reconnect)`);
        check(overlaps.length === 0, () => `one message ran in two handlers at once: ${overlaps.join('; ')}`);
      };
      // While the old handlers still hang, the resumed consumer may not start more of them.
      await watchQuiet(ctx.quietMs, bounded, 'handlers still running after the reconnect');
      gate.open();
      await ctx.recorder.waitForIds(ids, {
        consumer: 'worker',
        timeoutMs: ctx.timeoutMs * 2,
        description: 'every confirmed task at the worker',
      });
      await watchQuiet(ctx.quietMs, bounded, 'after the handlers were released');
    },
  },
];
