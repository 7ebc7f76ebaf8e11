import { Writable } from 'node:stream';
import type { Message } from '@mq-drivers/core';
import { type Dispatcher, type DispatcherConfigInput, runWorkers, type WorkerContext } from '@mq-drivers/dispatcher';
import { createMemoryDriver, inspectMemoryBroker } from '@mq-drivers/memory';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { diffIds, duplicates, unique, until } from './helpers.js';

const running: Dispatcher[] = [];
const drivers: { close(): Promise<void> }[] = [];
const releases: (() => void)[] = [];
afterEach(async () => {
  for (const release of releases.splice(0)) release();
  await Promise.all(running.splice(0).map((d) => d.stop({ timeoutMs: 1_000 })));
  await Promise.all(drivers.splice(0).map((d) => d.close()));
});

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines, has: (re: RegExp) => lines.some((l) => re.test(String(l.msg))) };
}

/** A memory broker of its own, a producer on it, and a config using it with fast backoffs. */
function setup() {
  const broker = unique('b');
  const segment = unique('seg');
  const producer = createMemoryDriver({ broker });
  drivers.push(producer);
  const base = {
    url: `memory://${broker}`,
    driverOptions: { redeliveryBackoff: { baseMs: 1, maxMs: 5 } },
    restart: { baseMs: 1, maxMs: 10 },
  } satisfies Partial<DispatcherConfigInput>;
  return { broker, segment, producer, base };
}

async function start(config: DispatcherConfigInput) {
  const log = captureLogger();
  const dispatcher = await runWorkers(config, { logger: log.logger });
  running.push(dispatcher);
  return { dispatcher, log };
}

interface Event {
  event: 'construct' | 'consume' | 'handled' | 'throw' | 'shutdown';
  id?: string;
  attempt?: number;
  instance: number;
  generation: number;
  error?: string;
}

/** Worker classes that record what happens to them. */
function recorder(behaviour: (message: Message, self: { instance: number; generation: number }) => unknown) {
  const events: Event[] = [];
  class Recorder {
    readonly instance: number;
    readonly generation: number;
    constructor(context: WorkerContext) {
      this.instance = context.instance;
      this.generation = context.generation;
      events.push({ event: 'construct', instance: this.instance, generation: this.generation });
    }
    async consume(message: Message) {
      const me = { instance: this.instance, generation: this.generation };
      events.push({ event: 'consume', id: message.id, attempt: message.attempt, ...me });
      try {
        await behaviour(message, me);
      } catch (error) {
        events.push({ event: 'throw', id: message.id, attempt: message.attempt, ...me });
        throw error;
      }
      events.push({ event: 'handled', id: message.id, attempt: message.attempt, ...me });
    }
    shutdown(error?: unknown) {
      const entry: Event = { event: 'shutdown', instance: this.instance, generation: this.generation };
      if (error !== undefined) entry.error = (error as Error).message;
      events.push(entry);
    }
  }
  const of = (kind: Event['event']) => events.filter((e) => e.event === kind);
  return { Recorder, events, of };
}

