import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, MAX_BODY_DEPTH, MqError } from '@mq-drivers/core';
import { createMemoryDriver, driver as definition, inspectMemoryBroker } from '@mq-drivers/memory';
import { afterEach, describe, expect, it } from 'vitest';

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((d) => d.close()));
});

function open(options: Parameters<typeof createMemoryDriver>[0] = {}) {
  const driver = createMemoryDriver({ redeliveryBackoff: { baseMs: 1, maxMs: 5 }, ...options });
  opened.push(driver);
  return driver;
}

async function until(check: () => boolean, what: string, timeoutMs = 2_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const segment = () => `mem-${randomUUID().slice(0, 8)}`;

describe('memory driver', () => {
  it('inspects a kind queue: count, peek, take oldest/newest, list, exists', async () => {
    const seg = segment();
    const broker = `b-${randomUUID().slice(0, 8)}`;
    const driver = open({ broker });
    const inspector = inspectMemoryBroker(broker);
    expect(inspector.taskQueue(seg, 'Email').exists()).toBe(false);
    const worker = await driver.taskConsume(() => {}, { topic: 'Email', segment: seg });
    await worker.close();
    const ids = [];
    for (const n of [1, 2, 3, 4]) ids.push((await driver.taskPublish({ n }, { segment: seg })).id);
    const queue = inspector.taskQueue(seg, 'Email');
    expect(queue.exists()).toBe(true);
    expect(queue.count()).toBe(4);
    expect(queue.peekOldest()?.id).toBe(ids[0]);
    expect(queue.peekNewest()?.id).toBe(ids[3]);
    expect(queue.list().map((m) => m.id)).toEqual(ids);
    expect(queue.takeOldest()?.body).toEqual({ n: 1 });
    expect(queue.takeNewest()?.body).toEqual({ n: 4 });
    expect(queue.count()).toBe(2);
    expect(inspector.kinds(seg)).toEqual(['Email']);
    expect(inspector.segments()).toContain(seg);
  });

  it('inspects and takes dead letters', async () => {
    const seg = segment();
    const broker = `b-${randomUUID().slice(0, 8)}`;
    const driver = open({ broker });
    await driver.taskConsume(
      () => {
        throw new Error('smtp down');
      },
      { topic: 'Email', segment: seg, maxAttempts: 2 },
    );
    const { id } = await driver.taskPublish('x', { segment: seg });
    const store = inspectMemoryBroker(broker).deadLetters({ segment: seg, kind: 'Email' });
    await until(() => store.count() === 1, 'the dead letter');
    expect(store.peekOldest()).toMatchObject({ error: 'smtp down', message: { id, attempt: 2 } });
    expect(store.takeOldest()?.message.id).toBe(id);
    expect(store.count()).toBe(0);
  });

  it('shares one broker per name: memory: reaches the default one, memory://x another', async () => {
    const seg = segment();
    const a = await definition.create('memory:');
    const b = await definition.create('memory://other-broker');
    const c = open();
    opened.push(a, b);
    const seen: string[] = [];
    await c.taskConsume((m) => void seen.push(m.body as string), { topic: 'K', segment: seg });
    await a.taskPublish('via-default', { segment: seg });
    await b.taskPublish('via-other', { segment: seg });
    await until(() => seen.length >= 1, 'a delivery');
    expect(seen).toEqual(['via-default']);
    expect(() => definition.create('memory:/bad/path')).toThrow(/memory:\/\/<broker name>/);
  });

  it('validates options at construction, naming the option', () => {
    for (const [options, argument] of [
      [{ maxMessageBytes: 0 }, 'options.maxMessageBytes'],
      [{ redeliveryBackoff: { baseMs: -1, maxMs: 1 } }, 'options.redeliveryBackoff.baseMs'],
      [{ broker: 'has space' }, 'options.broker'],
      [{ historyLimit: 1.5 }, 'options.historyLimit'],
    ] as const) {
      try {
        createMemoryDriver(options as never);
        expect.unreachable();
      } catch (error) {
        expect(InvalidArgumentError.isInstance(error)).toBe(true);
        expect((error as InstanceType<typeof InvalidArgumentError>).argument).toBe(argument);
      }
    }
  });

  it('keeps share history up to historyLimit for replay', async () => {
    const seg = segment();
    const broker = `b-${randomUUID().slice(0, 8)}`;
    const driver = open({ broker, historyLimit: 3 });
    for (const n of [1, 2, 3, 4, 5]) await driver.sharePublish(n, { topic: 'T', segment: seg });
    const seen: unknown[] = [];
    await driver.shareConsume((m) => void seen.push(m.body), { topics: ['#'], segment: seg, from: 'earliest' });
    await until(() => seen.length === 3, 'three replayed shares');
    expect(seen).toEqual([3, 4, 5]);
  });

  it('gives each handler its own copy of the body', async () => {
    const seg = segment();
    const driver = open();
    const bodies: { list: number[] }[] = [];
    for (const name of ['A', 'B']) {
      await driver.taskConsume(
        (m) => {
          const body = m.body as { list: number[] };
          body.list.push(99);
          bodies.push(body);
        },
        { topic: name, segment: seg },
      );
    }
    await driver.taskPublish({ list: [1] }, { segment: seg });
    await until(() => bodies.length === 2, 'both kinds');
    expect(bodies).toEqual([{ list: [1, 99] }, { list: [1, 99] }]);
  });

  it('refuses a body nested deeper than MAX_BODY_DEPTH with a typed error, sending nothing', async () => {
    const seg = segment();
    const broker = `b-${randomUUID().slice(0, 8)}`;
    const driver = open({ broker });
    await (await driver.taskConsume(() => {}, { topic: 'K', segment: seg })).close();
    const nested = (levels: number) => {
      let body: unknown = 'leaf';
      for (let level = 0; level < levels; level++) body = { n: body };
      return body as never;
    };
    await driver.taskPublish(nested(MAX_BODY_DEPTH), { segment: seg });
    for (const levels of [MAX_BODY_DEPTH + 1, 5_000, 100_000]) {
      for (const publish of [
        () => driver.taskPublish(nested(levels), { segment: seg }),
        () => driver.sharePublish(nested(levels), { topic: 'T', segment: seg }),
      ]) {
        const error = await publish().catch((e: unknown) => e);
        expect(MqError.isInstance(error), `${levels} levels: ${String(error)}`).toBe(true);
        expect(InvalidArgumentError.isInstance(error)).toBe(true);
        expect((error as Error).message).toMatch(/^memory: invalid body(\.n)+: an object nested deeper than 256 levels/);
      }
    }
    expect(inspectMemoryBroker(broker).taskQueue(seg, 'K').count()).toBe(1);
  });

  it('names the bad value in every validation message, and never a URL password', async () => {
    const seg = segment();
    const driver = open();
    const cases: [run: () => unknown, argument: string, shown: string][] = [
      [() => definition.create('memory://a/b'), 'url', '"memory://a/b"'],
      [() => definition.create('memory:/bad/path'), 'url', '"memory:/bad/path"'],
      [() => definition.create('memory://user:S3CR3T@host'), 'url', '"memory://user:***@host"'],
      [() => createMemoryDriver(5 as never), 'options', 'number 5'],
      [() => createMemoryDriver({ redeliveryBackoff: 'fast' as never }), 'options.redeliveryBackoff', '"fast"'],
      [() => createMemoryDriver({ brokr: 'x' } as never), 'options.brokr', '"brokr" is not a known option'],
      [
        () => createMemoryDriver({ redeliveryBackoff: { baseMs: 1, maxMs: 2, factor: 3 } as never }),
        'options.redeliveryBackoff.factor',
        '"factor" is not a known option',
      ],
      [() => driver.shareConsume(() => {}, { topics: ['a'], segment: seg, from: { cursor: 'nope' } }), 'from.cursor', '"nope"'],
      [() => driver.redriveDeadLetters({ segment: seg, kind: 'K' }, { ids: 'abc' as never }), 'ids', '"abc"'],
      [() => driver.redriveDeadLetters({ segment: seg, kind: 'K' }, { idz: ['a'] } as never), 'idz', '"idz"'],
      [() => driver.taskPublish(1, { segment: seg, topic: 'K' } as never), 'topic', '"topic" is not a known option'],
    ];
    for (const [run, argument, shown] of cases) {
      const error = await (async () => run())().then(
        () => expect.unreachable(`${argument} accepted`),
        (e: unknown) => e,
      );
      expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
      const typed = error as InstanceType<typeof InvalidArgumentError>;
      expect(typed.argument).toBe(argument);
      expect(typed.message).toMatch(/^memory: invalid /);
      expect(typed.message).toContain(shown);
      expect(JSON.stringify(typed)).not.toContain('S3CR3T');
    }
  });
});
