import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { describeIdDiff, serviceSkipReason, testRabbitMqUrl } from '@mq-drivers/conformance/services';
import type { Driver, Message } from '@mq-drivers/core';
import { createRabbitMqDriver, type RabbitMqDriverOptions } from '@mq-drivers/rabbitmq';
import amqplib, { type Channel, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll } from 'vitest';

const exec = promisify(execFile);

/** The same broker on another virtual host. */
export function urlWithVhost(vhost: string): string {
  const url = new URL(testRabbitMqUrl);
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return url.toString();
}

/**
 * Why the broker suites cannot run, or undefined when they can. In CI (`CI=true`) an
 * unreachable broker is a failure, never a skip.
 */
export function brokerSkipReason(): Promise<string | undefined> {
  return serviceSkipReason('driver-rabbitmq tests', [{ name: 'RabbitMQ', url: testRabbitMqUrl }]);
}

/** Runs `rabbitmqctl` (needs root on the broker's machine). */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await exec('rabbitmqctl', args, { timeout: 120_000 });
  return stdout;
}

/** True when `rabbitmqctl` works here (tests that break connections need it). */
export async function haveRabbitmqctl(): Promise<boolean> {
  try {
    await rabbitmqctl('-q', 'list_vhosts');
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates a fresh virtual host for guest, so a test file can break its own connections alone
 * and leaves no queues of earlier runs behind (the old one is deleted first).
 */
export async function freshVhost(vhost: string): Promise<void> {
  await rabbitmqctl('-q', 'delete_vhost', vhost).catch(() => '');
  await rabbitmqctl('-q', 'add_vhost', vhost);
  await rabbitmqctl('-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
}

/** A unique segment name per test. */
export function segment(label: string): string {
  return `${label}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`.slice(0, 64);
}

/** Polls until `condition` holds or the deadline passes (then throws with `describe()`). */
export async function until(condition: () => boolean, describe: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits until message `id` is among `got`; on timeout names it as missing (and any extra ids), after `label`. */
export function untilReceived(got: readonly Message[], id: string, label = '', timeoutMs = 10_000): Promise<void> {
  return until(
    () => got.some((m) => m.id === id),
    () =>
      `${label ? `${label}: ` : ''}${describeIdDiff(
        [id],
        got.map((m) => m.id),
      )}`,
    timeoutMs,
  );
}

/** Fast retries and reconnects for tests. */
export const FAST = { redeliveryBackoff: { baseMs: 20, maxMs: 200 }, reconnectBackoff: { baseMs: 50, maxMs: 1_000 } } as const;

/**
 * Inside one `describe`: drivers on the test broker (closed after the suite) and a raw amqplib
 * connection to look at the broker as another client would.
 */
export function brokerBench() {
  const drivers: Driver[] = [];
  let raw: ChannelModel | undefined;
  beforeAll(async () => {
    raw = await amqplib.connect(testRabbitMqUrl);
    raw.on('error', () => {});
  });
  afterAll(async () => {
    await Promise.all(drivers.map((driver) => driver.close()));
    await raw?.close().catch(() => {});
  });
  return {
    /** Closes `driver` after the suite too. */
    track<D extends Driver>(driver: D): D {
      drivers.push(driver);
      return driver;
    },
    /** A driver with fast retries that swallows onError, closed after the suite. */
    make(options: Partial<RabbitMqDriverOptions> = {}): Driver {
      const driver = createRabbitMqDriver({ url: testRabbitMqUrl, ...FAST, onError: () => {}, ...options });
      drivers.push(driver);
      return driver;
    },
    /** A raw amqplib channel; a channel error (404/406) closes only it. */
    async rawChannel(): Promise<Channel> {
      if (!raw) throw new Error('brokerBench: the raw connection opens in beforeAll');
      const channel = await raw.createChannel();
      channel.on('error', () => {});
      return channel;
    },
  };
}
