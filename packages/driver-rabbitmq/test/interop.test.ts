import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describeIdDiff, testRabbitMqUrl } from '@mq-drivers/conformance/services';
import type { Driver, Message } from '@mq-drivers/core';
import { createRabbitMqDriver } from '@mq-drivers/rabbitmq';
import { afterAll, describe, expect, it } from 'vitest';
import { brokerSkipReason, segment, until } from './helpers.js';

/**
 * Interop with a client in another language: Python's pika (Debian package `python3-pika`)
 * publishes into and consumes from the topology documented in TOPOLOGY.md.
 */
const run = promisify(execFile);
const CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'interop', 'pika_client.py');

function findPython(): string | undefined {
  for (const python of ['/usr/bin/python3', 'python3']) {
    const probe = spawnSync(python, ['-c', 'import pika'], { stdio: 'ignore' });
    if (probe.status === 0) return python;
  }
  return undefined;
}

const brokerSkip = await brokerSkipReason();
const python = findPython();
let skipReason = brokerSkip;
if (skipReason === undefined && python === undefined) {
  skipReason = 'python3 with pika not found (apt-get install python3-pika)';
  if (process.env.CI === 'true') throw new Error(`${skipReason}; CI=true, so this is a failure`);
  console.warn(`[driver-rabbitmq tests] skipping interop: ${skipReason}`);
}

/** pika wants the vhost in the path: `/` is `%2F`. */
function pikaUrl(): string {
  const url = new URL(testRabbitMqUrl);
  if (url.pathname === '' || url.pathname === '/') url.pathname = '/%2F';
  return url.toString();
}

async function pika(...args: string[]): Promise<Array<Record<string, unknown>>> {
  const { stdout } = await run(python!, [CLIENT, ...args], { timeout: 30_000 });
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Starts a long-running pika command; resolves once it printed `{"ready": true}`. */
async function pikaStreaming(
  ...args: string[]
): Promise<{ lines: Array<Record<string, unknown>>; child: ChildProcess; done: Promise<void> }> {
  const child = spawn(python!, [CLIENT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Array<Record<string, unknown>> = [];
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => {
    ready = resolve;
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    if (parsed.ready) ready();
    else lines.push(parsed);
  });
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await Promise.race([isReady, done]);
  return { lines, child, done };
}

describe.skipIf(skipReason !== undefined)(
  `interop with a Python (pika) client${skipReason ? ` [skipped: ${skipReason}]` : ''}`,
  () => {
    const drivers: Driver[] = [];
    const make = () => {
      const driver = createRabbitMqDriver({ url: testRabbitMqUrl, onError: () => {} });
      drivers.push(driver);
      return driver;
    };
    afterAll(async () => {
      await Promise.all(drivers.map((driver) => driver.close()));
    });

    it('a task and a share published by pika into the documented exchanges reach our handlers', async () => {
      const seg = segment('pika-in');
      const driver = make();
      const got: Message[] = [];
      await driver.taskConsume((m) => void got.push(m), { segment: seg, topic: 'billing.invoice' });
      await driver.shareConsume((m) => void got.push(m), { segment: seg, topics: ['orders.#'] });
      await pika('publish', pikaUrl(), `mq.${seg}.tasks`, '', 'py-task-1', '{"amount": 42, "items": ["a", "b"]}', 'tenant=acme');
      await pika('publish', pikaUrl(), `mq.${seg}.shares`, 'orders.eu.created', 'py-share-1', '{"order": 7}', 'source=python');
      await until(
        () => got.length >= 2,
        () =>
          describeIdDiff(
            ['py-task-1', 'py-share-1'],
            got.map((m) => m.id),
          ),
      );
      const task = got.find((m) => m.id === 'py-task-1')!;
      expect(task.body).toEqual({ amount: 42, items: ['a', 'b'] });
      expect(task.topic).toBe('billing.invoice');
      expect(task.segment).toBe(seg);
      expect(task.attempt).toBe(1);
      expect(task.headers).toEqual({ tenant: 'acme' });
      expect(Math.abs(task.publishedAt.getTime() - Date.now())).toBeLessThan(60_000);
      const share = got.find((m) => m.id === 'py-share-1')!;
      expect(share.body).toEqual({ order: 7 });
      expect(share.topic).toBe('orders.eu.created');
      expect(share.headers).toEqual({ source: 'python' });
    });

    it('our shares are readable by pika from its own queue bound to the share exchange', async () => {
      const seg = segment('pika-out');
      const driver = make();
      // Declare the segment's exchange first (a consumer or publisher does it), then let pika bind.
      await driver.sharePublish({ warmup: true }, { segment: seg, topic: 'warmup' });
      const consumer = await pikaStreaming('consume', pikaUrl(), `mq.${seg}.shares`, 'orders.#', '2', '20');
      const first = await driver.sharePublish(
        { order: 1, note: 'ünïcode' },
        { segment: seg, topic: 'orders.created', headers: { tenant: 'acme' } },
      );
      const second = await driver.sharePublish([1, 2, 3], { segment: seg, topic: 'orders.eu.shipped' });
      await driver.sharePublish({ ignored: true }, { segment: seg, topic: 'invoices.created' });
      await consumer.done;
      expect(consumer.lines.map((l) => l.message_id)).toEqual([first.id, second.id]);
      const [a, b] = consumer.lines as Array<Record<string, unknown>>;
      expect(a!.body).toEqual({ order: 1, note: 'ünïcode' });
      expect(a!.routing_key).toBe('orders.created');
      expect(a!.content_type).toBe('application/json');
      expect(a!.delivery_mode).toBe(2);
      expect(typeof a!.timestamp).toBe('number');
      expect((a!.headers as Record<string, unknown>).tenant).toBe('acme');
      expect(typeof (a!.headers as Record<string, unknown>)['x-mq-published-at']).toBe('number');
      expect(b!.body).toEqual([1, 2, 3]);
    });

    it('pika competes as a worker on a kind queue and reads our tasks', async () => {
      const seg = segment('pika-work');
      const driver = make();
      const sub = await driver.taskConsume(() => {}, { segment: seg, topic: 'reports' });
      await sub.close(); // the kind is registered; its queue keeps tasks while no worker runs
      const ids = [
        (await driver.taskPublish({ report: 1 }, { segment: seg, headers: { by: 'node' } })).id,
        (await driver.taskPublish({ report: 2 }, { segment: seg })).id,
      ];
      const lines = await pika('work', pikaUrl(), `mq.${seg}.task.reports`, '2', '20');
      expect(
        lines.map((l) => l.message_id),
        describeIdDiff(
          ids,
          lines.map((l) => String(l.message_id)),
        ),
      ).toEqual(ids);
      expect(lines.map((l) => l.body)).toEqual([{ report: 1 }, { report: 2 }]);
      expect((lines[0]!.headers as Record<string, unknown>).by).toBe('node');
    });
  },
);
