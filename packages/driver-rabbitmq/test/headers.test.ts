import { describeIdDiff } from '@mq-drivers/conformance/services';
import { InvalidArgumentError, type Message } from '@mq-drivers/core';
import { describe, expect, it } from 'vitest';
import { brokerBench, brokerSkipReason, segment, until } from './helpers.js';

const skipReason = await brokerSkipReason();

/**
 * Headers RabbitMQ owns or interprets: refused at publish (they would be dropped, rewritten, or
 * close the publishing channel). Keep in step with the README ("Headers").
 */
const REFUSED = [
  'x-death',
  'x-delivery-count',
  'x-acquired-count',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-first-death-exchange',
  'x-first-death-anything',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-last-death-exchange',
  'CC',
  'BCC',
];

/** Accepted, including near misses of the refused ones (RabbitMQ header names are case-sensitive). */
const ACCEPTED: Record<string, string> = {
  tenant: 'acme',
  'X-Death': 'mine',
  'X-Delivery-Count': '7',
  'x-deaths': 'plural',
  cc: 'lower@example.com',
  bcc: 'lower-b@example.com',
  Cc: 'mixed',
  'x-delay': '100',
  'x-match': 'all',
  'x-received-from': 'nowhere',
  'x-expires': '1',
  'x-opt-foo': 'bar',
  timestamp_in_ms: '123',
  'trace.id': 'a.b.c',
  empty: '',
  unicode: 'ünï ✓ 日本',
};

