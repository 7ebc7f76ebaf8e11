/**
 * An example driver, written the way you would write one for your own broker: an in-process broker
 * that passes the whole `@mq-drivers/conformance` suite. You write the transport: where messages
 * wait, how a publish is routed, the dead-letter store. Core does the rest: `core.consume()` runs
 * each subscription (handlers, prefetch, retry or dead letter, close with a deadline) and
 * `core.prepare*` / `core.validate*` check every input with the typed errors the suite expects.
 */
import { randomUUID } from 'node:crypto';
import * as core from '@mq-drivers/core';

export const DRIVER_NAME = 'example';

export interface ExampleDriverOptions {
  /** Name of the in-process broker; drivers with the same name share queues. Default `default`. */
  broker?: string;
  /** Delay before redelivering a failed message (exponential, jittered). Default core's DEFAULT_BACKOFF. */
  redeliveryBackoff?: core.BackoffOptions;
  /** Largest accepted message (JSON body plus headers), in bytes. Default 256 KiB. */
  maxMessageBytes?: number;
}

/** A stored message, one copy per queue it was routed to: what the engine receives, as is. */
interface Envelope extends core.Received {
  readonly json: string;
}

/** A task kind, or a share subscription, on one segment: its waiting messages, consumers and dead letters. */
class Queue {
  readonly waiting: Envelope[] = [];
  deadLetters: { envelope: Envelope; error: string; failedAt: Date }[] = [];
  /** One per open subscription of this kind (or subscription name): they compete for the messages. */
  readonly consumers: core.DeliverySink<Envelope>[] = [];
  patterns: readonly string[] = [];
  private turn = 0;

  push(envelope: Envelope): void {
    this.waiting.push(envelope);
    this.dispatch();
  }

  /** Oldest message first, round robin among consumers with room (the engine counts their prefetch). */
  dispatch(): void {
    let full = 0; // consumers in a row found without room
    while (this.waiting.length > 0 && full < this.consumers.length) {
      const consumer = this.consumers[this.turn++ % this.consumers.length]!;
      if (consumer.capacity === 0) full++;
      else {
        full = 0;
        consumer.deliver(this.waiting.shift()!);
      }
    }
  }
}

/**
 * One subscription's transport: the engine says what became of each delivery. A delivered message
 * has left the queue, so "unacknowledged" just means "not put back"; in a real broker the message
 * stays unacked there until `ack` (or `retry`, `deadLetter`, `handBack`) settles it.
 */
class Consumer implements core.SubscriptionTransport<Envelope> {
  private sink: core.DeliverySink<Envelope> | undefined;

  constructor(private readonly queue: Queue) {}

  start(sink: core.DeliverySink<Envelope>): void {
    this.sink = sink;
    sink.onCapacity(() => this.queue.dispatch()); // a handler finished: take the next message
    this.queue.consumers.push(sink);
    this.queue.dispatch();
  }

  ack(): void {} // nothing left to delete: the queue gave its copy away on delivery

  retry(envelope: Envelope, delayMs: number): void {
    const again = { ...envelope, attempt: envelope.attempt + 1 };
    setTimeout(() => this.queue.push(again), delayMs).unref(); // to any consumer, not only this one
  }

  deadLetter(envelope: Envelope, error: string): void {
    this.queue.deadLetters.push({ envelope, error, failedAt: new Date() });
  }

  handBack(envelope: Envelope): void {
    this.queue.waiting.unshift(envelope); // same attempt, at the front: it is older than what waits
  }

  stop(): void {
    this.queue.consumers.splice(this.queue.consumers.indexOf(this.sink!), 1);
  }

  close(): void {
    this.queue.dispatch(); // what this subscription handed back goes to the other consumers
  }
}

/** `map.get(key)`, created first if missing. */
function entry<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  if (!map.has(key)) map.set(key, create());
  return map.get(key)!;
}

/** Every queue by broker, segment and sort, module-wide: drivers on one broker name share them. */
const registry = new Map<string, Map<string, Queue>>();
const queues = (broker: string, segment: string, sort: 'kind' | 'subscription') =>
  entry(registry, JSON.stringify([broker, segment, sort]), () => new Map<string, Queue>());

function validateOptions(options: ExampleDriverOptions) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    const message = `${core.describeValue(options)} must be an object`;
    throw new core.InvalidArgumentError({ driver: DRIVER_NAME, argument: 'options', value: options, message });
  }
  // A misspelt option must not be ignored silently.
  core.rejectUnknownKeys(DRIVER_NAME, options, ['broker', 'redeliveryBackoff', 'maxMessageBytes'], 'options.');
  const { broker = 'default', redeliveryBackoff = core.DEFAULT_BACKOFF, maxMessageBytes = 256 * 1024 } = options;
  return {
    broker: core.validateSegment(DRIVER_NAME, broker, 'options.broker'),
    backoff: core.validateBackoffOptions(DRIVER_NAME, redeliveryBackoff, 'options.redeliveryBackoff'),
    maxMessageBytes: core.validatePositiveInteger(DRIVER_NAME, maxMessageBytes, 'options.maxMessageBytes', 2 ** 30),
  };
}

