import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { testS3 } from '@mq-drivers/conformance/services';
import type { Driver } from '@mq-drivers/core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { newDriver, s3Unavailable, segmentName } from './helpers.js';

// Group commit, counted in log objects (one PUT each): a burst shares one object, batches never
// exceed maxBatchMessages, and nothing is lost or reordered between them.
const unavailable = await s3Unavailable();
const PREFIX = 'driver-s3-batching';

describe.skipIf(unavailable !== undefined)(`s3 publish batching${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const client = new S3Client({
    endpoint: testS3.endpoint,
    region: testS3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: testS3.accessKeyId, secretAccessKey: testS3.secretAccessKey },
  });
  const drivers: Driver[] = [];
  const open = (extra = {}) => {
    const driver = newDriver({ prefix: PREFIX, ...extra });
    drivers.push(driver);
    return driver;
  };
  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((driver) => driver.close()));
  });
  afterAll(() => client.destroy());

  /** The share log objects of a segment, with how many records each holds. */
  async function logObjects(segment: string): Promise<number[]> {
    const listed = await client.send(
      new ListObjectsV2Command({ Bucket: testS3.bucket, Prefix: `${PREFIX}/${segment}/shares/log/` }),
    );
    const keys = (listed.Contents ?? []).map((object) => object.Key!).sort();
    const counts: number[] = [];
    for (const key of keys) {
      const object = await client.send(new GetObjectCommand({ Bucket: testS3.bucket, Key: key }));
      counts.push((await object.Body!.transformToString()).split('\n').filter((line) => line !== '').length);
    }
    return counts;
  }

  it('a burst published in one tick shares one log object, also right after a batch of one', async () => {
    const segment = segmentName('burst');
    const producer = open();
    await producer.sharePublish({ n: 0 }, { segment, topic: 'Burst.One' });
    await Promise.all(Array.from({ length: 200 }, (_, n) => producer.sharePublish({ n }, { segment, topic: 'Burst.Many' })));
    expect(await logObjects(segment)).toEqual([1, 200]);
  });

  it('a batch never holds more than maxBatchMessages', async () => {
    const segment = segmentName('cap');
    const producer = open({ maxBatchMessages: 50 });
    await Promise.all(Array.from({ length: 120 }, (_, n) => producer.sharePublish({ n }, { segment, topic: 'Cap.Many' })));
    expect(await logObjects(segment)).toEqual([50, 50, 20]);
  });
});
