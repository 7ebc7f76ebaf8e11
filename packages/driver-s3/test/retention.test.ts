import { PutObjectCommand } from '@aws-sdk/client-s3';
import { testS3 } from '@mq-drivers/conformance/services';
import { InvalidArgumentError, type MqError } from '@mq-drivers/core';
import { createS3Driver, driver as s3Definition } from '@mq-drivers/s3';
import { describe, expect, it, vi } from 'vitest';
import {
  bodyN,
  bucketBench,
  s3Unavailable,
  segmentName,
  tasksPinnedBySlowKind,
  testOptions,
  waitFor,
  waitForAsync,
} from './helpers.js';

// Retention against a real endpoint: what a sweep deletes (old objects, never a log's highest
// number, never a task some kind has not finished), and how readers get past deleted numbers.
// The log is checked with a plain S3 client, as another tool would see the bucket.
const unavailable = await s3Unavailable();
const PREFIX = 'driver-s3-retention';
/** Short enough to keep the tests quick (a sweep every 750 ms), long enough for readers to keep up. */
const RETENTION_MS = 1500;
const TIMEOUT_MS = 20_000;

describe('s3 retention options', () => {
  it.each([0, -1, 999, Number.NaN, Number.POSITIVE_INFINITY, '5000'])('rejects retentionMs %s, naming it', (value) => {
    let caught: unknown;
    try {
      createS3Driver(testOptions({ retentionMs: value as number }));
    } catch (error) {
      caught = error;
    }
    expect(InvalidArgumentError.isInstance(caught)).toBe(true);
    expect((caught as InvalidArgumentError).argument).toBe('options.retentionMs');
    expect((caught as InvalidArgumentError).value).toBe(value);
    expect((caught as Error).message).toContain(`retentionMs: must be a number of ms from 1000`);
    expect((caught as Error).message).toContain(`(got ${typeof value === 'string' ? `"${value}"` : value})`);
  });

  it('reads retentionMs from the URL and rejects a bad one, naming it', async () => {
    const base = 's3://mq-test/p?endpoint=http%3A%2F%2F127.0.0.1%3A7480';
    expect(() => s3Definition.create(`${base}&retentionMs=x`)).toThrow(/invalid url\.retentionMs: must be a number/);
    expect(() => s3Definition.create(`${base}&retentionMs=0`)).toThrow(/invalid options\.retentionMs: .*\(got 0\)/);
    expect(() => s3Definition.create(`${base}&retentionMs=-1`)).toThrow(/invalid options\.retentionMs: .*\(got -1\)/);
    await (await s3Definition.create(`${base}&retentionMs=60000`)).close();
  });

  it('rejects an onError that is not a function', () => {
    expect(() => createS3Driver(testOptions({ onError: 'log' as never }))).toThrow(/invalid options\.onError/);
  });
});

