import { describeIdDiff } from '@mq-drivers/conformance/services';
import { type Driver, type Message, PublishError } from '@mq-drivers/core';
import { createRabbitMqDriver, type RabbitMqDriverOptions } from '@mq-drivers/rabbitmq';
import { afterAll, describe, expect, it } from 'vitest';
import { brokerSkipReason, freshVhost, haveRabbitmqctl, rabbitmqctl, segment, until, urlWithVhost } from './helpers.js';

/**
 * Connection loss and a full broker restart (`rabbitmqctl stop_app` / `start_app`) while
 * publishing and consuming: every publish the broker confirmed must reach its consumers
 * (duplicates are allowed: at-least-once). A publish may reject with PublishError while the
 * broker is down; it must never resolve without a confirm.
 *
 * MUST RUN ALONE: stopping the broker breaks every other test using it. The root vitest config
 * runs this file in a project of its own, after the others.
 */
const VHOST = 'mq-restart';
let skipReason = await brokerSkipReason();
if (skipReason === undefined && !(await haveRabbitmqctl())) {
  skipReason = 'rabbitmqctl is not usable here (the restart test needs root on the broker machine)';
  if (process.env.CI === 'true') throw new Error(`${skipReason}; CI=true, so this is a failure`);
  console.warn(`[driver-rabbitmq tests] skipping restart test: ${skipReason}`);
}
if (skipReason === undefined) await freshVhost(VHOST);

async function startBroker(): Promise<void> {
  await rabbitmqctl('start_app');
  await rabbitmqctl('await_startup', '--timeout', '110');
}

describe.sequential(`rabbitmq broker restart${skipReason ? ` [skipped: ${skipReason}]` : ''}`, () => {
  const drivers: Driver[] = [];
  const make = (options: Partial<RabbitMqDriverOptions> = {}) => {
    const driver = createRabbitMqDriver({
      url: urlWithVhost(VHOST),
      reconnectBackoff: { baseMs: 100, maxMs: 1_000 },
      redeliveryBackoff: { baseMs: 20, maxMs: 200 },
      publishTimeoutMs: 60_000,
      connectTimeoutMs: 5_000,
      onError: () => {},
      ...options,
    });
    drivers.push(driver);
    return driver;
  };
  afterAll(async () => {
    await Promise.all(drivers.map((driver) => driver.close()));
  });

  it.skipIf(skipReason !== undefined)(
    'no confirmed message is lost across close_all_connections and stop_app/start_app (classic and quorum)',
    async () => {
      const classic = segment('restart-c');
      const quorum = segment('restart-q');
      const producer = make();
      const received = { classicTask: [] as string[], quorumTask: [] as string[], share: [] as string[] };
      const record = (list: string[]) => (message: Message) => {
        list.push(message.id);
      };
      // Publishes of this one cannot wait out the restart: they must reject, never resolve.
      const impatient = make({ publishTimeoutMs: 500 });
      await impatient.taskPublish({ warmup: true }, { segment: classic });
      let impatientOutcome: unknown;
      const workers = make();
      const quorumWorkers = make({ queueType: 'quorum' });
      await workers.taskConsume(record(received.classicTask), { segment: classic, topic: 'jobs', prefetch: 20 });
      await quorumWorkers.taskConsume(record(received.quorumTask), { segment: quorum, topic: 'jobs', prefetch: 20 });
      await workers.shareConsume(record(received.share), { segment: classic, topics: ['events.#'], name: 'restart-audit' });

      const confirmed = { classicTask: [] as string[], quorumTask: [] as string[], share: [] as string[] };
      const refused: string[] = [];
      let publishing = true;
      let sequence = 0;
      const lane = async () => {
        while (publishing) {
          const n = sequence++;
          const kind = n % 3 === 0 ? 'classicTask' : n % 3 === 1 ? 'quorumTask' : 'share';
          try {
            const receipt =
              kind === 'classicTask'
                ? await producer.taskPublish({ n }, { segment: classic })
                : kind === 'quorumTask'
                  ? await producer.taskPublish({ n }, { segment: quorum })
                  : await producer.sharePublish({ n }, { segment: classic, topic: 'events.created' });
            confirmed[kind].push(receipt.id);
          } catch (error) {
            if (!PublishError.isInstance(error)) throw error;
            refused.push(String(error));
          }
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      };
      const lanes = Promise.all([lane(), lane(), lane(), lane()]);
      const total = () => confirmed.classicTask.length + confirmed.quorumTask.length + confirmed.share.length;
      try {
        await until(
          () => total() >= 100,
          () => `${total()} confirmed before breaking connections`,
        );
        // 1. Every connection of this vhost is closed by the broker.
        await rabbitmqctl('-q', 'close_all_connections', '-p', VHOST, 'restart test: close_all_connections');
        const afterClose = total();
        await until(
          () => total() >= afterClose + 100,
          () => `publishing did not recover after close_all_connections (${total() - afterClose} confirmed since)`,
          30_000,
        );
        // 2. The broker application stops and starts again; the drivers reconnect on their own.
        try {
          await rabbitmqctl('stop_app');
          const started = Date.now();
          impatientOutcome = await impatient.taskPublish({ during: 'stop' }, { segment: classic }).then(
            (receipt) => receipt,
            (error: unknown) => error,
          );
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1_000 - (Date.now() - started))));
        } finally {
          await startBroker();
        }
        const afterRestart = total();
        await until(
          () => total() >= afterRestart + 100,
          () => `publishing did not recover after the restart (${total() - afterRestart} confirmed since)`,
          60_000,
        );
      } finally {
        publishing = false;
        await lanes;
      }
      for (const kind of ['classicTask', 'quorumTask', 'share'] as const) {
        await until(
          () => {
            const seen = new Set(received[kind]);
            return confirmed[kind].every((id) => seen.has(id));
          },
          () => `confirmed ${kind} messages lost: ${describeIdDiff(confirmed[kind], [...new Set(received[kind])])}`,
          60_000,
        );
      }
      const lost = (['classicTask', 'quorumTask', 'share'] as const).flatMap((kind) => {
        const seen = new Set(received[kind]);
        return confirmed[kind].filter((id) => !seen.has(id));
      });
      expect(lost, 'confirmed but never delivered').toEqual([]);
      expect(PublishError.isInstance(impatientOutcome), `publish while the broker was stopped: ${String(impatientOutcome)}`).toBe(
        true,
      );
      expect(String(impatientOutcome)).toMatch(/not confirmed by the broker within 500 ms/);
      console.log(
        `[restart test] confirmed ${total()} (tasks classic ${confirmed.classicTask.length}, quorum ${confirmed.quorumTask.length}, shares ${confirmed.share.length}); refused ${refused.length}; ` +
          `delivered ${received.classicTask.length + received.quorumTask.length + received.share.length} (duplicates allowed); lost 0`,
      );
    },
    240_000,
  );
});
