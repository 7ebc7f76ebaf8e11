/**
 * An example driver, written the way a user would write their own: an in-process broker in
 * ~400 lines that passes the whole `@mq-drivers/conformance` suite. Copy it as the skeleton of a
 * driver for your broker: keep the validation calls (`prepare*` from core) and the close rules,
 * replace the in-memory queues with your broker's.
 *
 * Every driver method is `async`, so validation errors become rejected promises, never sync throws.
 */
import { randomBytes } from 'node:crypto';
import {
  anyTopicMatches,
  type BackoffOptions,
  backoffDelay,
  type Capabilities,
  type CloseOptions,
  DEFAULT_BACKOFF,
  DEFAULT_CLOSE_TIMEOUT_MS,
  type DeadLetter,
  type DeadLetterTarget,
  type Driver,
  DriverClosedError,
  type DriverDefinition,
  decodeBody,
  errorText,
  type Handler,
  InvalidArgumentError,
  type JsonValue,
  type Message,
  type PreparedPublish,
  type PublishReceipt,
  prepareDeadLetterTarget,
  prepareShareConsume,
  prepareSharePublish,
  prepareTaskConsume,
  prepareTaskPublish,
  type ShareConsumeOptions,
  type SharePublishOptions,
  type Subscription,
  type TaskConsumeOptions,
  type TaskPublishOptions,
  validateNonNegativeNumber,
  validatePositiveInteger,
  validateSegment,
} from '@mq-drivers/core';

export const DRIVER_NAME = 'example';

export interface ExampleDriverOptions {
  /** Name of the in-process broker; drivers with the same name share queues. Default `default`. */
  broker?: string;
  /** Delay before redelivering a failed message (exponential, jittered). Default core's DEFAULT_BACKOFF. */
  redeliveryBackoff?: BackoffOptions;
  /** Largest accepted message (JSON body plus headers), in bytes. Default 256 KiB. */
  maxMessageBytes?: number;
}

/** A stored message, one copy per queue it was routed to. */
interface Envelope {
  id: string;
  segment: string;
  /** The kind (tasks) or the published topic (shares). */
  topic: string;
  json: string;
  headers: Record<string, string>;
  publishedAt: number;
  attempt: number;
}

/** A task kind, or a share subscription, on one segment: messages waiting plus the consumers that compete for them. */
class Queue {
  readonly messages: Envelope[] = [];
  readonly consumers: Consumer[] = [];
  private turn = 0;

  constructor(
    readonly deadLetters: DeadLetter[],
    public patterns: readonly string[] = [],
  ) {}

  push(envelope: Envelope): void {
    this.messages.push(envelope);
    this.dispatch();
  }

  /** Hands waiting messages to consumers with a free slot, round robin, oldest message first. */
  dispatch(): void {
    while (this.messages.length > 0) {
      const consumer = this.nextFree();
      if (consumer === undefined) return;
      consumer.deliver(this.messages.shift()!);
    }
  }

  private nextFree(): Consumer | undefined {
    for (let step = 0; step < this.consumers.length; step++) {
      const index = (this.turn + step) % this.consumers.length;
      const consumer = this.consumers[index]!;
      if (consumer.held.size < consumer.prefetch) {
        this.turn = index + 1;
        return consumer;
      }
    }
    return undefined;
  }
}

function toMessage(envelope: Envelope): Message {
  return Object.freeze({
    id: envelope.id,
    body: decodeBody(envelope.json),
    segment: envelope.segment,
    topic: envelope.topic,
    publishedAt: new Date(envelope.publishedAt),
    attempt: envelope.attempt,
    headers: Object.freeze({ ...envelope.headers }),
  });
}

/** One subscription: runs the handler for at most `prefetch` messages at once. */
class Consumer {
  /** Delivered and not yet acknowledged (running, or failed and not yet settled). */
  readonly held = new Set<Envelope>();
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly queue: Queue,
    private readonly handler: Handler,
    readonly prefetch: number,
    private readonly maxAttempts: number,
    private readonly backoff: BackoffOptions,
  ) {}

  deliver(envelope: Envelope): void {
    this.held.add(envelope);
    const run = Promise.resolve()
      .then(() => this.handler(toMessage(envelope)))
      .then(
        () => this.settle(envelope, undefined, false),
        (error: unknown) => this.settle(envelope, error, true),
      )
      .finally(() => this.running.delete(run));
    this.running.add(run);
  }

  private settle(envelope: Envelope, error: unknown, failed: boolean): void {
    // A message handed back on close is no longer ours: a late result has no effect.
    if (!this.held.delete(envelope)) return;
    if (failed) {
      if (envelope.attempt >= this.maxAttempts) {
        this.queue.deadLetters.push(
          Object.freeze({ message: toMessage(envelope), error: errorText(error), failedAt: new Date() }),
        );
      } else {
        const again = { ...envelope, attempt: envelope.attempt + 1 };
        setTimeout(() => this.queue.push(again), backoffDelay(envelope.attempt, this.backoff)).unref();
      }
    }
    this.queue.dispatch();
  }

  /** Stops taking messages, waits for running handlers up to the deadline, hands back the rest. */
  async close(timeoutMs: number): Promise<void> {
    const index = this.queue.consumers.indexOf(this);
    if (index >= 0) this.queue.consumers.splice(index, 1);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.running]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    // Unacknowledged messages go back to the front, in delivery order, without counting an attempt.
    this.queue.messages.unshift(...this.held);
    this.held.clear();
    this.queue.dispatch();
  }
}

