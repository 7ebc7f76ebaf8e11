import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describeIdDiff, testS3 } from '@mq-drivers/conformance/services';
import {
  type DeadLetterTarget,
  type Driver,
  DriverClosedError,
  InvalidArgumentError,
  TopologyError,
  type UnregisterResult,
} from '@mq-drivers/core';
import { describe, expect, it } from 'vitest';
import { bodyN, bucketBench, s3Unavailable, segmentName, tasksPinnedBySlowKind, waitFor, waitForAsync } from './helpers.js';

// `unregister` against a real endpoint: what it deletes (checked with a plain S3 client, as another
// tool would see the bucket), when it refuses, and what a consumer that starts later gets.
const unavailable = await s3Unavailable();
const PREFIX = 'driver-s3-unregister';
const RETENTION_MS = 1500;
const TIMEOUT_MS = 20_000;

describe.skipIf(unavailable !== undefined)(`s3 unregister${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const bench = bucketBench(PREFIX);
  const { client, open, keys, logNumbers } = bench;
  /** Task log numbers stored now, in order. */
  const stored = (segment: string) => logNumbers(segment, 'tasks');

  async function rejection(call: () => Promise<unknown>): Promise<unknown> {
    try {
      await call();
    } catch (error) {
      return error;
    }
    throw new Error('expected a rejection, but the call resolved');
  }

  async function publishTasks(driver: Driver, segment: string, label: string, count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push((await driver.taskPublish({ label, n: i }, { segment })).id);
    return ids;
  }

  it('removes a kind with waiting tasks and a dead letter: all its keys go, other kinds keep everything, a later worker gets only newer tasks', async () => {
    const segment = segmentName('unreg-kind');
    const producer = open();
    const keep: string[] = [];
    await open().taskConsume((m) => void keep.push(m.id), { segment, topic: 'keep' });
    const dropped: string[] = [];
    const dropWorker = await open().taskConsume(
      (m) => {
        dropped.push(m.id);
        if ((m.body as { fail?: boolean }).fail) throw new Error('planned failure');
      },
      { segment, topic: 'drop', maxAttempts: 1 },
    );
    const first = await publishTasks(producer, segment, 'first', 2);
    const doomed = (await producer.taskPublish({ fail: true }, { segment })).id;
    await waitForAsync(
      async () => dropped.length >= 3 && (await producer.listDeadLetters({ segment, kind: 'drop' })).length === 1,
      TIMEOUT_MS,
      () => `drop got ${describeIdDiff([...first, doomed], dropped)}`,
    );
    await dropWorker.close();
    const waiting = await publishTasks(producer, segment, 'waiting', 3);
    expect(await keys(segment, 'tasks/kinds/drop/')).toContain('registration.json');

    expect(await producer.unregister!({ segment, kind: 'drop' })).toEqual({ dropped: 3 });
    expect(await producer.listDeadLetters({ segment, kind: 'drop' })).toEqual([]);
    expect(await keys(segment, 'tasks/kinds/drop/')).toEqual([]);
    expect(await keys(segment, 'dead-letters/kinds/drop/')).toEqual([]);
    expect(await keys(segment, 'tasks/kinds/keep/')).toContain('registration.json');

    const meanwhile = await publishTasks(producer, segment, 'meanwhile', 2);
    const again: string[] = [];
    await open().taskConsume((m) => void again.push(m.id), { segment, topic: 'drop' });
    const after = await publishTasks(producer, segment, 'after', 2);
    const all = [...first, doomed, ...waiting, ...meanwhile, ...after];
    // Log objects are claimed in order: once the last one arrived, any older task would have too.
    await waitFor(
      () => keep.length >= all.length && after.every((id) => again.includes(id)),
      TIMEOUT_MS,
      () => `keep ${describeIdDiff(all, keep)}; drop after unregister ${describeIdDiff(after, again)}`,
    );
    expect(again.sort(), describeIdDiff(after, again)).toEqual([...after].sort());
    expect(keep.sort(), describeIdDiff(all, keep)).toEqual([...all].sort());
  });

  it('refuses while a worker of the kind is open in the same driver, and removes nothing', async () => {
    const segment = segmentName('unreg-same');
    const driver = open();
    const got: string[] = [];
    const worker = await driver.taskConsume(
      (m) => {
        got.push(m.id);
        if ((m.body as { fail?: boolean }).fail) throw new Error('planned failure');
      },
      { segment, topic: 'busy', maxAttempts: 1 },
    );
    const failed = (await driver.taskPublish({ fail: true }, { segment })).id;
    await waitForAsync(
      async () => (await driver.listDeadLetters({ segment, kind: 'busy' })).length === 1,
      TIMEOUT_MS,
      () => `got [${got}], expected the dead letter ${failed}`,
    );
    const before = await keys(segment, 'tasks/kinds/busy/');

    const error = await rejection(() => driver.unregister!({ segment, kind: 'busy' }));
    expect(TopologyError.isInstance(error)).toBe(true);
    expect((error as TopologyError).resource).toBe(`${PREFIX}/${segment}/tasks/kinds/busy/`);
    expect((error as Error).message).toBe(
      `s3: cannot unregister kind "busy" of segment "${segment}": a worker of it is open in this driver; close it first`,
    );
    const afterRefusal = await keys(segment, 'tasks/kinds/busy/');
    expect(afterRefusal, 'no key of the kind was deleted').toEqual(expect.arrayContaining(before));
    expect(afterRefusal).toContain('registration.json');
    expect((await driver.listDeadLetters({ segment, kind: 'busy' })).map((letter) => letter.message.id)).toEqual([failed]);
    const later = (await driver.taskPublish({ n: 1 }, { segment })).id;
    await waitFor(
      () => got.includes(later),
      TIMEOUT_MS,
      () => `the worker after the refusal got [${got}]`,
    );

    // Once closed, it goes.
    await worker.close();
    expect(await driver.unregister!({ segment, kind: 'busy' })).toEqual({ dropped: 0 });
    expect(await keys(segment, 'tasks/kinds/busy/')).toEqual([]);
    expect(await keys(segment, 'dead-letters/kinds/busy/')).toEqual([]);
  });

  it('refuses while a worker of the kind runs in another driver instance (its presence is fresh)', async () => {
    const segment = segmentName('unreg-other');
    const producer = open();
    const got: string[] = [];
    // No wait after taskConsume: the presence is written before it resolves.
    const worker = await open().taskConsume((m) => void got.push(m.id), { segment, topic: 'busy' });
    const error = await rejection(() => producer.unregister!({ segment, kind: 'busy' }));
    expect(TopologyError.isInstance(error)).toBe(true);
    expect((error as TopologyError).resource).toBe(`${PREFIX}/${segment}/tasks/kinds/busy/`);
    expect((error as Error).message).toMatch(
      new RegExp(`^s3: cannot unregister kind "busy" of segment "${segment}": a live worker of it was seen \\(presence `),
    );
    expect(await keys(segment, 'tasks/kinds/busy/')).toContain('registration.json');
    const id = (await producer.taskPublish({ n: 1 }, { segment })).id;
    await waitFor(
      () => got.includes(id),
      TIMEOUT_MS,
      () => `the worker after the refusal got [${got}]`,
    );

    // A worker that closed removed its presence: nothing is refused any more.
    await worker.close();
    expect(await producer.unregister!({ segment, kind: 'busy' })).toEqual({ dropped: 0 });
    expect(await keys(segment, 'tasks/kinds/busy/')).toEqual([]);
  });

  it('removes a named subscription: reopened by its name it gets nothing published before; refused while open here', async () => {
    const segment = segmentName('unreg-sub');
    const producer = open();
    const options = { segment, topics: ['audit.#'], name: 'audit', maxAttempts: 1 };
    const got: number[] = [];
    const consumer = open();
    const first = await consumer.shareConsume((m) => {
      got.push(bodyN(m));
      if ((m.body as { fail?: boolean }).fail) throw new Error('planned failure');
    }, options);
    await producer.sharePublish({ n: 1 }, { segment, topic: 'audit.a' });
    await producer.sharePublish({ n: 2, fail: true }, { segment, topic: 'audit.a' });
    await waitForAsync(
      async () => got.length >= 2 && (await producer.listDeadLetters({ segment, subscription: 'audit' })).length === 1,
      TIMEOUT_MS,
      () => `got [${got}]`,
    );

    const error = await rejection(() => consumer.unregister!({ segment, subscription: 'audit' }));
    expect(TopologyError.isInstance(error)).toBe(true);
    expect((error as TopologyError).resource).toBe(`${PREFIX}/${segment}/shares/subscriptions/audit/`);
    expect((error as Error).message).toBe(
      `s3: cannot unregister subscription "audit" of segment "${segment}": it is open in this driver; close it first`,
    );
    await first.close();
    expect(await keys(segment, 'shares/subscriptions/audit/')).toContain('cursor.json');
    for (let i = 3; i <= 5; i++) await producer.sharePublish({ n: i }, { segment, topic: 'audit.a' });

    const result: UnregisterResult = await producer.unregister!({ segment, subscription: 'audit' });
    expect(result).toEqual({ dropped: undefined });
    expect(await keys(segment, 'shares/subscriptions/audit/')).toEqual([]);
    expect(await keys(segment, 'dead-letters/subscriptions/audit/')).toEqual([]);
    expect(await producer.listDeadLetters({ segment, subscription: 'audit' })).toEqual([]);

    const again: number[] = [];
    await open().shareConsume((m) => void again.push(bodyN(m)), options);
    for (let i = 6; i <= 7; i++) await producer.sharePublish({ n: i }, { segment, topic: 'audit.a' });
    await waitFor(
      () => again.includes(7),
      TIMEOUT_MS,
      () => `reopened audit got [${again}]`,
    );
    expect(again).toEqual([6, 7]);
  });

  it('resolves {dropped: 0} for what does not exist; rejects a bad target and calls after close', async () => {
    const segment = segmentName('unreg-edges');
    const driver = open();
    expect(driver.capabilities.unregister).toBe(true);
    expect(await driver.unregister!({ segment, kind: 'never.seen' })).toEqual({ dropped: 0 });
    expect(await driver.unregister!({ segment, subscription: 'never-seen' })).toEqual({ dropped: 0 });
    for (const [target, argument] of [
      [{ segment, kind: 'a.*' }, 'target.kind'],
      [{ segment, subscription: 'bad name' }, 'target.subscription'],
      [{ segment: 'bad segment', kind: 'k' }, 'target.segment'],
      [{ segment }, 'target'],
    ] as const) {
      const error = await rejection(() => driver.unregister!(target as DeadLetterTarget));
      expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
      expect((error as InvalidArgumentError).argument).toBe(argument);
    }
    await driver.close();
    const closed = await rejection(() => driver.unregister!({ segment, kind: 'k' }));
    expect(DriverClosedError.isInstance(closed), String(closed)).toBe(true);
  });

  it('with retentionMs, a removed kind no longer keeps task log objects', async () => {
    const segment = segmentName('unreg-ret');
    const { producer, fast } = await tasksPinnedBySlowKind(bench, segment, RETENTION_MS, TIMEOUT_MS);
    expect(await stored(segment)).toEqual([1, 2, 3, 4]);

    // What an interrupted unregister (registration deleted first) leaves: a kind folder without
    // registration.json. It is not a registered kind, so it keeps nothing either.
    await client.send(
      new PutObjectCommand({
        Bucket: testS3.bucket,
        Key: `${PREFIX}/${segment}/tasks/kinds/ghost/watermark.json`,
        Body: JSON.stringify({ seq: 1 }),
      }),
    );
    expect(await producer.unregister!({ segment, kind: 'slow' })).toEqual({ dropped: 4 });
    let left: number[] = [];
    await waitForAsync(
      async () => {
        left = await stored(segment);
        return JSON.stringify(left) === '[4]';
      },
      TIMEOUT_MS,
      () => `task log objects stored: [${left}], expected [4] (the head stays)`,
    );
    expect(fast.sort()).toEqual([1, 2, 3, 4]);
    // Unregistering it again finishes the interrupted removal.
    expect(await producer.unregister!({ segment, kind: 'ghost' })).toEqual({ dropped: 0 });
    expect(await keys(segment, 'tasks/kinds/ghost/')).toEqual([]);
  });
});
