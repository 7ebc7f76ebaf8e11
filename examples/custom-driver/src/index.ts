/**
 * An example driver for an in-process broker, written as you would write one for yours; it passes the
 * whole `@mq-drivers/conformance` suite. You write the transport: where messages wait, how a publish is
 * routed, the dead-letter store. `core.consume()` runs each subscription (handlers, prefetch, retry or
 * dead letter, close with a deadline); `core.prepare*` and `core.validate*` check every input.
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
type Envelope = core.Received & { readonly json: string };

/** A task kind, or a share subscription, on one segment: its waiting messages, consumers and dead letters. */
class Queue {
  readonly waiting: Envelope[] = [];
  deadLetters: { envelope: Envelope; error: string; failedAt: Date }[] = [];
  consumers: core.DeliverySink<Envelope>[] = []; // one per open subscription: they compete for the messages
  patterns: readonly string[] = [];

  push(envelope: Envelope): void {
    this.waiting.push(envelope);
    this.dispatch();
  }

  /** Oldest message first, round robin among consumers with room (the engine counts their prefetch). */
  dispatch(): void {
    while (this.waiting.length > 0) {
      const consumer = this.consumers.find((candidate) => candidate.capacity > 0);
      if (consumer === undefined) return;
      this.consumers = [...this.consumers.filter((other) => other !== consumer), consumer]; // round robin: to the back
      consumer.deliver(this.waiting.shift()!);
    }
  }

  /**
   * A consumer of this queue: one subscription's transport, told by the engine what became of each delivery.
   * A delivered message has left the queue, so until the engine settles it, it is simply not put back.
   */
  consumer(release?: () => void): core.SubscriptionTransport<Envelope> {
    let sink: core.DeliverySink<Envelope>;
    return {
      start: (given) => {
        sink = given;
        sink.onCapacity(() => this.dispatch()); // a handler finished: take the next message
        this.consumers.push(sink);
        this.dispatch();
      },
      ack: () => {}, // nothing left to delete: the queue gave its copy away on delivery
      retry: (envelope, delayMs) => {
        setTimeout(() => this.push({ ...envelope, attempt: envelope.attempt + 1 }), delayMs).unref(); // to any consumer
      },
      deadLetter: (envelope, error) => {
        this.deadLetters.push({ envelope, error, failedAt: new Date() });
      },
      handBack: (envelope) => {
        this.waiting.unshift(envelope); // same attempt, at the front: it is older than what waits
      },
      stop: () => {
        this.consumers = this.consumers.filter((other) => other !== sink);
      },
      close: () => {
        this.dispatch(); // what this subscription handed back goes to the other consumers
        release?.(); // what else the subscription held: an unnamed share subscription's queue
      },
    };
  }
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  if (!map.has(key)) map.set(key, create());
  return map.get(key)!;
}

/** Every queue by broker, segment and sort, module-wide: drivers on one broker name share them. */
const registry = new Map<string, Map<string, Queue>>();
const queues = (broker: string, segment: string, sort: 'kind' | 'subscription') =>
  getOrCreate(registry, JSON.stringify([broker, segment, sort]), () => new Map<string, Queue>());

/** Creates a driver on the named in-process broker. Every method is async: bad input rejects, never throws. */
export function createExampleDriver(options: ExampleDriverOptions = {}): core.Driver {
  // An object with known keys only: a misspelt option is an InvalidArgumentError, never silently ignored.
  const raw = core.readOptions(DRIVER_NAME, options, ['broker', 'redeliveryBackoff', 'maxMessageBytes']);
  const broker = core.validateSegment(DRIVER_NAME, raw.broker ?? 'default', 'options.broker');
  const backoff = core.backoffOption(DRIVER_NAME, raw, 'redeliveryBackoff', core.DEFAULT_BACKOFF);
  const maxMessageBytes = core.integerOption(DRIVER_NAME, raw, 'maxMessageBytes', 256 * 1024, 1, 2 ** 30);
  // durable: a kind's queue keeps collecting while its workers are away. No replay: those cases are skipped.
  const capabilities = { durable: true, replay: false, ordering: 'per-publisher', deadLetter: true, maxMessageBytes } as const;
  const subscriptions = new Set<core.Subscription>();
  let closed = false;
  const ensureOpen = () => {
    if (closed) throw new core.DriverClosedError({ driver: DRIVER_NAME });
  };
  const envelope = ({ id, json, segment, headers, publishedAt }: core.PreparedPublish, topic: string): Envelope => {
    return { id, json, segment, topic, headers: Object.freeze(headers), publishedAt, attempt: 1 };
  };

  /** From here on the engine runs the subscription; the driver only remembers what to close. */
  async function subscribe(queue: Queue, settings: Omit<core.ConsumeSettings, 'driver' | 'backoff'>, release?: () => void) {
    const onClosed = () => subscriptions.delete(subscription);
    const subscription = await core.consume(queue.consumer(release), { ...settings, driver: DRIVER_NAME, backoff, onClosed });
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
    capabilities: Object.freeze(capabilities),

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
      for (const queue of queues(broker, prepared.segment, 'subscription').values()) {
        if (core.anyTopicMatches(queue.patterns, prepared.topic!)) queue.push(envelope(prepared, prepared.topic!));
      }
      return { id: prepared.id };
    },

    async taskConsume(handler, consumeOptions) {
      ensureOpen();
      const { segment, kind, prefetch, maxAttempts } = core.prepareTaskConsume(DRIVER_NAME, handler, consumeOptions);
      const queue = getOrCreate(queues(broker, segment, 'kind'), kind, () => new Queue());
      return subscribe(queue, { name: kind, handler: handler as core.Handler, prefetch, maxAttempts });
    },
    async shareConsume(handler, consumeOptions) {
      ensureOpen();
      const prepared = core.prepareShareConsume(DRIVER_NAME, capabilities, handler, consumeOptions);
      const all = queues(broker, prepared.segment, 'subscription');
      const name = prepared.name ?? `ephemeral-${randomUUID()}`;
      const queue = getOrCreate(all, name, () => new Queue());
      queue.patterns = prepared.patterns; // a named subscription reopened with other patterns is re-bound
      // A named subscription keeps collecting while closed; an unnamed one leaves nothing behind.
      const release = prepared.name === undefined ? () => all.delete(name) : undefined;
      const { prefetch, maxAttempts } = prepared;
      return subscribe(queue, { name, handler: handler as core.Handler, prefetch, maxAttempts }, release);
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
  create: (url, options = {}) => createExampleDriver({ ...options, broker: new URL(url).host || options.broker }),
};
