import {
  consume,
  type DeliverySink,
  InvalidArgumentError,
  type Message,
  type Received,
  type SubscriptionTransport,
} from '@mq-drivers/core';
import { describe, expect, it } from 'vitest';

/** A transport that records what the engine tells it; the test delivers by hand. */
class RecordingTransport implements SubscriptionTransport {
  sink!: DeliverySink<Received>;
  readonly calls: string[] = [];
  stopped = false;
  closed = false;
  failNext: string | undefined;

  start(sink: DeliverySink<Received>): void {
    this.sink = sink;
  }
  private record(call: string): void | Promise<void> {
    this.calls.push(call);
    if (this.failNext && call.startsWith(this.failNext)) {
      this.failNext = undefined;
      return Promise.reject(new Error(`${call} failed`));
    }
  }
  ack(r: Received) {
    return this.record(`ack ${r.id}#${r.attempt}`);
  }
  retry(r: Received, delayMs: number) {
    return this.record(`retry ${r.id}#${r.attempt} after ${delayMs}`);
  }
  deadLetter(r: Received, error: string) {
    return this.record(`dead ${r.id}#${r.attempt}: ${error}`);
  }
  handBack(r: Received) {
    return this.record(`back ${r.id}#${r.attempt}`);
  }
  stop() {
    this.stopped = true;
  }
  close() {
    this.closed = true;
  }
}

const received = (id: string, attempt = 1, json = JSON.stringify({ id })): Received => ({
  id,
  json,
  segment: 'seg',
  topic: 'Kind',
  publishedAt: new Date(0),
  attempt,
  headers: { h: 'v' },
});

