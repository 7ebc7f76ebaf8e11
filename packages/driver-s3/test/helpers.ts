import { randomBytes } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { serviceSkipReason, testS3 } from '@mq-drivers/conformance/services';
import type { Driver, Message } from '@mq-drivers/core';
import { createS3Driver, type S3DriverOptions } from '@mq-drivers/s3';
import { afterAll, afterEach } from 'vitest';

/** Test settings: fast polls, short leases, fast redelivery. */
export const FAST: Partial<S3DriverOptions> = {
  minPollIntervalMs: 20,
  maxPollIntervalMs: 200,
  leaseMs: 2000,
  redeliveryBackoff: { baseMs: 20, maxMs: 200 },
  cursorSaveIntervalMs: 100,
};

export function testOptions(extra: Partial<S3DriverOptions> = {}): S3DriverOptions {
  return {
    bucket: testS3.bucket,
    prefix: 'driver-s3-tests',
    endpoint: testS3.endpoint,
    region: testS3.region,
    credentials: { accessKeyId: testS3.accessKeyId, secretAccessKey: testS3.secretAccessKey },
    createBucket: true,
    ...FAST,
    ...extra,
  };
}

export function newDriver(extra: Partial<S3DriverOptions> = {}): Driver {
  return createS3Driver(testOptions(extra));
}

export function segmentName(label: string): string {
  return `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/**
 * Why the S3 suites cannot run, or undefined when they can. In CI (`CI=true`) an unreachable
 * endpoint is a failure, never a skip.
 */
export function s3Unavailable(): Promise<string | undefined> {
  return serviceSkipReason('driver-s3 tests', [{ name: 'S3', url: testS3.endpoint }]);
}

/** Polls until `condition` holds or the deadline passes (then throws with `describe()`). */
export async function waitFor(condition: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** {@link waitFor} for a condition that needs a request (e.g. listing the bucket). */
export async function waitForAsync(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string | Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${await describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * What a test of the bucket's contents needs, inside one `describe`: drivers under `prefix`
 * (closed after each test) and a plain S3 client reading the bucket as another tool would.
 */
export function bucketBench(prefix: string) {
  const client = new S3Client({
    endpoint: testS3.endpoint,
    region: testS3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: testS3.accessKeyId, secretAccessKey: testS3.secretAccessKey },
  });
  const drivers: Driver[] = [];
  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((driver) => driver.close()));
  });
  afterAll(() => client.destroy());

  /** Every key under `<prefix>/<segment>/<path>`, relative to it, sorted. */
  async function keys(segment: string, path: string): Promise<string[]> {
    const under = `${prefix}/${segment}/${path}`;
    const listed = await client.send(new ListObjectsV2Command({ Bucket: testS3.bucket, Prefix: under }));
    return (listed.Contents ?? []).map((object) => object.Key!.slice(under.length)).sort();
  }

  return {
    client,
    keys,
    /** A driver under `prefix`, closed after the test. */
    open(extra: Partial<S3DriverOptions> = {}): Driver {
      const driver = newDriver({ prefix, ...extra });
      drivers.push(driver);
      return driver;
    },
    /** The numbers of a log's objects stored now, in order. */
    async logNumbers(segment: string, type: 'shares' | 'tasks'): Promise<number[]> {
      return (await keys(segment, `${type}/log/`)).map((key) => Number(/^(\d{16})\.jsonl$/.exec(key)![1]));
    },
    /** A kind's watermark (0 when it has none). */
    async watermark(segment: string, kind: string): Promise<number> {
      try {
        const object = await client.send(
          new GetObjectCommand({ Bucket: testS3.bucket, Key: `${prefix}/${segment}/tasks/kinds/${kind}/watermark.json` }),
        );
        return (JSON.parse(await object.Body!.transformToString()) as { seq: number }).seq;
      } catch {
        return 0;
      }
    },
  };
}

/** The `n` of a test message body `{n}`. */
export const bodyN = (message: Message): number => (message.body as { n: number }).n;

/**
 * A retention scenario: kind "slow" is registered but runs no worker, kind "fast" has handled tasks
 * 1-4. Resolves once a sweep of `producer` (created with `retentionMs`) has found those task log
 * objects old: a share object written after them was deleted (one cutoff per sweep). The task log
 * objects are then only kept because "slow" has not finished them.
 */
export async function tasksPinnedBySlowKind(
  bench: ReturnType<typeof bucketBench>,
  segment: string,
  retentionMs: number,
  timeoutMs: number,
): Promise<{ producer: Driver; fast: number[] }> {
  const producer = bench.open({ retentionMs });
  await (await bench.open().taskConsume(() => undefined, { segment, topic: 'slow' })).close();
  const fast: number[] = [];
  await bench.open().taskConsume((m) => void fast.push(bodyN(m)), { segment, topic: 'fast' });
  for (let i = 1; i <= 4; i++) await producer.taskPublish({ n: i }, { segment });
  await waitForAsync(
    async () => fast.length === 4 && (await bench.watermark(segment, 'fast')) === 5,
    timeoutMs,
    async () => `fast got [${fast}], watermark ${await bench.watermark(segment, 'fast')}`,
  );
  await producer.sharePublish({ n: 1 }, { segment, topic: 'sentinel' });
  await producer.sharePublish({ n: 2 }, { segment, topic: 'sentinel' });
  await waitForAsync(
    async () => (await bench.logNumbers(segment, 'shares')).length === 1,
    timeoutMs,
    async () => `share log objects: [${await bench.logNumbers(segment, 'shares')}]`,
  );
  return { producer, fast };
}
