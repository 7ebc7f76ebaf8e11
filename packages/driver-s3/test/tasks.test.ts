import { describeIdDiff } from '@mq-drivers/conformance/services';
import type { Driver, Message } from '@mq-drivers/core';
import { afterEach, describe, expect, it } from 'vitest';
import { newDriver, s3Unavailable, segmentName, waitFor } from './helpers.js';

const unavailable = await s3Unavailable();

describe.skipIf(unavailable !== undefined)(`s3 task groups${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const drivers: Driver[] = [];
  const open = () => {
    const d = newDriver();
    drivers.push(d);
    return d;
  };
  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.close()));
  });

  it('each kind gets every task exactly once, spread over the competing workers of a kind', async () => {
    const segment = segmentName('tasks-fanout');
    const producer = open();
    const mails: Record<string, string[]> = { w1: [], w2: [], w3: [] };
    const audit: string[] = [];
    for (const w of Object.keys(mails)) {
      await open().taskConsume(
        async (m) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          mails[w]!.push(m.id);
        },
        { segment, topic: 'mail', prefetch: 1 },
      );
    }
    await open().taskConsume((m: Message) => void audit.push(m.id), { segment, topic: 'audit' });
    const ids = (await Promise.all(Array.from({ length: 60 }, (_, i) => producer.taskPublish({ i }, { segment })))).map(
      (r) => r.id,
    );
    const allMail = () => Object.values(mails).flat();
    await waitFor(
      () => allMail().length >= 60 && audit.length >= 60,
      20_000,
      () => `mail ${describeIdDiff(ids, allMail())} audit ${describeIdDiff(ids, audit)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(allMail().sort(), describeIdDiff(ids, allMail())).toEqual([...ids].sort());
    expect(audit.sort(), describeIdDiff(ids, audit)).toEqual([...ids].sort());
  });

  it('a registered kind receives tasks published while no worker runs; one published before registration reaches no one', async () => {
    const segment = segmentName('tasks-durable');
    const producer = open();
    await producer.taskPublish('before', { segment });
    const got: string[] = [];
    const worker = open();
    const sub = await worker.taskConsume((m) => void got.push(m.body as string), { segment, topic: 'k' });
    await sub.close();
    await producer.taskPublish('while-closed', { segment });
    await open().taskConsume((m) => void got.push(m.body as string), { segment, topic: 'k' });
    await waitFor(
      () => got.length >= 1,
      10_000,
      () => got.join(','),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(got).toEqual(['while-closed']);
  });

  it('retries with attempt+1 and the same id, dead-letters after maxAttempts, redrives with attempt 1', async () => {
    const segment = segmentName('tasks-dead');
    const producer = open();
    const worker = open();
    const seen: { id: string; attempt: number }[] = [];
    let fail = true;
    await worker.taskConsume(
      (m) => {
        seen.push({ id: m.id, attempt: m.attempt });
        if (fail) throw new Error('nope');
      },
      { segment, topic: 'k', maxAttempts: 3 },
    );
    const { id } = await producer.taskPublish('x', { segment });
    const target = { segment, kind: 'k' };
    let letters: Awaited<ReturnType<Driver['listDeadLetters']>> = [];
    const deadline = Date.now() + 15_000;
    while (letters.length === 0 && Date.now() < deadline) {
      letters = await producer.listDeadLetters(target);
      if (letters.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(seen).toEqual([1, 2, 3].map((attempt) => ({ id, attempt })));
    expect(letters.map((l) => [l.message.id, l.error, l.message.attempt])).toEqual([[id, 'nope', 3]]);
    fail = false;
    expect(await producer.redriveDeadLetters(target, { ids: [id] })).toBe(1);
    await waitFor(
      () => seen.length === 4,
      10_000,
      () => JSON.stringify(seen),
    );
    expect(seen[3]).toEqual({ id, attempt: 1 });
    expect(await producer.listDeadLetters(target)).toEqual([]);
  });

  it('close hands back unacked tasks to another worker without counting an attempt', async () => {
    const segment = segmentName('tasks-close');
    const producer = open();
    const slow = open();
    const started: string[] = [];
    const sub = await slow.taskConsume(
      async (m) => {
        started.push(m.id);
        await new Promise(() => undefined);
      },
      { segment, topic: 'k', prefetch: 5 },
    );
    const ids = (await Promise.all(Array.from({ length: 5 }, (_, i) => producer.taskPublish(i, { segment })))).map((r) => r.id);
    await waitFor(
      () => started.length >= 5,
      10_000,
      () => describeIdDiff(ids, started),
    );
    await sub.close({ timeoutMs: 100 });
    const got: Message[] = [];
    await open().taskConsume((m) => void got.push(m), { segment, topic: 'k', prefetch: 5 });
    await waitFor(
      () => got.length >= 5,
      10_000,
      () =>
        describeIdDiff(
          ids,
          got.map((m) => m.id),
        ),
    );
    expect(got.map((m) => m.id).sort()).toEqual([...ids].sort());
    expect(got.every((m) => m.attempt === 1)).toBe(true);
  });
});
