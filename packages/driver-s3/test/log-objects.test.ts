import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { testS3 } from '@mq-drivers/conformance/services';
import { describe, expect, it } from 'vitest';
import { bucketBench, s3Unavailable, segmentName } from './helpers.js';

// The log objects as another S3 client sees them: records in the format LAYOUT.md documents, and
// group commit counted in objects (one PUT each): a burst shares one object, batches never exceed
// maxBatchMessages.
const unavailable = await s3Unavailable();
const PREFIX = 'driver-s3-batching';

describe.skipIf(unavailable !== undefined)(`s3 publish batching${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const { client, open } = bucketBench(PREFIX);

  /** The log objects of a segment (keys in order), each with its metadata and JSON Lines records. */
  async function readLog(segment: string, type: 'shares' | 'tasks' = 'shares') {
    const listed = await client.send(
      new ListObjectsV2Command({ Bucket: testS3.bucket, Prefix: `${PREFIX}/${segment}/${type}/log/` }),
    );
    const keys = (listed.Contents ?? []).map((object) => object.Key!).sort();
    return Promise.all(
      keys.map(async (key) => {
        const object = await client.send(new GetObjectCommand({ Bucket: testS3.bucket, Key: key }));
        const text = await object.Body!.transformToString();
        const records = text
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as Record<string, unknown>);
        return { key, metadata: object.Metadata ?? {}, records };
      }),
    );
  }

  /** How many records each log object of a segment holds, in log order. */
  async function logObjects(segment: string): Promise<number[]> {
    return (await readLog(segment)).map((object) => object.records.length);
  }

  it('writes gap-free numbered JSON Lines objects with the documented record fields', async () => {
    const segment = segmentName('layout');
    const producer = open();
    const before = Date.now();
    const share = await producer.sharePublish(
      { order: 7, tags: ['a'] },
      { segment, topic: 'Orders.Created', headers: { k: 'v' } },
    );
    const task = await producer.taskPublish({ job: 1 }, { segment });
    const shares = await readLog(segment, 'shares');
    expect(shares.map((object) => object.key)).toEqual([`${PREFIX}/${segment}/shares/log/0000000000000001.jsonl`]);
    expect(shares[0]!.metadata.count).toBe('1');
    const [record] = shares[0]!.records;
    expect(record).toEqual({
      id: share.id,
      type: 'share',
      topic: 'Orders.Created',
      headers: { k: 'v' },
      publishedAt: expect.any(String),
      body: { order: 7, tags: ['a'] },
    });
    expect(Date.parse(String(record!.publishedAt))).toBeGreaterThanOrEqual(before - 1000);
    const tasks = await readLog(segment, 'tasks');
    expect(tasks.map((object) => object.key)).toEqual([`${PREFIX}/${segment}/tasks/log/0000000000000001.jsonl`]);
    expect(tasks[0]!.records).toEqual([
      { id: task.id, type: 'task', headers: {}, publishedAt: expect.any(String), body: { job: 1 } },
    ]);
  });

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