async function until(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A handler whose runs the test finishes by hand. */
function gate() {
  const runs = new Map<string, { message: Message; resolve: () => void; reject: (e: unknown) => void }>();
  const seen: string[] = [];
  const handler = (message: Message) =>
    new Promise<void>((resolve, reject) => {
      seen.push(`${message.id}#${message.attempt}`);
      runs.set(message.id, { message, resolve, reject });
    });
  return { runs, seen, handler };
}

const settings = { driver: 'test', name: 'Kind', prefetch: 2, maxAttempts: 3, backoff: { baseMs: 10, maxMs: 10 } };

describe('delivery engine', () => {
  it('runs at most prefetch handlers; the rest wait in order; capacity counts until the ack settles', async () => {
    const transport = new RecordingTransport();
    const { runs, seen, handler } = gate();
    const sub = await consume(transport, { ...settings, handler });
    for (const id of ['a', 'b', 'c', 'd']) transport.sink.deliver(received(id));
    await until(() => seen.length === 2, 'two runs');
    expect(seen).toEqual(['a#1', 'b#1']);
    expect(transport.sink.capacity).toBe(0);
    runs.get('a')!.resolve();
    await until(() => seen.length === 3, 'the third run');
    expect(seen[2]).toBe('c#1');
    expect(transport.calls).toEqual(['ack a#1']);
    expect(sub.load).toBe(3);
  });

  it('builds a frozen message with its own copy of body, headers and date', async () => {
    const transport = new RecordingTransport();
    const { runs, handler } = gate();
    await consume(transport, { ...settings, handler });
    transport.sink.deliver(received('a'));
    await until(() => runs.has('a'), 'the run');
    const { message } = runs.get('a')!;
    expect(Object.isFrozen(message)).toBe(true);
    expect(Object.isFrozen(message.headers)).toBe(true);
    expect(message).toMatchObject({ id: 'a', body: { id: 'a' }, segment: 'seg', topic: 'Kind', attempt: 1, headers: { h: 'v' } });
  });

  it('a sync throw or a rejection retries with backoff while attempts remain, then dead-letters with the error text', async () => {
    const transport = new RecordingTransport();
    await consume(transport, {
      ...settings,
      handler: (message) => {
        if (message.attempt === 1) throw new Error('sync boom');
        return Promise.reject(new Error('async boom'));
      },
    });
    transport.sink.deliver(received('a', 1));
    transport.sink.deliver(received('b', 3));
    await until(() => transport.calls.length === 2, 'two outcomes');
    expect(transport.calls.sort()).toEqual(['dead b#3: async boom', expect.stringMatching(/^retry a#1 after (5|6|7|8|9|10)$/)]);
  });

  it('a body that does not parse is dead-lettered without running the handler', async () => {
    const transport = new RecordingTransport();
    const { seen, handler } = gate();
    await consume(transport, { ...settings, handler });
    transport.sink.deliver(received('bad', 1, '{not json'));
    await until(() => transport.calls.length === 1, 'the dead letter');
    expect(transport.calls[0]).toMatch(/^dead bad#1: /);
    expect(seen).toEqual([]);
  });

  it('close hands back what never started at once, waits for running handlers up to the deadline, hands back the rest; a late finish has no effect', async () => {
    const transport = new RecordingTransport();
    const { runs, seen, handler } = gate();
    const sub = await consume(transport, { ...settings, handler });
    for (const id of ['a', 'b', 'c']) transport.sink.deliver(received(id));
    await until(() => seen.length === 2, 'two runs');
    const closing = sub.close({ timeoutMs: 50 });
    expect(sub.closed).toBe(true);
    await until(() => transport.calls.includes('back c#1'), 'c handed back');
    runs.get('a')!.resolve();
    await closing;
    expect(transport.calls).toEqual(['back c#1', 'ack a#1', 'back b#1']);
    expect(transport.stopped && transport.closed).toBe(true);
    runs.get('b')!.resolve(); // after its hand-back: nothing happens
    transport.sink.deliver(received('d')); // after close: handed back, never run
    await until(() => transport.calls.length === 4, 'd handed back');
    expect(transport.calls.slice(3)).toEqual(['back d#1']);
    expect(seen).toEqual(['a#1', 'b#1']);
  });

  it('bad close options reject and leave the subscription open', async () => {
    const transport = new RecordingTransport();
    const sub = await consume(transport, { ...settings, handler: () => undefined });
    await expect(sub.close({ timeoutMs: -1 })).rejects.toSatisfy((e) => InvalidArgumentError.isInstance(e));
    expect(sub.closed).toBe(false);
    await sub.close();
    expect(sub.closed).toBe(true);
  });

  it('a void delivery keeps its prefetch slot; the broker copy that arrives while it runs is held and settled with its outcome, not run twice', async () => {
    const transport = new RecordingTransport();
    const { runs, seen, handler } = gate();
    const sub = await consume(transport, { ...settings, prefetch: 1, handler });
    const first = received('a');
    transport.sink.deliver(first);
    await until(() => seen.length === 1, 'the run');
    transport.sink.void(first); // the channel is gone
    expect(transport.sink.capacity).toBe(0);
    transport.sink.deliver(received('a')); // the broker's copy
    runs.get('a')!.resolve();
    await until(() => transport.calls.length === 1, 'the copy settled');
    expect(transport.calls).toEqual(['ack a#1']);
    expect(seen).toEqual(['a#1']);
    await until(() => sub.load === 0, 'nothing held');
  });

  it('a void delivery that failed: the copy arriving after it ended is retried without running', async () => {
    const transport = new RecordingTransport();
    const { runs, seen, handler } = gate();
    await consume(transport, { ...settings, handler });
    const first = received('a');
    transport.sink.deliver(first);
    await until(() => seen.length === 1, 'the run');
    transport.sink.void(first);
    runs.get('a')!.reject(new Error('no'));
    await until(() => transport.sink.capacity === 2, 'the slot freed');
    expect(transport.calls).toEqual([]);
    transport.sink.deliver(received('a'));
    await until(() => transport.calls.length === 1, 'the copy settled');
    expect(transport.calls).toEqual([expect.stringMatching(/^retry a#1 after (5|6|7|8|9|10)$/)]);
    expect(seen).toEqual(['a#1']);
  });

  it('a transport operation that fails is reported and frees its slot', async () => {
    const transport = new RecordingTransport();
    const errors: unknown[] = [];
    await consume(transport, { ...settings, prefetch: 1, handler: () => undefined, onError: (e) => errors.push(e) });
    transport.failNext = 'ack';
    transport.sink.deliver(received('a'));
    await until(() => errors.length === 1, 'the error');
    await until(() => transport.sink.capacity === 1, 'the slot freed');
    expect(String(errors[0])).toContain('ack a#1 failed');
  });

  it('tells the transport when capacity frees up', async () => {
    const transport = new RecordingTransport();
    const { runs, handler } = gate();
    await consume(transport, { ...settings, prefetch: 1, handler });
    let woken = 0;
    transport.sink.onCapacity(() => woken++);
    transport.sink.deliver(received('a'));
    await until(() => runs.has('a'), 'the run');
    runs.get('a')!.resolve();
    await until(() => woken > 0, 'the wake-up');
    expect(transport.sink.capacity).toBe(1);
  });
});
