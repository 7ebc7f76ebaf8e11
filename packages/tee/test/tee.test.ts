import { randomUUID } from 'node:crypto';
import {
  type Driver,
  DriverClosedError,
  InvalidArgumentError,
  type Message,
  MessageTooLargeError,
  MqError,
  PublishError,
} from '@mq-drivers/core';
import { createMemoryDriver, inspectMemoryBroker } from '@mq-drivers/memory';
import { type MirrorErrorEvent, TeePublishError, tee, type UndeliveredCopy } from '@mq-drivers/tee';
import { afterEach, describe, expect, it } from 'vitest';
import { expectSameIds, flaky, replayIds, segment, until } from './helpers.js';

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((driver) => driver.close()));
});

function memory(broker: string, maxMessageBytes?: number) {
  const driver = createMemoryDriver({ broker, redeliveryBackoff: { baseMs: 5, maxMs: 20 }, maxMessageBytes });
  return driver;
}

/** Two memory brokers, a flaky wrapper on the mirror, and their names. */
function pair() {
  const a = `tee-a-${randomUUID().slice(0, 8)}`;
  const b = `tee-b-${randomUUID().slice(0, 8)}`;
  const primary = flaky(memory(a), 'memory');
  const mirror = flaky(memory(b), 'memory');
  return { a, b, primary, mirror };
}

function track<T extends { close(): Promise<void> }>(driver: T): T {
  opened.push(driver);
  return driver;
}

/** Registers a task kind on each broker so tasks are kept, then lists what waits there. */
async function registerKind(driver: Driver, seg: string, kind = 'Work') {
  const worker = await driver.taskConsume(() => {}, { topic: kind, segment: seg });
  await worker.close();
}
const waiting = (broker: string, seg: string, kind = 'Work') =>
  inspectMemoryBroker(broker)
    .taskQueue(seg, kind)
    .list()
    .map((message) => message.id);