/** Task kinds, share subscriptions and dead letters of one segment. */
interface SegmentState {
  kinds: Map<string, Queue>;
  subscriptions: Map<string, Queue>;
  deadLetters: Map<string, DeadLetter[]>;
}

const brokers = new Map<string, Map<string, SegmentState>>();

function segmentState(broker: string, segment: string): SegmentState {
  let segments = brokers.get(broker);
  if (segments === undefined) {
    segments = new Map();
    brokers.set(broker, segments);
  }
  let state = segments.get(segment);
  if (state === undefined) {
    state = { kinds: new Map(), subscriptions: new Map(), deadLetters: new Map() };
    segments.set(segment, state);
  }
  return state;
}

function deadLetterStore(state: SegmentState, key: string): DeadLetter[] {
  let store = state.deadLetters.get(key);
  if (store === undefined) {
    store = [];
    state.deadLetters.set(key, store);
  }
  return store;
}

function validateOptions(options: ExampleDriverOptions): Required<ExampleDriverOptions> {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError({ driver: DRIVER_NAME, argument: 'options', value: options, message: 'must be an object' });
  }
  const backoff = options.redeliveryBackoff ?? DEFAULT_BACKOFF;
  validateNonNegativeNumber(DRIVER_NAME, backoff?.baseMs, 'options.redeliveryBackoff.baseMs');
  validateNonNegativeNumber(DRIVER_NAME, backoff?.maxMs, 'options.redeliveryBackoff.maxMs');
  return {
    broker: validateSegment(DRIVER_NAME, options.broker ?? 'default', 'options.broker'),
    redeliveryBackoff: { baseMs: backoff.baseMs, maxMs: backoff.maxMs },
    maxMessageBytes: validatePositiveInteger(
      DRIVER_NAME,
      options.maxMessageBytes ?? 256 * 1024,
      'options.maxMessageBytes',
      2 ** 30,
    ),
  };
}