describe('runWorkers on memory:', () => {
  it('handles every task once; a throw replaces the instance, calls shutdown(error) and the message is redelivered', async () => {
    const { segment, producer, base } = setup();
    const { Recorder, of } = recorder((message) => {
      if ((message.body as { crash?: boolean }).crash && message.attempt === 1) throw new Error('boom');
    });
    const { dispatcher, log } = await start({
      ...base,
      consumers: [{ consumer: Recorder, task: { kind: 'Job', segment }, instances: 2, prefetch: 2 }],
    });
    const ids: string[] = [];
    for (let n = 0; n < 20; n++) ids.push((await producer.taskPublish({ n, crash: n === 5 }, { segment })).id);
    await until(
      () => of('handled').length >= 20,
      () => `20 handled, got ${of('handled').length}`,
    );

    const handled = of('handled').map((e) => e.id as string);
    expect(diffIds(ids, handled)).toEqual({ missing: [], extra: [] });
    expect(duplicates(handled)).toEqual([]);
    const [thrown] = of('throw');
    expect(of('throw')).toHaveLength(1);
    expect(of('handled').find((e) => e.id === thrown?.id)?.attempt).toBe(2);
    // The crashed instance got shutdown(error); its slot got generation 2.
    expect(of('shutdown')).toEqual([{ event: 'shutdown', instance: thrown?.instance, generation: 1, error: 'boom' }]);
    expect(
      of('construct')
        .map((e) => `${e.instance}/${e.generation}`)
        .sort(),
    ).toEqual(['1/1', '2/1', `${thrown?.instance}/2`].sort());
    expect(log.has(/restarting worker instance after consume\(\) threw: boom/)).toBe(true);

    const result = await dispatcher.stop();
    expect(result).toEqual({ clean: true, unfinished: 0, errors: 0, reason: 'stop' });
    // Every live instance got shutdown() once, the crashed one only its shutdown(error).
    const shutdowns = of('shutdown').map((e) => `${e.instance}/${e.generation}${e.error ? ` ${e.error}` : ''}`);
    const other = thrown?.instance === 1 ? 2 : 1;
    expect(shutdowns.sort()).toEqual([`${thrown?.instance}/1 boom`, `${thrown?.instance}/2`, `${other}/1`].sort());
    const metrics = await dispatcher.metrics.registry.getSingleMetricAsString('mq_dispatch_messages_handled_total');
    expect(metrics).toContain('mq_dispatch_messages_handled_total{consumer="Recorder"} 20');
  });

  it('dead-letters after maxAttempts and counts failed, dead-lettered and restarts', async () => {
    const { broker, segment, producer, base } = setup();
    const { Recorder, of } = recorder(() => {
      throw new Error('always');
    });
    const { dispatcher, log } = await start({
      ...base,
      restart: { baseMs: 1, maxMs: 2, crashLoopRestarts: 3 },
      consumers: [{ name: 'poison', consumer: Recorder, task: { kind: 'Job', segment }, maxAttempts: 3 }],
    });
    const { id } = await producer.taskPublish({}, { segment });
    const store = inspectMemoryBroker(broker).deadLetters({ segment, kind: 'Job' });
    await until(() => store.count() === 1, 'the dead letter');
    expect(store.peekOldest()).toMatchObject({ error: 'always', message: { id, attempt: 3 } });
    expect(of('throw').map((e) => e.attempt)).toEqual([1, 2, 3]);
    await until(() => of('shutdown').length === 3, 'three shutdown(error) calls');
    const text = await dispatcher.metrics.registry.metrics();
    expect(text).toContain('mq_dispatch_messages_failed_total{consumer="poison"} 3');
    expect(text).toContain('mq_dispatch_messages_dead_lettered_total{consumer="poison"} 1');
    expect(text).toContain('mq_dispatch_worker_restarts_total{consumer="poison"} 3');
    expect(log.has(/crash loop: 3 restarts of poison #1/)).toBe(true);
    expect(log.lines.some((l) => l.deadLettered === true && l.messageId === id)).toBe(true);
  });

  it('restarts again with backoff when a replacement constructor throws', async () => {
    const { segment, producer, base } = setup();
    let constructed = 0;
    const handled: string[] = [];
    class Flaky {
      constructor() {
        constructed++;
        if (constructed === 2) throw new Error('cannot connect to the database');
      }
      consume(message: Message) {
        if (message.attempt === 1) throw new Error('first try fails');
        handled.push(message.id);
      }
    }
    const { log } = await start({ ...base, consumers: [{ consumer: Flaky, task: { kind: 'Job', segment } }] });
    const { id } = await producer.taskPublish({}, { segment });
    await until(() => handled.length === 1, 'the message handled on attempt 2');
    expect(handled).toEqual([id]);
    expect(constructed).toBe(3);
    expect(log.has(/after the worker constructor threw: cannot connect to the database/)).toBe(true);
  });

  it('stop lets in-flight messages finish within the grace period and acknowledges them', async () => {
    const { broker, segment, producer, base } = setup();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    releases.push(release);
    const { Recorder, of } = recorder(() => gate);
    const { dispatcher } = await start({
      ...base,
      consumers: [{ consumer: Recorder, task: { kind: 'Job', segment }, prefetch: 2 }],
    });
    const ids = [(await producer.taskPublish(1, { segment })).id, (await producer.taskPublish(2, { segment })).id];
    await until(() => of('consume').length === 2, 'two messages in flight');
    const stopping = dispatcher.stop({ timeoutMs: 10_000 });
    await until(() => dispatcher.health().status === 'stopping', 'stop to begin');
    release();
    expect(await stopping).toEqual({ clean: true, unfinished: 0, errors: 0, reason: 'stop' });
    expect(
      diffIds(
        ids,
        of('handled').map((e) => e.id as string),
      ),
    ).toEqual({ missing: [], extra: [] });
    // Acknowledged: nothing comes back.
    expect(inspectMemoryBroker(broker).taskQueue(segment, 'Job').count()).toBe(0);
    expect(of('shutdown')).toHaveLength(1);
  });

  it('past the deadline, stop hands unfinished messages back unacknowledged and with no attempt counted', async () => {
    const { segment, producer, base } = setup();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    releases.push(release);
    const { Recorder, of } = recorder(() => gate);
    const { dispatcher, log: logs } = await start({
      ...base,
      consumers: [{ consumer: Recorder, task: { kind: 'Job', segment }, prefetch: 2 }],
    });
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) ids.push((await producer.taskPublish(n, { segment })).id);
    await until(() => of('consume').length === 2, 'two messages in flight');
    const result = await dispatcher.stop({ timeoutMs: 50 });
    expect(result).toEqual({ clean: false, unfinished: 2, errors: 0, reason: 'stop' });
    expect(logs.has(/2 unfinished message\(s\) handed back/)).toBe(true);
    release(); // the old handlers finish now: no effect, the messages were handed back

    const again: Message[] = [];
    const consumer = await producer.taskConsume((m) => void again.push(m), { topic: 'Job', segment });
    await until(() => again.length >= 3, 'the three messages again');
    await consumer.close();
    expect(
      diffIds(
        ids,
        again.map((m) => m.id),
      ),
    ).toEqual({ missing: [], extra: [] });
    expect(again.map((m) => m.attempt)).toEqual([1, 1, 1]);
    await until(() => logs.has(/ended after its message was handed back/), 'the late-finish warning');
    // Finished after the hand-back: not counted as handled (it was never acknowledged).
    expect(await dispatcher.metrics.registry.getSingleMetricAsString('mq_dispatch_messages_handled_total')).toContain(
      'mq_dispatch_messages_handled_total{consumer="Recorder"} 0',
    );
  });

  it('runs startup before connecting and ready once subscribed; named share instances compete', async () => {
    const { segment, base } = setup();
    const calls: string[] = [];
    const { Recorder, of } = recorder(() => {});
    await start({
      ...base,
      startup: ({ url }) => void calls.push(`startup ${url.startsWith('memory://')}`),
      ready: async ({ driver }) => {
        calls.push('ready');
        for (let n = 0; n < 10; n++) await driver.sharePublish({ n }, { topic: 'Shop.Order.Placed', segment });
      },
      consumers: [
        { consumer: Recorder, share: { topics: ['Shop.Order.*'], segment, name: unique('sub') }, instances: 3, prefetch: 1 },
      ],
    });
    expect(calls).toEqual(['startup true', 'ready']);
    await until(() => of('handled').length >= 10, 'ten share messages');
    const handled = of('handled').map((e) => e.id as string);
    expect(duplicates(handled)).toEqual([]);
    expect(new Set(of('handled').map((e) => e.instance)).size).toBeGreaterThan(1);
  });

  it('serves /healthz and /metrics per consumer while running', async () => {
    const { segment, producer, base } = setup();
    const { Recorder, of } = recorder(() => {});
    const { dispatcher } = await start({
      ...base,
      http: { port: 0, host: '127.0.0.1', defaultMetrics: false },
      consumers: [{ name: 'emails', consumer: Recorder, task: { kind: 'Email', segment } }],
    });
    const url = `http://127.0.0.1:${dispatcher.httpPort}`;
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      status: 'running',
      consumers: [{ name: 'emails', instances: 1, subscribed: 1 }],
    });
    await producer.taskPublish({}, { segment });
    await until(() => of('handled').length === 1, 'one handled');
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('mq_dispatch_messages_handled_total{consumer="emails"} 1');
    expect(metrics).toContain('mq_dispatch_messages_in_flight{consumer="emails"} 0');
    expect(metrics).toContain('mq_dispatch_worker_restarts_total{consumer="emails"} 0');
    expect(metrics).toContain('mq_dispatch_consume_duration_seconds_count{consumer="emails",outcome="handled"} 1');
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    await dispatcher.stop();
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('fails to start, cleaning up, when a worker constructor throws at startup', async () => {
    const { segment, base } = setup();
    const shutdowns: string[] = [];
    class Ok {
      consume() {}
      shutdown() {
        shutdowns.push('ok');
      }
    }
    class Broken {
      constructor() {
        throw new Error('missing SMTP_HOST');
      }
      consume() {}
    }
    const log = captureLogger();
    const error = await runWorkers(
      {
        ...base,
        consumers: [
          { consumer: Ok, task: { kind: 'A', segment } },
          { consumer: Broken, task: { kind: 'B', segment } },
        ],
      },
      { logger: log.logger },
    ).catch((e: unknown) => e);
    expect((error as Error).message).toBe('missing SMTP_HOST');
    expect(shutdowns).toEqual(['ok']);
    expect(log.has(/start failed: missing SMTP_HOST/)).toBe(true);
  });
});