describe.skipIf(skipReason !== undefined)(`rabbitmq headers${skipReason ? ` [skipped: ${skipReason}]` : ''}`, () => {
  const { make, rawChannel } = brokerBench();

  it('every accepted header round-trips unchanged: first delivery, retry, dead letter, redrive', async () => {
    const seg = segment('hdr-ok');
    const driver = make();
    const got: Message[] = [];
    let fail = true;
    const sub = await driver.taskConsume(
      (m) => {
        got.push(m);
        if (fail) throw new Error('fail on purpose');
      },
      { segment: seg, topic: 'k', maxAttempts: 2 },
    );
    const shares: Message[] = [];
    await driver.shareConsume((m) => void shares.push(m), { segment: seg, topics: ['a.#'] });
    const { id } = await driver.taskPublish({ n: 1 }, { segment: seg, headers: ACCEPTED });
    const share = await driver.sharePublish({ n: 2 }, { segment: seg, topic: 'a.b', headers: ACCEPTED });
    await until(
      () => got.length >= 2 && shares.length >= 1,
      () =>
        `task deliveries ${got.map((m) => `${m.id}#${m.attempt}`).join(', ')}; ${describeIdDiff(
          [share.id],
          shares.map((m) => m.id),
        )}`,
    );
    expect(shares[0]!.headers).toEqual(ACCEPTED);
    expect(got.map((m) => [m.id, m.attempt])).toEqual([
      [id, 1],
      [id, 2],
    ]);
    for (const m of got) expect(m.headers, `attempt ${m.attempt}`).toEqual(ACCEPTED);
    let letters: Awaited<ReturnType<typeof driver.listDeadLetters>> = [];
    const deadline = Date.now() + 10_000;
    while (letters.length === 0 && Date.now() < deadline) {
      letters = await driver.listDeadLetters({ segment: seg, kind: 'k' });
      if (letters.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(
      letters.map((l) => l.message.id),
      describeIdDiff(
        [id],
        letters.map((l) => l.message.id),
      ),
    ).toEqual([id]);
    expect(letters[0]!.message.headers).toEqual(ACCEPTED);
    fail = false;
    expect(await driver.redriveDeadLetters({ segment: seg, kind: 'k' })).toBe(1);
    await until(
      () => got.length >= 3,
      () => `deliveries after redrive: ${got.map((m) => `${m.id}#${m.attempt}`).join(', ')}`,
    );
    expect(got[2]!.id).toBe(id);
    expect(got[2]!.headers).toEqual(ACCEPTED);
    await sub.close();
  });

  it('a message from another client with CC/BCC routing headers can be retried and dead-lettered (they are not user headers)', async () => {
    const seg = segment('hdr-foreign-cc');
    const driver = make({ publishTimeoutMs: 5_000 });
    const got: Message[] = [];
    await driver.taskConsume(
      (m) => {
        got.push(m);
        throw new Error('fail on purpose');
      },
      { segment: seg, topic: 'k', maxAttempts: 2 },
    );
    const ch = await rawChannel();
    // Sender-selected distribution: CC adds a routing key (ignored by the fanout task exchange).
    ch.publish(`mq.${seg}.tasks`, '', Buffer.from('{"foreign":true}'), {
      messageId: 'foreign-cc',
      headers: { CC: ['elsewhere'], tenant: 't' },
    });
    await until(
      () => got.length >= 2,
      () => `deliveries: ${got.map((m) => `${m.id}#${m.attempt}`).join(', ')} (the retry never came back)`,
      15_000,
    );
    expect(got.map((m) => [m.id, m.attempt])).toEqual([
      ['foreign-cc', 1],
      ['foreign-cc', 2],
    ]);
    for (const m of got) expect(m.headers).toEqual({ tenant: 't' });
    let letters: Awaited<ReturnType<typeof driver.listDeadLetters>> = [];
    const deadline = Date.now() + 10_000;
    while (letters.length === 0 && Date.now() < deadline) {
      letters = await driver.listDeadLetters({ segment: seg, kind: 'k' });
      if (letters.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(letters.map((l) => l.message.id)).toEqual(['foreign-cc']);
    await ch.close();
  });

  it('headers RabbitMQ owns are refused with InvalidArgumentError naming them, and nothing is sent', async () => {
    const seg = segment('hdr-refused');
    // A short publish timeout: before the fix, CC/BCC closed the publishing channel and the publish only timed out.
    const driver = make({ publishTimeoutMs: 3_000 });
    const tasks: Message[] = [];
    const shares: Message[] = [];
    await driver.taskConsume((m) => void tasks.push(m), { segment: seg, topic: 'k' });
    await driver.shareConsume((m) => void shares.push(m), { segment: seg, topics: ['#'] });
    const problems: string[] = [];
    for (const key of REFUSED) {
      for (const publish of [
        () => driver.taskPublish({ key }, { segment: seg, headers: { ok: 'x', [key]: 'v' } }),
        () => driver.sharePublish({ key }, { segment: seg, topic: 'a.b', headers: { [key]: 'v' } }),
      ]) {
        const outcome = await publish().then(
          (receipt) => `accepted as ${receipt.id}`,
          (error: unknown) => error,
        );
        if (!InvalidArgumentError.isInstance(outcome)) {
          problems.push(`${key}: ${outcome instanceof Error ? `${outcome.name}: ${outcome.message}` : String(outcome)}`);
          continue;
        }
        if (outcome.argument !== `headers.${key}`) problems.push(`${key}: argument ${outcome.argument}`);
        if (!outcome.message.startsWith('rabbitmq: ') || !outcome.message.includes(`"${key}"`)) {
          problems.push(`${key}: message does not name it: ${outcome.message}`);
        }
      }
    }
    expect(problems).toEqual([]);
    // Nothing of the refused publishes arrives: a marker sent afterwards is all each consumer sees.
    const task = await driver.taskPublish({ marker: true }, { segment: seg });
    const share = await driver.sharePublish({ marker: true }, { segment: seg, topic: 'a.b' });
    await until(
      () => tasks.some((m) => m.id === task.id) && shares.some((m) => m.id === share.id),
      () =>
        `${describeIdDiff(
          [task.id],
          tasks.map((m) => m.id),
        )}; ${describeIdDiff(
          [share.id],
          shares.map((m) => m.id),
        )}`,
    );
    expect(
      tasks.map((m) => m.id),
      describeIdDiff(
        [task.id],
        tasks.map((m) => m.id),
      ),
    ).toEqual([task.id]);
    expect(
      shares.map((m) => m.id),
      describeIdDiff(
        [share.id],
        shares.map((m) => m.id),
      ),
    ).toEqual([share.id]);
  });
});