describe.skipIf(unavailable !== undefined)(`s3 retention${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const bench = bucketBench(PREFIX);
  const { client, open, logNumbers: stored, watermark } = bench;

  /** Waits until exactly `expected` log objects are stored. */
  async function waitStored(segment: string, type: 'shares' | 'tasks', expected: number[]): Promise<void> {
    let last: number[] = [];
    await waitForAsync(
      async () => {
        last = await stored(segment, type);
        return JSON.stringify(last) === JSON.stringify(expected);
      },
      TIMEOUT_MS,
      () => `${type} log objects stored: [${last.join(', ')}], expected [${expected.join(', ')}]`,
    );
  }

  it('deletes old share log objects but keeps the newest; readers start at the lowest kept one; no number is re-used', async () => {
    const segment = segmentName('ret-share');
    const a = open({ retentionMs: RETENTION_MS });
    const b = open({ retentionMs: RETENTION_MS });
    await a.sharePublish({ n: 1 }, { segment, topic: 't.a' });
    for (let i = 2; i <= 5; i++) await b.sharePublish({ n: i }, { segment, topic: 't.b' });
    expect(await stored(segment, 'shares')).toEqual([1, 2, 3, 4, 5]);
    await waitStored(segment, 'shares', [5]);

    // A reader without retention: 'earliest' is the lowest kept number; an old cursor notices that
    // its number is gone, jumps there and says so.
    const errors: MqError[] = [];
    const reader = open({ onError: (error: MqError) => errors.push(error) });
    const earliest: number[] = [];
    const fromCursor: number[] = [];
    await reader.shareConsume((m) => void earliest.push(bodyN(m)), { segment, topics: ['#'], from: 'earliest' });
    const old = await reader.shareConsume((m) => void fromCursor.push(bodyN(m)), {
      segment,
      topics: ['#'],
      from: { cursor: '1:0' },
    });
    await waitFor(
      () => earliest.length >= 1 && fromCursor.length >= 1,
      TIMEOUT_MS,
      () => `earliest got [${earliest}], from cursor 1:0 got [${fromCursor}]`,
    );

    // `a` last wrote number 1, which is gone: it must find the head (5), not create 2 again.
    await a.sharePublish({ n: 6 }, { segment, topic: 't.a' });
    await b.sharePublish({ n: 7 }, { segment, topic: 't.b' });
    await Promise.all([a.close(), b.close()]); // no more sweeps
    await waitFor(
      () => earliest.length >= 3 && fromCursor.length >= 3,
      TIMEOUT_MS,
      () => `earliest got [${earliest}], from cursor 1:0 got [${fromCursor}]`,
    );
    expect(earliest).toEqual([5, 6, 7]);
    expect(fromCursor).toEqual([5, 6, 7]);
    const left = await stored(segment, 'shares');
    expect(left.at(-1)).toBe(7);
    expect(left.every((seq) => seq >= 5)).toBe(true);
    expect(errors.map((e) => e.message)).toEqual([
      `s3: share subscription "${old.name}" of segment "${segment}" skipped log objects 1-4: retention deleted them ` +
        'before it read them, so their messages are lost for this subscription; it continues at log object 5',
    ]);
  });

  it('a publisher without retentionMs, idle for 30 s, finds the head again instead of re-using a deleted number', async () => {
    const segment = segmentName('ret-idle');
    const plain = open(); // no retentionMs: it cannot know that another process sweeps
    const sweeper = open({ retentionMs: RETENTION_MS });
    await plain.sharePublish({ n: 1 }, { segment, topic: 't.a' });
    for (let i = 2; i <= 4; i++) await sweeper.sharePublish({ n: i }, { segment, topic: 't.b' });
    await waitStored(segment, 'shares', [4]);
    await sweeper.close(); // no more sweeps: what is stored next stays for the check below
    // 31 s pass for `plain` (only the clock moves; timers keep their real pace).
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 31_000 });
    try {
      await plain.sharePublish({ n: 5 }, { segment, topic: 't.a' });
    } finally {
      vi.useRealTimers();
    }
    // Number 2 (next after its own write) was deleted; creating it again would hide message 5
    // from every reader already past it.
    expect(await stored(segment, 'shares')).toEqual([4, 5]);
  });

  it('a durable subscription whose position was deleted while it was closed resumes at the lowest kept number and reports the skip', async () => {
    const segment = segmentName('ret-durable');
    const producer = open({ retentionMs: RETENTION_MS });
    const errors: MqError[] = [];
    const consumer = { onError: (error: MqError) => errors.push(error) };
    const got: number[] = [];
    const options = { segment, topics: ['#'], name: 'audit' };
    const first = await open(consumer).shareConsume((m) => void got.push(bodyN(m)), options);
    for (let i = 1; i <= 2; i++) await producer.sharePublish({ n: i }, { segment, topic: 'a.b' });
    await waitFor(
      () => got.length >= 2,
      TIMEOUT_MS,
      () => `got [${got}]`,
    );
    await first.close(); // cursor: log object 3
    for (let i = 3; i <= 5; i++) await producer.sharePublish({ n: i }, { segment, topic: 'a.b' });
    await waitStored(segment, 'shares', [5]);

    await open(consumer).shareConsume((m) => void got.push(bodyN(m)), options);
    await waitFor(
      () => got.length >= 3,
      TIMEOUT_MS,
      () => `got [${got}]`,
    );
    for (let i = 6; i <= 8; i++) await producer.sharePublish({ n: i }, { segment, topic: 'a.b' });
    await waitFor(
      () => got.length >= 6,
      TIMEOUT_MS,
      () => `got [${got}]`,
    );
    expect(got).toEqual([1, 2, 5, 6, 7, 8]);
    expect(errors.map((e) => e.message)).toEqual([
      `s3: share subscription "audit" of segment "${segment}" skipped log objects 3-4: retention deleted them ` +
        'before it read them, so their messages are lost for this subscription; it continues at log object 5',
    ]);
  });

  it('keeps task log objects a registered kind has not finished, however old; deletes them once it has', async () => {
    const segment = segmentName('ret-tasks');
    const { fast } = await tasksPinnedBySlowKind(bench, segment, RETENTION_MS, TIMEOUT_MS);
    expect(await stored(segment, 'tasks')).toEqual([1, 2, 3, 4]);

    const slow: number[] = [];
    await open().taskConsume((m) => void slow.push(bodyN(m)), { segment, topic: 'slow' });
    await waitFor(
      () => slow.length >= 4,
      TIMEOUT_MS,
      () => `slow got [${slow}]`,
    );
    await waitStored(segment, 'tasks', [4]);
    expect(slow.sort()).toEqual([1, 2, 3, 4]);
    expect(fast.sort()).toEqual([1, 2, 3, 4]);
  });

  it('a task worker that starts at a deleted number moves on to the lowest kept one, without repeating tasks', async () => {
    const segment = segmentName('ret-worker');
    const producer = open({ retentionMs: RETENTION_MS });
    const got: number[] = [];
    const first = await open().taskConsume((m) => void got.push(bodyN(m)), { segment, topic: 'k' });
    for (let i = 1; i <= 4; i++) await producer.taskPublish({ n: i }, { segment });
    await waitForAsync(
      async () => got.length === 4 && (await watermark(segment, 'k')) === 5,
      TIMEOUT_MS,
      async () => `got [${got}], watermark ${await watermark(segment, 'k')}`,
    );
    await first.close();
    await waitStored(segment, 'tasks', [4]);
    // A worker that lagged behind its peers can write an older watermark than theirs: the next
    // worker then starts at a number retention has deleted.
    await client.send(
      new PutObjectCommand({
        Bucket: testS3.bucket,
        Key: `${PREFIX}/${segment}/tasks/kinds/k/watermark.json`,
        Body: JSON.stringify({ seq: 1 }),
      }),
    );
    await open().taskConsume((m) => void got.push(bodyN(m)), { segment, topic: 'k' });
    await producer.taskPublish({ n: 5 }, { segment });
    await waitFor(
      () => got.length >= 5,
      TIMEOUT_MS,
      () => `got [${got}]`,
    );
    await waitForAsync(
      async () => (await watermark(segment, 'k')) === 6,
      TIMEOUT_MS,
      async () => `watermark ${await watermark(segment, 'k')}`,
    );
    expect(got).toEqual([1, 2, 3, 4, 5]);
  });
});