/** Creates a driver on the named in-process broker. Every method is async: bad input rejects, never throws. */
export function createExampleDriver(options: ExampleDriverOptions = {}): core.Driver {
  const { broker, backoff, maxMessageBytes } = validateOptions(options);
  // durable: a kind's queue keeps collecting while its workers are away. No replay: those cases are skipped.
  const capabilities: core.Capabilities = Object.freeze({
    durable: true,
    replay: false,
    ordering: 'per-publisher',
    deadLetter: true,
    maxMessageBytes,
  });
  const subscriptions = new Set<core.Subscription>();
  let closed = false;
  const ensureOpen = () => {
    if (closed) throw new core.DriverClosedError({ driver: DRIVER_NAME });
  };
  const envelope = ({ id, json, segment, headers, publishedAt }: core.PreparedPublish, topic: string): Envelope => {
    return { id, json, segment, topic, headers: Object.freeze(headers), publishedAt, attempt: 1 };
  };

  /** From here on the engine runs the subscription; the driver only remembers what to close. */
  async function subscribe(
    queue: Queue,
    name: string,
    handler: core.Handler,
    limits: Pick<core.ConsumeSettings, 'prefetch' | 'maxAttempts'>,
    onClose?: () => void,
  ) {
    const { prefetch, maxAttempts } = limits;
    const onClosed = () => {
      subscriptions.delete(subscription);
      onClose?.();
    };
    const settings = { driver: DRIVER_NAME, name, handler, prefetch, maxAttempts, backoff, onClosed };
    const subscription = await core.consume(new Consumer(queue), settings);
    subscriptions.add(subscription);
    return subscription;
  }

  /** The queue a dead-letter target names, if it was ever registered. */
  function targetQueue(target: core.DeadLetterTarget): Queue | undefined {
    const { segment, kind, subscription } = core.prepareDeadLetterTarget(DRIVER_NAME, target);
    return queues(broker, segment, kind !== undefined ? 'kind' : 'subscription').get((kind ?? subscription)!);
  }

  return {
    specificationVersion: core.SPECIFICATION_VERSION,
    name: DRIVER_NAME,
    capabilities,

    /** A copy for each kind registered on the segment; the kind's workers compete for it. */
    async taskPublish(body, publishOptions) {
      ensureOpen();
      const prepared = core.prepareTaskPublish(DRIVER_NAME, capabilities, body, publishOptions);
      for (const [kind, queue] of queues(broker, prepared.segment, 'kind')) queue.push(envelope(prepared, kind));
      return { id: prepared.id };
    },

    /** A copy for each subscription with a matching pattern (one, however many of its patterns match). */
    async sharePublish(body, publishOptions) {
      ensureOpen();
      const prepared = core.prepareSharePublish(DRIVER_NAME, capabilities, body, publishOptions);
      const topic = prepared.topic!;
      for (const queue of queues(broker, prepared.segment, 'subscription').values()) {
        if (core.anyTopicMatches(queue.patterns, topic)) queue.push(envelope(prepared, topic));
      }
      return { id: prepared.id };
    },

    async taskConsume(handler, consumeOptions) {
      ensureOpen();
      const prepared = core.prepareTaskConsume(DRIVER_NAME, handler, consumeOptions);
      const queue = entry(queues(broker, prepared.segment, 'kind'), prepared.kind, () => new Queue());
      return subscribe(queue, prepared.kind, handler as core.Handler, prepared);
    },

    async shareConsume(handler, consumeOptions) {
      ensureOpen();
      const prepared = core.prepareShareConsume(DRIVER_NAME, capabilities, handler, consumeOptions);
      const named = queues(broker, prepared.segment, 'subscription');
      const name = prepared.name ?? `ephemeral-${randomUUID()}`;
      const queue = entry(named, name, () => new Queue());
      queue.patterns = prepared.patterns; // a named subscription reopened with other patterns is re-bound
      // A named subscription keeps collecting while closed; an unnamed one leaves nothing behind.
      const forget = prepared.name === undefined ? () => named.delete(name) : undefined;
      return subscribe(queue, name, handler as core.Handler, prepared, forget);
    },

    async listDeadLetters(target) {
      ensureOpen();
      return (targetQueue(target)?.deadLetters ?? []).map(({ envelope: { json, publishedAt, ...rest }, error, failedAt }) => {
        const message = Object.freeze({ ...rest, body: core.decodeBody(json), publishedAt: new Date(publishedAt) });
        return Object.freeze({ message, error, failedAt });
      });
    },

    /** Back into the queue with attempt 1 and the same id. */
    async redriveDeadLetters(target, redriveOptions) {
      ensureOpen();
      const ids = core.prepareRedriveOptions(DRIVER_NAME, redriveOptions);
      const queue = targetQueue(target);
      if (queue === undefined) return 0;
      const chosen = queue.deadLetters.filter(({ envelope }) => ids === undefined || ids.has(envelope.id));
      queue.deadLetters = queue.deadLetters.filter((letter) => !chosen.includes(letter));
      for (const { envelope } of chosen) queue.push({ ...envelope, attempt: 1 });
      return chosen.length;
    },

    async close() {
      closed = true;
      await Promise.all([...subscriptions].map((subscription) => subscription.close()));
    },
  };
}

/** Registers the driver for `example://<broker>` URLs: `registerDriver(driver)`, then `connect('example://demo')`. */
export const driver: core.DriverDefinition<ExampleDriverOptions> = {
  name: DRIVER_NAME,
  schemes: ['example'],
  create(url, options = {}) {
    const broker = new URL(url).host || options.broker;
    return createExampleDriver({ ...options, ...(broker ? { broker } : {}) });
  },
};