describe('tee: shape and capabilities', () => {
  it('names itself after its targets and speaks contract v1; three call forms', () => {
    const { a, b } = pair();
    const listed = track(tee([memory(a), memory(b)]));
    expect(listed.specificationVersion).toBe('v1');
    expect(listed.name).toBe('tee(memory,memory)');
    expect(listed.targets).toEqual(['memory', 'memory#2']);
    expect(listed.consumeFrom).toBe('memory');
    expect(listed.mode).toBe('all');

    const named = track(tee({ fast: memory(a), archive: memory(b) }, { mode: 'primary', consumeFrom: 'archive' }));
    expect(named.targets).toEqual(['fast', 'archive']);
    expect(named.consumeFrom).toBe('archive');
    expect(named.mode).toBe('primary');

    const variadic = track(tee(memory(a), memory(b), { mode: 'primary' }));
    expect(variadic.targets).toEqual(['memory', 'memory#2']);
    expect(variadic.mode).toBe('primary');
    const noOptions = track(tee(memory(a), memory(b)));
    expect(noOptions.mode).toBe('all');
  });

  it('takes the smallest maxMessageBytes and the consuming driver for the rest', () => {
    const { a, b } = pair();
    const small = memory(b, 1_000);
    const mq = track(tee([memory(a, 50_000), small]));
    expect(mq.capabilities).toEqual({
      durable: true,
      replay: true,
      ordering: 'per-publisher',
      deadLetter: true,
      maxMessageBytes: 1_000,
      unregister: true,
    });
    const fromMirror = track(tee([memory(a), memory(b)], { mode: 'primary', consumeFrom: 1 }));
    expect(fromMirror.capabilities.ordering).toBe('none'); // outbox retries arrive late
  });

  it('refuses a header any target refuses (capabilities.refusedHeaders), before any target gets the message', async () => {
    const { a, b } = pair();
    const plain = memory(a);
    const strict = memory(b);
    const strictDriver = {
      ...flaky(strict),
      capabilities: { ...strict.capabilities, refusedHeaders: ['x-death', 'x-first-death-*'] },
    };
    const mq = track(tee([plain, strictDriver]));
    expect(mq.capabilities.refusedHeaders).toEqual(['x-death', 'x-first-death-*']);
    const seg = segment();
    await registerKind(track(memory(a)), seg);
    await registerKind(track(memory(b)), seg);
    for (const headers of [{ 'x-death': 'x' }, { ok: 'yes', 'x-first-death-queue': 'q' }] as Record<string, string>[]) {
      const error = await mq.taskPublish({ n: 1 }, { segment: seg, headers }).catch((e: unknown) => e);
      expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
      expect((error as InvalidArgumentError).message).toMatch(/^tee\(memory,memory\): .*x-(first-)?death/);
    }
    await mq.taskPublish({ n: 2 }, { segment: seg, headers: { 'X-Death': 'case differs' } });
    for (const broker of [a, b]) expect(waiting(broker, seg)).toHaveLength(1);
  });

  it('rejects bad construction input with InvalidArgumentError naming the option', () => {
    const { a, b } = pair();
    const cases: [() => unknown, string][] = [
      [() => tee([]), 'targets'],
      [() => tee([{} as Driver]), 'targets[0]'],
      [() => tee([memory(a)], { mode: 'some' as 'all' }), 'options.mode'],
      [() => tee([memory(a), memory(b)], { consumeFrom: 'nope' }), 'options.consumeFrom'],
      [() => tee([memory(a), memory(b)], { consumeFrom: 2 }), 'options.consumeFrom'],
      [() => tee([memory(a), memory(b)], { outboxLimit: 10 }), 'options.outboxLimit'], // needs mode 'primary'
      [() => tee([memory(a), memory(b)], { mode: 'primary', outboxLimit: 0 }), 'options.outboxLimit'],
      [() => tee([memory(a)], { mode: 'primary', retryBackoff: { baseMs: 10, maxMs: 1 } }), 'options.retryBackoff.maxMs'],
      [() => tee([memory(a)], { colour: 'red' } as never), 'options.colour'],
      [() => tee([memory(a)], { closeTimeoutMs: 2 ** 31 }), 'options.closeTimeoutMs'], // beyond Node's longest timer
      [() => tee([memory(a)], { closeTargets: 'no' as never }), 'options.closeTargets'],
      [() => tee([memory(a)], { onUndelivered: 'log' as never }), 'options.onUndelivered'],
    ];
    for (const [make, argument] of cases) {
      let caught: unknown;
      try {
        make();
      } catch (error) {
        caught = error;
      }
      expect(InvalidArgumentError.isInstance(caught), `${argument}: ${String(caught)}`).toBe(true);
      expect((caught as InvalidArgumentError).argument).toBe(argument);
    }
    const same = memory(a);
    expect(() => tee([same, same])).toThrow(/same driver object/);
    // Core's option helpers: the known keys and the near miss are named.
    expect(() => tee([memory(a)], { outboxlimit: 3 } as never)).toThrow(/known: .*outboxLimit.*did you mean outboxLimit\?/);
  });

  it('gives direct access to each target by name or index', () => {
    const { a, b } = pair();
    const first = memory(a);
    const second = memory(b);
    const mq = track(tee({ rabbit: first, s3: second }));
    expect(mq.target('s3')).toBe(second);
    expect(mq.target(0)).toBe(first);
    expect(() => mq.target('kafka')).toThrow(InvalidArgumentError);
    expect(() => mq.target(5)).toThrow(/0: rabbit, 1: s3/);
  });
});

describe('tee: validation happens once, before any target', () => {
  it('rejects too-large and invalid messages with the tee name; no target receives anything', async () => {
    const { a, b } = pair();
    const primary = flaky(memory(a, 100_000));
    const mirror = flaky(memory(b, 500));
    const mq = track(tee([primary, mirror]));
    const seg = segment();
    const big = { text: 'x'.repeat(600) }; // fits the primary, not the mirror
    const tooLarge = await mq.taskPublish(big, { segment: seg }).catch((error: unknown) => error);
    expect(MessageTooLargeError.isInstance(tooLarge)).toBe(true);
    expect((tooLarge as MessageTooLargeError).maxBytes).toBe(500);
    expect((tooLarge as Error).message).toMatch(/^tee\(memory,memory\): /);
    for (const bad of [
      () => mq.taskPublish({ n: 1 }, { segment: 'no spaces allowed' }),
      () => mq.sharePublish({ n: 1 }, { segment: seg, topic: 'a.*' }),
      () => mq.taskPublish({ n: 1 }, { segment: seg, headers: { 'x-mq-id': '1' } }),
      () => mq.taskPublish({ n: 1 }, { segment: seg, id: '' }),
      () => mq.taskPublish(undefined as never, { segment: seg }),
    ]) {
      const error = await bad().catch((e: unknown) => e);
      expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
    }
    expect(primary.control.calls).toBe(0);
    expect(mirror.control.calls).toBe(0);
  });
});