/** Creates a driver on the named in-process broker. */
export function createExampleDriver(options: ExampleDriverOptions = {}): Driver {
  const settings = validateOptions(options);
  const capabilities: Capabilities = Object.freeze({
    durable: true,
    replay: false,
    ordering: 'per-publisher',
    deadLetter: true,
    maxMessageBytes: settings.maxMessageBytes,
  });
  const subscriptions = new Set<Subscription>();
  let closed = false;

  const ensureOpen = () => {
    if (closed) throw new DriverClosedError({ driver: DRIVER_NAME });
  };

  const envelope = (prepared: PreparedPublish, topic: string): Envelope => ({
    id: prepared.id,
    segment: prepared.segment,
    topic,
    json: prepared.json,
    headers: prepared.headers,
    publishedAt: prepared.publishedAt.getTime(),
    attempt: 1,
  });

  const subscribe = (
    queue: Queue,
    handler: Handler,
    prefetch: number,
    maxAttempts: number,
    name: string,
    onClose?: () => void,
  ) => {
    const consumer = new Consumer(queue, handler as Handler, prefetch, maxAttempts, settings.redeliveryBackoff);
    queue.consumers.push(consumer);
    let closing: Promise<void> | undefined;
    const subscription: Subscription = {
      name,
      get closed() {
        return closing !== undefined;
      },
      async close(closeOptions: CloseOptions = {}) {
        // Validate before anything changes: a rejected close leaves the subscription open.
        const timeoutMs =
          closeOptions?.timeoutMs === undefined
            ? DEFAULT_CLOSE_TIMEOUT_MS
            : validateNonNegativeNumber(DRIVER_NAME, closeOptions.timeoutMs, 'timeoutMs');
        closing ??= consumer.close(timeoutMs).then(() => {
          subscriptions.delete(subscription);
          onClose?.();
        });
        return closing;
      },
    };
    subscriptions.add(subscription);
    queue.dispatch();
    return subscription;
  };

  return {
    specificationVersion: 'v1',
    name: DRIVER_NAME,
    capabilities,

    async taskPublish(body: JsonValue, publishOptions: TaskPublishOptions): Promise<PublishReceipt> {
      ensureOpen();
      const prepared = prepareTaskPublish(DRIVER_NAME, capabilities, body, publishOptions);
      const state = segmentState(settings.broker, prepared.segment);
      for (const [kind, queue] of state.kinds) queue.push(envelope(prepared, kind));
      return { id: prepared.id };
    },

    async sharePublish(body: JsonValue, publishOptions: SharePublishOptions): Promise<PublishReceipt> {
      ensureOpen();
      const prepared = prepareSharePublish(DRIVER_NAME, capabilities, body, publishOptions);
      const topic = prepared.topic!;
      const state = segmentState(settings.broker, prepared.segment);
      for (const queue of state.subscriptions.values()) {
        if (anyTopicMatches(queue.patterns, topic)) queue.push(envelope(prepared, topic));
      }
      return { id: prepared.id };
    },

    async taskConsume<Body extends JsonValue>(handler: Handler<Body>, consumeOptions: TaskConsumeOptions) {
      ensureOpen();
      const prepared = prepareTaskConsume(DRIVER_NAME, handler, consumeOptions);
      const state = segmentState(settings.broker, prepared.segment);
      let queue = state.kinds.get(prepared.kind);
      if (queue === undefined) {
        queue = new Queue(deadLetterStore(state, `kind:${prepared.kind}`));
        state.kinds.set(prepared.kind, queue);
      }
      return subscribe(queue, handler as Handler, prepared.prefetch, prepared.maxAttempts, prepared.kind);
    },

    async shareConsume<Body extends JsonValue>(handler: Handler<Body>, consumeOptions: ShareConsumeOptions) {
      ensureOpen();
      const prepared = prepareShareConsume(DRIVER_NAME, capabilities, handler, consumeOptions);
      const state = segmentState(settings.broker, prepared.segment);
      const name = prepared.name ?? `ephemeral-${randomBytes(8).toString('hex')}`;
      let queue = state.subscriptions.get(name);
      if (queue === undefined) {
        queue = new Queue(deadLetterStore(state, `subscription:${name}`), prepared.patterns);
        state.subscriptions.set(name, queue);
      }
      queue.patterns = prepared.patterns;
      // An unnamed subscription leaves nothing behind; a named one keeps collecting while closed.
      const ephemeral = prepared.name === undefined;
      const onClose = ephemeral ? () => state.subscriptions.delete(name) : undefined;
      return subscribe(queue, handler as Handler, prepared.prefetch, prepared.maxAttempts, name, onClose);
    },

    async listDeadLetters(target: DeadLetterTarget): Promise<DeadLetter[]> {
      ensureOpen();
      const prepared = prepareDeadLetterTarget(DRIVER_NAME, target);
      const state = segmentState(settings.broker, prepared.segment);
      const key = prepared.kind !== undefined ? `kind:${prepared.kind}` : `subscription:${prepared.subscription}`;
      return [...(state.deadLetters.get(key) ?? [])];
    },

    async redriveDeadLetters(target: DeadLetterTarget, redriveOptions: { ids?: readonly string[] } = {}): Promise<number> {
      ensureOpen();
      const prepared = prepareDeadLetterTarget(DRIVER_NAME, target);
      const state = segmentState(settings.broker, prepared.segment);
      const queue = prepared.kind !== undefined ? state.kinds.get(prepared.kind) : state.subscriptions.get(prepared.subscription);
      const store = state.deadLetters.get(
        prepared.kind !== undefined ? `kind:${prepared.kind}` : `subscription:${prepared.subscription}`,
      );
      if (queue === undefined || store === undefined) return 0;
      const wanted = redriveOptions.ids === undefined ? undefined : new Set(redriveOptions.ids);
      const chosen = store.filter((letter) => wanted === undefined || wanted.has(letter.message.id));
      for (const letter of chosen) {
        store.splice(store.indexOf(letter), 1);
        const { message } = letter;
        queue.push({
          id: message.id,
          segment: message.segment,
          topic: message.topic,
          json: JSON.stringify(message.body),
          headers: { ...message.headers },
          publishedAt: message.publishedAt.getTime(),
          attempt: 1,
        });
      }
      return chosen.length;
    },

    async close(): Promise<void> {
      closed = true;
      await Promise.all([...subscriptions].map((subscription) => subscription.close()));
    },
  };
}

/** Registers the driver for `example://<broker>` URLs: `registerDriver(driver)`, then `connect('example://demo')`. */
export const driver: DriverDefinition<ExampleDriverOptions> = {
  name: DRIVER_NAME,
  schemes: ['example'],
  create(url, options = {}) {
    const broker = new URL(url).host || options.broker;
    return createExampleDriver({ ...options, ...(broker ? { broker } : {}) });
  },
};
