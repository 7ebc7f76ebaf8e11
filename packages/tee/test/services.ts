import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { serviceSkipReason, TcpProxy, testRabbitMqUrl, testS3 } from '@mq-drivers/conformance/services';
import { createRabbitMqDriver, type RabbitMqDriverOptions } from '@mq-drivers/rabbitmq';
import { createS3Driver, type S3DriverOptions } from '@mq-drivers/s3';

/**
 * Why the real-service suites cannot run (undefined when they can). With `CI=true` an
 * unreachable service is a failure, never a skip.
 */
export function servicesSkipReason(): Promise<string | undefined> {
  return serviceSkipReason('tee tests', [
    { name: 'RabbitMQ', url: testRabbitMqUrl },
    { name: 'S3', url: testS3.endpoint },
  ]);
}

export function rabbit(extra: Partial<RabbitMqDriverOptions> = {}) {
  return createRabbitMqDriver({
    url: testRabbitMqUrl,
    redeliveryBackoff: { baseMs: 20, maxMs: 200 },
    reconnectBackoff: { baseMs: 50, maxMs: 1_000 },
    publishTimeoutMs: 10_000,
    connectionName: 'mq-drivers tee tests',
    onError: () => {},
    ...extra,
  });
}

export function s3(extra: Partial<S3DriverOptions> = {}) {
  return createS3Driver({
    bucket: testS3.bucket,
    prefix: 'tee-tests',
    endpoint: testS3.endpoint,
    region: testS3.region,
    credentials: { accessKeyId: testS3.accessKeyId, secretAccessKey: testS3.secretAccessKey },
    createBucket: true,
    minPollIntervalMs: 20,
    maxPollIntervalMs: 200,
    leaseMs: 2_000,
    redeliveryBackoff: { baseMs: 20, maxMs: 200 },
    cursorSaveIntervalMs: 100,
    ...extra,
  });
}

const exec = promisify(execFile);

/** Runs `rabbitmqctl`; undefined when it is not available here. */
export async function rabbitmqctl(...args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await exec('rabbitmqctl', args, { timeout: 120_000 });
    return stdout;
  } catch {
    return undefined;
  }
}

/**
 * A fresh virtual host for guest on the test broker (deleted first, so no queues of earlier runs
 * remain) and its URL; undefined when rabbitmqctl is not available here.
 */
export async function freshVhostUrl(vhost: string): Promise<string | undefined> {
  await rabbitmqctl('-q', 'delete_vhost', vhost);
  const ok =
    (await rabbitmqctl('-q', 'add_vhost', vhost)) !== undefined &&
    (await rabbitmqctl('-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*')) !== undefined;
  if (!ok) return undefined;
  const url = new URL(testRabbitMqUrl);
  url.pathname = `/${vhost}`;
  return url.toString();
}

/** A proxy in front of the S3 endpoint (to make it unreachable on purpose). */
export function s3Proxy(): Promise<TcpProxy> {
  return TcpProxy.inFrontOf(testS3.endpoint);
}