describe("tee: mode 'all'", () => {
  it('publishes tasks and shares to every target with the same id', async () => {
    const { a, b, primary, mirror } = pair();
    const mq = track(tee([primary, mirror]));
    const seg = segment();
    await registerKind(mq.target(0), seg);
    await registerKind(mq.target(1), seg);
    const taskIds: string[] = [];
    for (let i = 0; i < 5; i++) taskIds.push((await mq.taskPublish({ i }, { segment: seg })).id);
    taskIds.push((await mq.taskPublish({ mine: true }, { segment: seg, id: 'order-42', headers: { trace: 't1' } })).id);
    expect(taskIds[5]).toBe('order-42');
    expectSameIds('primary tasks', taskIds, waiting(a, seg));
    expectSameIds('mirror tasks', taskIds, waiting(b, seg));
    expect(inspectMemoryBroker(b).taskQueue(seg, 'Work').peekNewest()?.headers).toEqual({ trace: 't1' });

    const shareIds = await Promise.all([1, 2, 3].map((n) => mq.sharePublish({ n }, { segment: seg, topic: 'Order.Created' })));
    const ids = shareIds.map((receipt) => receipt.id);
    expectSameIds('primary shares', ids, await replayIds(mq.target(0), seg, 3, { quietMs: 50 }));
    expectSameIds('mirror shares', ids, await replayIds(mq.target(1), seg, 3, { quietMs: 50 }));
    expect(mq.stats().targets.map((t) => t.confirmed)).toEqual([9, 9]);
  });

  it('rejects with TeePublishError naming the failed target; a retry with the same id completes it', async () => {
    const { a, b, primary, mirror } = pair();
    const mq = track(tee([primary, mirror]));
    const seg = segment();
    await registerKind(primary, seg);
    await registerKind(mirror, seg);
    mirror.control.failing = true;
    const error = await mq.taskPublish({ n: 1 }, { segment: seg, id: 'm-1' }).catch((e: unknown) => e);
    expect(TeePublishError.isInstance(error)).toBe(true);
    expect(PublishError.isInstance(error)).toBe(true);
    expect(MqError.isInstance(error)).toBe(true);
    const failure = error as TeePublishError;
    expect(failure.reason).toBe('targets-failed');
    expect(failure.messageId).toBe('m-1');
    expect(failure.succeeded).toEqual(['memory']);
    expect(failure.failures.map((f) => f.target)).toEqual(['memory#2']);
    expect(String(failure.failures[0]?.error)).toMatch(/broker is down/);
    expect(failure.message).toMatch(/^tee\(memory,memory\): message m-1 was not accepted by memory#2 \(.*broker is down/);
    expect(failure.cause).toBe(failure.failures[0]?.error);
    expect(waiting(a, seg)).toEqual(['m-1']);
    expect(waiting(b, seg)).toEqual([]);

    // Sync throws count as failures too, and both failing lists both.
    primary.control.failing = true;
    mirror.control.throwSync = true;
    const both = (await mq.taskPublish({ n: 2 }, { segment: seg, id: 'm-2' }).catch((e: unknown) => e)) as TeePublishError;
    expect(both.failures.map((f) => f.target)).toEqual(['memory', 'memory#2']);
    expect(both.succeeded).toEqual([]);
    expect(both.cause).toBeInstanceOf(AggregateError);

    primary.control.failing = false;
    mirror.control.failing = false;
    await mq.taskPublish({ n: 1 }, { segment: seg, id: 'm-1' });
    await mq.taskPublish({ n: 2 }, { segment: seg, id: 'm-2' });
    // The retry duplicated m-1 on the primary; the shared id makes it detectable.
    expect(waiting(a, seg)).toEqual(['m-1', 'm-1', 'm-2']);
    expect(waiting(b, seg)).toEqual(['m-1', 'm-2']);
    expect(mq.stats()).toMatchObject({ published: 2, rejected: 2, outboxDepth: 0 });
  });

  it('treats a target that ignores the id option as failed', async () => {
    const { a, b } = pair();
    const real = memory(b);
    const ignoresId: Driver = {
      ...real,
      taskPublish: (body, options) => real.taskPublish(body, { ...options, id: undefined }),
      sharePublish: (body, options) => real.sharePublish(body, { ...options, id: undefined }),
    };
    const mq = track(tee({ main: memory(a), odd: ignoresId }));
    const error = (await mq.taskPublish({ n: 1 }, { segment: segment() }).catch((e: unknown) => e)) as TeePublishError;
    expect(error.failures.map((f) => f.target)).toEqual(['odd']);
    expect(String(error.failures[0]?.error)).toMatch(/ignores the `id` publish option/);
  });
});

describe("tee: mode 'primary'", () => {
  it('resolves on the primary, retries a failing mirror from the outbox, and catches up with the same ids', async () => {
    const { a, b, primary, mirror } = pair();
    const events: MirrorErrorEvent[] = [];
    const mq = track(
      tee([primary, mirror], {
        mode: 'primary',
        retryBackoff: { baseMs: 10, maxMs: 40 },
        onMirrorError: (event) => events.push(event),
      }),
    );
    const seg = segment();
    await registerKind(primary, seg);
    await registerKind(mirror, seg);
    const ids: string[] = [];
    ids.push((await mq.taskPublish({ n: 0 }, { segment: seg })).id);
    mirror.control.failing = true;
    for (let n = 1; n <= 20; n++) ids.push((await mq.taskPublish({ n }, { segment: seg })).id);
    ids.push((await mq.sharePublish({ n: 21 }, { segment: seg, topic: 'Audit.Entry' })).id);
    expect(waiting(a, seg)).toEqual(ids.slice(0, 21)); // the primary has everything, in order
    expect(mq.outboxDepth()).toBe(21);
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events[0]).toMatchObject({ target: 'memory#2', messageId: ids[1], attempts: 1 });
    expect(String(events[0]?.error)).toMatch(/broker is down/);
    const stats = mq.stats();
    expect(stats.targets[1]).toMatchObject({ role: 'mirror', failing: true, outboxDepth: 21, unconfirmed: 21 });
    // While failing, one probe at a time: the flaky mirror is not hammered.
    const callsWhileDown = mirror.control.calls;
    await until(() => events.length >= 3, 'a few probe failures');
    expect(mirror.control.calls - callsWhileDown).toBeLessThanOrEqual(events.length);
    const notYet = await mq.flush({ timeoutMs: 30 });
    expect(notYet).toEqual({ caughtUp: false, unconfirmed: 21, outboxDepth: 21 });

    mirror.control.failing = false;
    const flushed = await mq.flush({ timeoutMs: 5_000 });
    expect(flushed).toEqual({ caughtUp: true, unconfirmed: 0, outboxDepth: 0 });
    expectSameIds('primary tasks', ids.slice(0, 21), waiting(a, seg));
    expectSameIds('mirror tasks', ids.slice(0, 21), waiting(b, seg));
    expectSameIds('mirror shares', [ids[21] as string], await replayIds(mirror, seg, 1, { quietMs: 50 }));
    expect(mq.stats().targets[1]).toMatchObject({ failing: false, confirmed: 22, outboxDepth: 0 });
  });

  it('rejects when the outbox is full, before the primary receives the message', async () => {
    const { a, b, primary, mirror } = pair();
    const mq = track(tee([primary, mirror], { mode: 'primary', outboxLimit: 3, retryBackoff: { baseMs: 5, maxMs: 10 } }));
    const seg = segment();
    await registerKind(primary, seg);
    await registerKind(mirror, seg);
    mirror.control.failing = true;
    const accepted = [];
    for (let n = 0; n < 3; n++) accepted.push((await mq.taskPublish({ n }, { segment: seg })).id);
    const callsBefore = primary.control.calls;
    const error = (await mq.taskPublish({ n: 3 }, { segment: seg, id: 'over' }).catch((e: unknown) => e)) as TeePublishError;
    expect(TeePublishError.isInstance(error)).toBe(true);
    expect(error.reason).toBe('outbox-full');
    expect(error.messageId).toBe('over');
    expect(error.succeeded).toEqual([]);
    expect(error.failures.map((f) => f.target)).toEqual(['memory#2']);
    expect(error.message).toMatch(/outbox full: memory#2 at outboxLimit 3; message over was sent to no target/);
    expect(primary.control.calls).toBe(callsBefore); // the primary was never asked
    expect(waiting(a, seg)).toEqual(accepted);
    await until(() => mq.outboxDepth() === 3, 'three copies in the outbox');

    mirror.control.failing = false;
    expect((await mq.flush({ timeoutMs: 5_000 })).caughtUp).toBe(true);
    await mq.taskPublish({ n: 3 }, { segment: seg, id: 'over' });
    await mq.flush({ timeoutMs: 5_000 });
    expectSameIds('mirror after recovery', [...accepted, 'over'], waiting(b, seg));
  });

  it('bounds copies in flight too: a slow mirror cannot make the backlog grow past outboxLimit', async () => {
    const { a, b } = pair();
    const real = memory(b);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow: Driver = { ...real, taskPublish: async (body, options) => gate.then(() => real.taskPublish(body, options)) };
    const mq = track(tee([memory(a), slow], { mode: 'primary', outboxLimit: 5 }));
    const seg = segment();
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, n) => mq.taskPublish({ n }, { segment: seg })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    const rejections = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(rejections.map((r) => (r.reason as TeePublishError).reason)).toEqual(['outbox-full', 'outbox-full', 'outbox-full']);
    expect(mq.stats().targets[1]).toMatchObject({ unconfirmed: 5, outboxDepth: 0 });
    release();
    expect((await mq.flush({ timeoutMs: 5_000 })).caughtUp).toBe(true);
  });

  it('rejects when the primary fails, reports what the mirrors did, and queues nothing', async () => {
    const { primary, mirror } = pair();
    const events: MirrorErrorEvent[] = [];
    const mq = track(tee([primary, mirror], { mode: 'primary', onMirrorError: (event) => events.push(event) }));
    primary.control.failing = true;
    const error = (await mq.taskPublish({ n: 1 }, { segment: segment(), id: 'p-1' }).catch((e: unknown) => e)) as TeePublishError;
    expect(error.reason).toBe('targets-failed');
    expect(error.failures.map((f) => f.target)).toEqual(['memory']);
    expect(error.succeeded).toEqual(['memory#2']); // the mirror holds it; a retry with id p-1 is detectable
    mirror.control.failing = true;
    const both = (await mq.taskPublish({ n: 2 }, { segment: segment() }).catch((e: unknown) => e)) as TeePublishError;
    expect(both.failures.map((f) => f.target)).toEqual(['memory', 'memory#2']);
    expect(mq.outboxDepth()).toBe(0);
    expect(mq.stats().targets[1]?.unconfirmed).toBe(0);
    expect(events).toEqual([]); // mirror errors of unpublished messages are in the rejection, not the callback
  });

  it('survives an onMirrorError callback that throws', async () => {
    const { primary, mirror } = pair();
    const mq = track(
      tee([primary, mirror], {
        mode: 'primary',
        retryBackoff: { baseMs: 5, maxMs: 10 },
        onMirrorError: () => {
          throw new Error('callback bug');
        },
      }),
    );
    mirror.control.failing = true;
    await mq.taskPublish({ n: 1 }, { segment: segment() });
    await until(() => mirror.control.calls >= 3, 'retries despite the throwing callback');
    mirror.control.failing = false;
    expect((await mq.flush({ timeoutMs: 5_000 })).caughtUp).toBe(true);
  });

  it('close() flushes within its deadline and reports what it could not deliver', async () => {
    const { primary, mirror } = pair();
    const reported: (readonly UndeliveredCopy[])[] = [];
    const mq = tee([primary, mirror], {
      mode: 'primary',
      retryBackoff: { baseMs: 5, maxMs: 20 },
      onUndelivered: (list) => reported.push(list),
    });
    const seg = segment();
    mirror.control.failing = true;
    const task = await mq.taskPublish({ n: 1 }, { segment: seg, headers: { trace: 'x' } });
    const share = await mq.sharePublish({ n: 2 }, { segment: seg, topic: 'Order.Created' });
    const started = Date.now();
    const report = await mq.closeWithReport({ timeoutMs: 200 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(report.undelivered.map((copy) => [copy.target, copy.kind, copy.messageId])).toEqual([
      ['memory#2', 'task', task.id],
      ['memory#2', 'share', share.id],
    ]);
    expect(report.undelivered[0]).toMatchObject({
      body: { n: 1 },
      options: { segment: seg, headers: { trace: 'x' }, id: task.id },
    });
    expect(report.undelivered[1]?.options).toMatchObject({ topic: 'Order.Created', id: share.id });
    expect(report.undelivered[0]?.attempts).toBeGreaterThanOrEqual(1);
    expect(String(report.undelivered[0]?.lastError)).toMatch(/broker is down/);
    expect(reported).toEqual([report.undelivered]);
    expect(await mq.closeWithReport()).toBe(report); // idempotent
    await mq.close();
    // The targets were closed with the tee.
    expect(DriverClosedError.isInstance(await primary.taskPublish({}, { segment: seg }).catch((e: unknown) => e))).toBe(true);
    for (const call of [
      () => mq.taskPublish({}, { segment: seg }),
      () => mq.shareConsume(() => {}, { segment: seg, topics: ['#'] }),
      () => mq.listDeadLetters({ segment: seg, kind: 'Work' }),
    ]) {
      expect(DriverClosedError.isInstance(await call().catch((e: unknown) => e))).toBe(true);
    }
  });

  it('close() delivers what it can before the deadline', async () => {
    const { b, primary, mirror } = pair();
    const mq = tee([primary, mirror], { mode: 'primary', retryBackoff: { baseMs: 5, maxMs: 20 }, closeTargets: false });
    const seg = segment();
    await registerKind(mirror, seg);
    mirror.control.failing = true;
    const ids = [];
    for (let n = 0; n < 5; n++) ids.push((await mq.taskPublish({ n }, { segment: seg })).id);
    setTimeout(() => {
      mirror.control.failing = false;
    }, 50);
    const report = await mq.closeWithReport({ timeoutMs: 5_000 });
    expect(report.undelivered).toEqual([]);
    expectSameIds('mirror after close', ids, waiting(b, seg));
    // closeTargets: false leaves the targets open.
    await primary.taskPublish({}, { segment: seg });
    await Promise.all([primary.close(), mirror.close()]);
  });
});

describe('tee: consumption and composition', () => {
  it('consumes, lists and re-drives dead letters on the consumeFrom target only', async () => {
    const { primary, mirror } = pair();
    const mq = track(tee([primary, mirror], { consumeFrom: 'memory#2' }));
    const seg = segment();
    const seen: Message[] = [];
    const worker = await mq.taskConsume(
      (message) => {
        seen.push(message);
        if (seen.length === 1) throw new Error('poison');
      },
      { topic: 'Work', segment: seg, maxAttempts: 1 },
    );
    expect(worker.name).toBe('Work');
    const { id } = await mq.taskPublish({ n: 1 }, { segment: seg });
    let deadLetters = await mq.listDeadLetters({ segment: seg, kind: 'Work' });
    const deadline = Date.now() + 5_000;
    while (deadLetters.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      deadLetters = await mq.listDeadLetters({ segment: seg, kind: 'Work' });
    }
    expect(deadLetters.map((d) => [d.message.id, d.error])).toEqual([[id, 'poison']]);
    expect(await primary.listDeadLetters({ segment: seg, kind: 'Work' })).toEqual([]); // not on the primary
    expect(await mq.redriveDeadLetters({ segment: seg, kind: 'Work' })).toBe(1);
    await until(() => seen.length === 2, 'redriven delivery');
    expect(seen.map((m) => [m.id, m.attempt])).toEqual([
      [id, 1],
      [id, 1],
    ]);
  });

  it('a tee wraps a tee: one id on all three targets', async () => {
    const { a, b } = pair();
    const c = `tee-c-${randomUUID().slice(0, 8)}`;
    const inner = tee([memory(a), memory(b)]);
    const outer = track(tee([inner, memory(c)], { mode: 'primary' }));
    expect(outer.name).toBe('tee(tee(memory,memory),memory)');
    const seg = segment();
    for (const broker of [a, b, c]) await registerKind(memory(broker), seg);
    const ids = [];
    for (let n = 0; n < 4; n++) ids.push((await outer.taskPublish({ n }, { segment: seg })).id);
    await outer.flush();
    for (const broker of [a, b, c]) expectSameIds(broker, ids, waiting(broker, seg));
    await outer.close();
    expect(DriverClosedError.isInstance(await inner.taskPublish({}, { segment: seg }).catch((e: unknown) => e))).toBe(true);
  });
});
