import { randomUUID } from 'node:crypto';
import {
  anyTopicMatches,
  type BackoffOptions,
  backoffOption,
  type Capabilities,
  consume,
  type DeadLetterTarget,
  type Driver,
  DriverClosedError,
  describeValue,
  type Handler,
  InvalidArgumentError,
  integerOption,
  prepareDeadLetterTarget,
  prepareRedriveOptions,
  prepareShareConsume,
  prepareSharePublish,
  prepareTaskConsume,
  prepareTaskPublish,
  type ReplayFrom,
  readOptions,
  SPECIFICATION_VERSION,
  type Subscription,
  TopologyError,
  validateSubscriptionName,
} from '@mq-drivers/core';
import { brokers, MemoryBroker, type SegmentState, type ShareQueue } from './broker.js';
import { Queue, QueueTransport, toDeadLetter } from './queue.js';

export const DRIVER_NAME = 'memory';

export interface MemoryDriverOptions {
  /**
   * Name of the in-process broker. Every driver with the same name (in one process) reaches the
   * same broker, so producers and workers written as separate modules just work.
   * Default `'default'` (the broker of `connect('memory:')`).
   */
  broker?: string;
  /**
   * Delay before a failed message comes back: exponential from `baseMs`, capped at `maxMs`, with
   * jitter. Default `{ baseMs: 100, maxMs: 10_000 }`.
   */
  redeliveryBackoff?: BackoffOptions;
  /** Largest message accepted (JSON body plus headers), in bytes. Default 1 MiB. */
  maxMessageBytes?: number;
  /**
   * Share messages kept per segment for replay (`from: 'earliest'`, dates, cursors). Set by the
   * first driver that creates the broker. Default 10,000.
   */
  historyLimit?: number;
}

export const DEFAULT_MEMORY_BACKOFF: BackoffOptions = { baseMs: 100, maxMs: 10_000 };
const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
const DEFAULT_HISTORY_LIMIT = 10_000;
const CURSOR_PREFIX = 'memory:';

const OPTION_KEYS = ['broker', 'redeliveryBackoff', 'maxMessageBytes', 'historyLimit'] as const;

function validateOptions(options: MemoryDriverOptions) {
  const raw = readOptions(DRIVER_NAME, options, OPTION_KEYS);
  return {
    broker: raw.broker === undefined ? 'default' : validateSubscriptionName(DRIVER_NAME, raw.broker, 'options.broker'),
    backoff: backoffOption(DRIVER_NAME, raw, 'redeliveryBackoff', DEFAULT_MEMORY_BACKOFF),
    maxMessageBytes: integerOption(DRIVER_NAME, raw, 'maxMessageBytes', DEFAULT_MAX_MESSAGE_BYTES, 1, 2 ** 31 - 1),
    historyLimit: integerOption(DRIVER_NAME, raw, 'historyLimit', DEFAULT_HISTORY_LIMIT, 1, 2 ** 31 - 1),
  };
}

export function getMemoryBroker(name: string, historyLimit = DEFAULT_HISTORY_LIMIT): MemoryBroker {
  const map = brokers();
  let broker = map.get(name);
  if (!broker) {
    broker = new MemoryBroker(name, historyLimit);
    map.set(name, broker);
  }
  return broker;
}

function startSeq(state: SegmentState, from: ReplayFrom | undefined): number {
  if (from === undefined || from === 'latest') return state.nextSeq;
  if (from === 'earliest') return state.firstSeq;
  if (from instanceof Date) {
    const first = state.history.find((envelope) => envelope.publishedAt.getTime() >= from.getTime());
    return first?.seq ?? state.nextSeq;
  }
  const match = new RegExp(`^${CURSOR_PREFIX}(\\d+)$`).exec(from.cursor);
  if (!match) {
    throw new InvalidArgumentError({
      driver: DRIVER_NAME,
      argument: 'from.cursor',
      value: from.cursor,
      message: `${describeValue(from.cursor)} is not a cursor of this driver (expected "${CURSOR_PREFIX}<n>")`,
    });
  }
  return Number(match[1]);
}

