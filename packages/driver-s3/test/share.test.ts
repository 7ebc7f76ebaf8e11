import { describeIdDiff } from '@mq-drivers/conformance/services';
import type { Driver, Message } from '@mq-drivers/core';
import { afterEach, describe, expect, it } from 'vitest';
import { newDriver, s3Unavailable, segmentName, waitFor } from './helpers.js';

const unavailable = await s3Unavailable();

describe.skipIf(unavailable !== undefined)(`s3 share subscriptions${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const drivers: Driver[] = [];
  const open = (extra = {}) => {
    const d = newDriver(extra);
    drivers.push(d);
    return d;
  };
  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.close()));
  });

  it('delivers what is published while open, filtered by pattern, in publish order', async () => {
    const segment = segmentName('share-basic');
    const producer = open();
    const consumer = open();
    const got: Message[] = [];
    await consumer.shareConsume((m) => void got.push(m), { segment, topics: ['orders.*'], prefetch: 1 });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      ids.push((await producer.sharePublish({ i }, { segment, topic: 'orders.created', headers: { n: String(i) } })).id);
      await producer.sharePublish({ i }, { segment, topic: 'users.created' });
    }
    await waitFor(
      () => got.length >= ids.length,
      10_000,
      () =>
        describeIdDiff(
          ids,
          got.map((m) => m.id),
        ),
    );
    expect(
      got.map((m) => m.id),
      describeIdDiff(
        ids,
        got.map((m) => m.id),
      ),
    ).toEqual(ids);
    expect(got[3]?.headers.n).toBe('3');
    expect(got[3]?.body).toEqual({ i: 3 });
    expect(got[3]?.topic).toBe('orders.created');
    expect(got[3]?.attempt).toBe(1);
  });

  it('a durable subscription keeps messages while closed and resumes where it stopped', async () => {
    const segment = segmentName('share-durable');
    const producer = open();
    const got: string[] = [];
    const first = open();
    const sub = await first.shareConsume((m) => void got.push(m.id), { segment, topics: ['#'], name: 'audit' });
    const before = await Promise.all(Array.from({ length: 10 }, (_, i) => producer.sharePublish(i, { segment, topic: 'a.b' })));
    await waitFor(
      () => got.length >= 10,
      10_000,
      () =>
        describeIdDiff(
          before.map((r) => r.id),
          got,
        ),
    );
    await sub.close();
    const whileClosed = await Promise.all(
      Array.from({ length: 10 }, (_, i) => producer.sharePublish(i, { segment, topic: 'a.c' })),
    );
    const second = open();
    await second.shareConsume((m) => void got.push(m.id), { segment, topics: ['#'], name: 'audit' });
    const all = [...before, ...whileClosed].map((r) => r.id);
    await waitFor(
      () => got.length >= 20,
      10_000,
      () => describeIdDiff(all, got),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(got.sort(), describeIdDiff(all, got)).toEqual([...all].sort());
  });

  it('replays from earliest in publish order, and from a saved cursor', async () => {
    const segment = segmentName('share-replay');
    const producer = open();
    const ids: string[] = [];
    for (let i = 0; i < 15; i++) ids.push((await producer.sharePublish(i, { segment, topic: 't' })).id);
    const got: string[] = [];
    const reader = open();
    const sub = await reader.shareConsume((m) => void got.push(m.id), { segment, topics: ['t'], from: 'earliest', prefetch: 1 });
    await waitFor(
      () => got.length >= 15,
      10_000,
      () => describeIdDiff(ids, got),
    );
    expect(got, describeIdDiff(ids, got)).toEqual(ids);
    const cursor = sub.cursor?.();
    expect(cursor).toBeDefined();
    const later: string[] = [];
    for (let i = 0; i < 5; i++) later.push((await producer.sharePublish(i, { segment, topic: 't' })).id);
    const fromCursor: string[] = [];
    await open().shareConsume((m) => void fromCursor.push(m.id), {
      segment,
      topics: ['t'],
      from: { cursor: cursor! },
      prefetch: 1,
    });
    await waitFor(
      () => fromCursor.length >= 5,
      10_000,
      () => describeIdDiff(later, fromCursor),
    );
    expect(fromCursor).toEqual(later);
  });

  it('replays from a date', async () => {
    const segment = segmentName('share-date');
    const producer = open();
    await producer.sharePublish('old', { segment, topic: 't' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const since = new Date();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await producer.sharePublish(i, { segment, topic: 't' })).id);
    const got: string[] = [];
    await open().shareConsume((m) => void got.push(m.id), { segment, topics: ['t'], from: since, prefetch: 1 });
    await waitFor(
      () => got.length >= 3,
      10_000,
      () => describeIdDiff(ids, got),
    );
    expect(got).toEqual(ids);
  });

  it('retries a failing message with attempt+1, then dead-letters it; redrive brings it back', async () => {
    const segment = segmentName('share-dead');
    const producer = open();
    const consumer = open();
    const attempts: number[] = [];
    let fail = true;
    const sub = await consumer.shareConsume(
      (m) => {
        attempts.push(m.attempt);
        if (fail) throw new Error(`boom ${m.attempt}`);
      },
      { segment, topics: ['t'], maxAttempts: 3 },
    );
    const { id } = await producer.sharePublish('x', { segment, topic: 't' });
    const target = { segment, subscription: sub.name };
    let letters: Awaited<ReturnType<Driver['listDeadLetters']>> = [];
    const deadline = Date.now() + 10_000;
    while (letters.length === 0 && Date.now() < deadline) {
      letters = await consumer.listDeadLetters(target);
      if (letters.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(attempts).toEqual([1, 2, 3]);
    expect(letters.map((l) => l.message.id)).toEqual([id]);
    expect(letters[0]?.error).toBe('boom 3');
    fail = false;
    expect(await consumer.redriveDeadLetters(target)).toBe(1);
    await waitFor(
      () => attempts.length === 4,
      10_000,
      () => `attempts ${attempts.join(',')}`,
    );
    expect(attempts[3]).toBe(1);
    expect(await consumer.listDeadLetters(target)).toEqual([]);
  });
});