/** Creates an in-process driver: the reference implementation of the contract. */
export function createMemoryDriver(options: MemoryDriverOptions = {}): Driver {
  const settings = validateOptions(options);
  const broker = getMemoryBroker(settings.broker, settings.historyLimit);
  const capabilities: Capabilities = Object.freeze({
    durable: true,
    replay: true,
    ordering: 'per-publisher',
    deadLetter: true,
    maxMessageBytes: settings.maxMessageBytes,
    unregister: true,
  });
  const subscriptions = new Set<Subscription>();
  let closing: Promise<void> | undefined;

  function ensureOpen(): void {
    if (closing) throw new DriverClosedError({ driver: DRIVER_NAME });
  }

  async function subscribe(
    name: string,
    queue: Queue,
    handler: Handler,
    prefetch: number,
    maxAttempts: number,
    after?: () => void,
  ) {
    const subscription = await consume(new QueueTransport(queue), {
      driver: DRIVER_NAME,
      name,
      handler,
      prefetch,
      maxAttempts,
      backoff: settings.backoff,
      onClosed: () => {
        subscriptions.delete(subscription);
        after?.();
      },
    });
    subscriptions.add(subscription);
    return subscription;
  }

  function shareQueue(
    segment: string,
    name: string,
    durable: boolean,
    patterns: string[],
    from: ReplayFrom | undefined,
  ): ShareQueue {
    const state = broker.segment(segment);
    const existing = state.shares.get(name);
    if (existing) {
      existing.patterns = patterns; // a named subscription re-opened with new patterns is re-bound
      return existing;
    }
    const first = startSeq(state, from);
    const share: ShareQueue = {
      queue: new Queue(`${segment}/${name}`),
      patterns,
      durableName: durable ? name : undefined,
      openConsumers: 0,
      pending: new Set(),
      nextSeq: state.nextSeq,
    };
    share.queue.onDone = (envelope) => {
      if (envelope.seq !== undefined) share.pending.delete(envelope.seq);
    };
    for (const envelope of broker.historyFrom(segment, first)) {
      if (!anyTopicMatches(patterns, envelope.topic)) continue;
      share.pending.add(envelope.seq as number);
      share.queue.ready.push(envelope);
    }
    state.shares.set(name, share);
    return share;
  }

  return {
    specificationVersion: SPECIFICATION_VERSION,
    name: DRIVER_NAME,
    capabilities,

    async taskPublish(body, publishOptions) {
      ensureOpen();
      const prepared = prepareTaskPublish(DRIVER_NAME, capabilities, body, publishOptions);
      broker.publishTask({
        id: prepared.id,
        json: prepared.json,
        segment: prepared.segment,
        headers: prepared.headers,
        publishedAt: prepared.publishedAt,
        seq: undefined,
        attempt: 1,
      });
      return { id: prepared.id };
    },

    async sharePublish(body, publishOptions) {
      ensureOpen();
      const prepared = prepareSharePublish(DRIVER_NAME, capabilities, body, publishOptions);
      broker.publishShare({
        id: prepared.id,
        json: prepared.json,
        segment: prepared.segment,
        topic: prepared.topic as string,
        headers: prepared.headers,
        publishedAt: prepared.publishedAt,
        attempt: 1,
      });
      return { id: prepared.id };
    },

    async taskConsume(handler, consumeOptions) {
      ensureOpen();
      const prepared = prepareTaskConsume(DRIVER_NAME, handler, consumeOptions);
      const queue = broker.kindQueue(prepared.segment, prepared.kind);
      return subscribe(prepared.kind, queue, handler as Handler, prepared.prefetch, prepared.maxAttempts);
    },

    async shareConsume(handler, consumeOptions) {
      ensureOpen();
      const prepared = prepareShareConsume(DRIVER_NAME, capabilities, handler, consumeOptions);
      const name = prepared.name ?? `sub-${randomUUID()}`;
      const share = shareQueue(prepared.segment, name, prepared.name !== undefined, prepared.patterns, prepared.from);
      share.openConsumers++;
      const subscription = await subscribe(name, share.queue, handler as Handler, prepared.prefetch, prepared.maxAttempts, () => {
        share.openConsumers--;
        if (share.durableName === undefined && share.openConsumers === 0) {
          // Ephemeral: nothing stays behind once its consumer is gone.
          share.queue.delete();
          broker.segment(prepared.segment).shares.delete(name);
        }
      });
      return Object.assign(subscription, {
        cursor: () => {
          let lowest = share.nextSeq;
          for (const seq of share.pending) if (seq < lowest) lowest = seq;
          return `${CURSOR_PREFIX}${lowest}`;
        },
      });
    },

    async listDeadLetters(target: DeadLetterTarget) {
      ensureOpen();
      const queue = deadLetterQueue(broker, target);
      return queue ? queue.deadLetters.map(toDeadLetter) : [];
    },

    async redriveDeadLetters(target: DeadLetterTarget, redriveOptions?: { ids?: readonly string[] }) {
      ensureOpen();
      const wanted = prepareRedriveOptions(DRIVER_NAME, redriveOptions);
      const queue = deadLetterQueue(broker, target);
      if (!queue) return 0;
      const keep = [];
      const redriven = [];
      for (const stored of queue.deadLetters) {
        if (wanted === undefined || wanted.has(stored.envelope.id)) redriven.push(stored);
        else keep.push(stored);
      }
      queue.deadLetters.splice(0, queue.deadLetters.length, ...keep);
      const share =
        'subscription' in target ? broker.segment(target.segment).shares.get(target.subscription as string) : undefined;
      for (const stored of redriven) {
        if (share && stored.envelope.seq !== undefined) share.pending.add(stored.envelope.seq);
        queue.enqueue({ ...stored.envelope, attempt: 1 });
      }
      return redriven.length;
    },

    async unregister(target: DeadLetterTarget) {
      ensureOpen();
      const prepared = prepareDeadLetterTarget(DRIVER_NAME, target);
      const state = broker.segments.get(prepared.segment);
      const queue =
        prepared.kind !== undefined ? state?.kinds.get(prepared.kind) : state?.shares.get(prepared.subscription)?.queue;
      if (!state || !queue) return { dropped: 0 };
      // Any driver on this broker counts: the broker sees every consumer.
      if (queue.consumerCount > 0) {
        const what = prepared.kind !== undefined ? `task kind "${prepared.kind}"` : `subscription "${prepared.subscription}"`;
        throw new TopologyError({
          driver: DRIVER_NAME,
          resource: queue.name,
          message: `${what} of segment "${prepared.segment}" still has ${queue.consumerCount} open consumer(s); close them before unregistering it`,
        });
      }
      const dropped = queue.waiting;
      queue.delete();
      if (prepared.kind !== undefined) state.kinds.delete(prepared.kind);
      else state.shares.delete(prepared.subscription);
      return { dropped };
    },

    close() {
      if (!closing) {
        closing = Promise.all([...subscriptions].map((subscription) => subscription.close())).then(() => undefined);
      }
      return closing;
    },
  };
}

function deadLetterQueue(broker: MemoryBroker, target: DeadLetterTarget): Queue | undefined {
  const prepared = prepareDeadLetterTarget(DRIVER_NAME, target);
  const state = broker.segments.get(prepared.segment);
  if (!state) return undefined;
  if (prepared.kind !== undefined) return state.kinds.get(prepared.kind);
  return state.shares.get(prepared.subscription)?.queue;
}
