import { randomBytes } from 'node:crypto';
import {
  type Capabilities,
  consume,
  type DeadLetter,
  type DeadLetterTarget,
  type Driver,
  DriverClosedError,
  errorText,
  type Handler,
  InvalidArgumentError,
  type JsonValue,
  MqError,
  type PreparedPublish,
  type PublishReceipt,
  prepareDeadLetterTarget,
  prepareRedriveOptions,
  prepareShareConsume,
  prepareSharePublish,
  prepareTaskConsume,
  prepareTaskPublish,
  type ShareConsumeOptions,
  type SharePublishOptions,
  SPECIFICATION_VERSION,
  type Subscription,
  type TaskConsumeOptions,
  type TaskPublishOptions,
  type UnregisterResult,
} from '@mq-drivers/core';
import type { GetMessage } from 'amqplib';
import { Declarer, Link } from './link.js';
import { DRIVER_NAME, type RabbitMqDriverOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { Publisher } from './publisher.js';
import { RabbitTransport, type SubscriptionContext, type SubscriptionSpec } from './subscription.js';
import {
  durableDeadQueue,
  durableQueue,
  H,
  kindDeadQueue,
  kindQueue,
  shareDeadQueue,
  shareExchange,
  shareQueue,
  Topology,
  taskExchange,
} from './topology.js';
import { deleteQueues, inUseError } from './unregister.js';
import {
  deadMessage,
  decode,
  headersTableBytes,
  isEmpty,
  MAX_USER_HEADER_BYTES,
  publishProperties,
  REFUSED_HEADERS,
  userHeaders,
} from './wire.js';

/** A RabbitMQ driver: the contract's {@link Driver}. */
export interface RabbitMqDriver extends Driver {
  readonly name: typeof DRIVER_NAME;
}

/**
 * Creates a driver for RabbitMQ (AMQP 0-9-1). Validates the options now; connects on first use.
 * See TOPOLOGY.md for the exchanges, queues and headers it uses.
 */
export function createRabbitMqDriver(options: RabbitMqDriverOptions): RabbitMqDriver {
  const resolved = resolveOptions(options);
  return new RabbitMqDriverImpl(resolved);
}

class RabbitMqDriverImpl implements RabbitMqDriver {
  readonly specificationVersion = SPECIFICATION_VERSION;
  readonly name = DRIVER_NAME;
  readonly capabilities: Capabilities;
  private readonly link: Link;
  private readonly publisher: Publisher;
  /** Open subscriptions: their transports, and the engine's subscription once started. */
  private readonly subscriptions = new Map<RabbitTransport, Subscription | undefined>();
  private readonly topology: Topology;
  private closing: Promise<void> | undefined;
  /**
   * Queues this driver unregistered, and when. Kept for the driver's life (one entry per
   * queue): its later subscriptions drop retries of older messages (see `unregister`).
   */
  private readonly unregistered = new Map<string, number>();
  private readonly ctx: SubscriptionContext;

  constructor(private readonly options: ResolvedOptions) {
    this.capabilities = Object.freeze({
      durable: true,
      replay: false,
      ordering: 'per-publisher',
      deadLetter: true,
      maxMessageBytes: options.maxMessageBytes,
      unregister: true,
      refusedHeaders: REFUSED_HEADERS,
    });
    this.link = new Link(options, {
      open: () => {
        this.topology.reset();
        this.publisher.onConnectionOpen();
        for (const transport of this.subscriptions.keys()) transport.resume();
      },
      lost: () => {
        for (const transport of this.subscriptions.keys()) transport.suspend();
      },
    });
    this.topology = new Topology(this.link, options);
    this.publisher = new Publisher(this.link, this.topology, options);
    this.ctx = { link: this.link, publisher: this.publisher, topology: this.topology, options };
  }

  private checkOpen(): void {
    if (this.closing) throw new DriverClosedError({ driver: DRIVER_NAME });
  }

  private send(
    prepared: PreparedPublish,
    exchange: string,
    type: 'fanout' | 'topic',
    routingKey: string,
  ): Promise<PublishReceipt> {
    const headers = prepared.headers;
    const plain = isEmpty(headers);
    if (!plain && headersTableBytes(headers) > MAX_USER_HEADER_BYTES) {
      return Promise.reject(
        new InvalidArgumentError({
          driver: DRIVER_NAME,
          argument: 'headers',
          value: Object.keys(headers),
          message: `encode to more than ${MAX_USER_HEADER_BYTES} bytes; AMQP header tables are limited to 64 KiB (put large data in the body)`,
        }),
      );
    }
    const id = prepared.id;
    const publishedAtMs = prepared.publishedAt.getTime();
    return this.publisher.publish({
      exchange,
      exchangeType: type,
      routingKey,
      content: Buffer.from(prepared.json),
      // A plain publish gets the publisher's reused properties at send time (same wire bytes).
      properties: plain ? undefined : publishProperties({ id, publishedAtMs, headers }),
      publishedAtMs,
      mandatory: false,
      id,
    });
  }

  // Not `async`: one promise per publish, settled straight from the broker's confirm.
  taskPublish(body: JsonValue, options: TaskPublishOptions): Promise<PublishReceipt> {
    try {
      this.checkOpen();
      const prepared = prepareTaskPublish(DRIVER_NAME, this.capabilities, body, options);
      return this.send(prepared, taskExchange(this.options.prefix, prepared.segment), 'fanout', '');
    } catch (error) {
      return Promise.reject(error);
    }
  }

  sharePublish(body: JsonValue, options: SharePublishOptions): Promise<PublishReceipt> {
    try {
      this.checkOpen();
      const prepared = prepareSharePublish(DRIVER_NAME, this.capabilities, body, options);
      return this.send(prepared, shareExchange(this.options.prefix, prepared.segment), 'topic', prepared.topic!);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async taskConsume<Body extends JsonValue = JsonValue>(
    handler: Handler<Body>,
    options: TaskConsumeOptions,
  ): Promise<Subscription> {
    this.checkOpen();
    const prepared = prepareTaskConsume(DRIVER_NAME, handler, options);
    const { segment, kind } = prepared;
    const prefix = this.options.prefix;
    const queue = kindQueue(prefix, segment, kind);
    const deadQueue = kindDeadQueue(prefix, segment, kind);
    return this.startSubscription(handler as Handler, this.prefetch(options, prepared), prepared.maxAttempts, {
      kind: 'task',
      segment,
      name: kind,
      ephemeral: false,
      unregisteredAt: this.unregistered.get(queue),
      fixedTopic: kind,
      patterns: undefined,
      queue,
      deadQueue,
      declare: (d) => this.topology.declareKind(d, segment, queue, deadQueue),
    });
  }

  async shareConsume<Body extends JsonValue = JsonValue>(
    handler: Handler<Body>,
    options: ShareConsumeOptions,
  ): Promise<Subscription> {
    this.checkOpen();
    const prepared = prepareShareConsume(DRIVER_NAME, this.capabilities, handler, options);
    const { segment, patterns } = prepared;
    const ephemeral = prepared.name === undefined;
    const name =
      prepared.name ??
      `eph-${randomBytes(9)
        .toString('base64url')
        .replace(/[^A-Za-z0-9]/g, 'x')}`;
    const prefix = this.options.prefix;
    const queue = shareQueue(prefix, segment, name);
    const deadQueue = shareDeadQueue(prefix, segment, name);
    return this.startSubscription(handler as Handler, this.prefetch(options, prepared), prepared.maxAttempts, {
      kind: 'share',
      segment,
      name,
      ephemeral,
      unregisteredAt: ephemeral ? undefined : this.unregistered.get(queue),
      fixedTopic: undefined,
      patterns,
      queue,
      deadQueue,
      declare: (d) => this.topology.declareShare(d, segment, queue, deadQueue, patterns, ephemeral),
    });
  }

  /** The prefetch core validated, or this driver's default when the subscription sets none. */
  private prefetch(options: { prefetch?: number }, prepared: { prefetch: number }): number {
    return options.prefetch === undefined ? this.options.prefetch : prepared.prefetch;
  }

  /** Runs a subscription on core's engine, with a `RabbitTransport` moving its messages. */
  private async startSubscription(
    handler: Handler,
    prefetch: number,
    maxAttempts: number,
    spec: SubscriptionSpec,
  ): Promise<Subscription> {
    const transport = new RabbitTransport(spec, this.ctx);
    this.subscriptions.set(transport, undefined);
    let subscription: Subscription;
    try {
      subscription = await consume(transport, {
        driver: DRIVER_NAME,
        name: spec.name,
        handler,
        prefetch,
        maxAttempts,
        backoff: this.options.redeliveryBackoff,
        onError: (error) =>
          this.options.onError(
            MqError.isInstance(error) ? error : new MqError({ driver: DRIVER_NAME, message: errorText(error), cause: error }),
          ),
        onClosed: () => this.subscriptions.delete(transport),
      });
    } catch (error) {
      this.subscriptions.delete(transport);
      throw error;
    }
    this.subscriptions.set(transport, subscription);
    if (this.closing) {
      await subscription.close({ timeoutMs: 0 });
      throw new DriverClosedError({ driver: DRIVER_NAME });
    }
    return subscription;
  }

  private target(target: DeadLetterTarget): { segment: string; queue: string; deadQueue: string; topic: string | undefined } {
    const prepared = prepareDeadLetterTarget(DRIVER_NAME, target);
    const prefix = this.options.prefix;
    if (prepared.kind !== undefined) {
      return {
        segment: prepared.segment,
        queue: kindQueue(prefix, prepared.segment, prepared.kind),
        deadQueue: kindDeadQueue(prefix, prepared.segment, prepared.kind),
        topic: prepared.kind,
      };
    }
    return {
      segment: prepared.segment,
      queue: shareQueue(prefix, prepared.segment, prepared.subscription),
      deadQueue: shareDeadQueue(prefix, prepared.segment, prepared.subscription),
      topic: undefined,
    };
  }

  private toDeadLetter(msg: GetMessage, segment: string, topic: string | undefined): DeadLetter {
    const message = deadMessage(decode(msg, segment, topic));
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    const error = headers[H.error];
    const failedAt = Number(headers[H.failedAt]);
    const death = (headers['x-death'] as Array<{ reason?: string; queue?: string; time?: { value?: number } }> | undefined)?.[0];
    return {
      message,
      error:
        error !== undefined
          ? Buffer.isBuffer(error)
            ? error.toString('utf8')
            : String(error)
          : `dead-lettered by the broker (${death?.reason ?? 'unknown reason'}${death?.queue ? ` from ${death.queue}` : ''})`,
      failedAt: Number.isFinite(failedAt)
        ? new Date(failedAt)
        : death?.time?.value
          ? new Date(death.time.value * 1000)
          : message.publishedAt,
    };
  }

  async listDeadLetters(target: DeadLetterTarget): Promise<DeadLetter[]> {
    this.checkOpen();
    const { segment, deadQueue, topic } = this.target(target);
    const channel = await this.link.channel();
    channel.on('error', () => {});
    try {
      if (!(await new Declarer(channel).exists(deadQueue))) return [];
      const letters: DeadLetter[] = [];
      for (;;) {
        const msg = await channel.get(deadQueue, { noAck: false });
        if (msg === false) break;
        letters.push(this.toDeadLetter(msg, segment, topic));
      }
      return letters;
    } finally {
      // Closing the channel returns every message we read, in place.
      await channel.close().catch(() => {});
    }
  }

  async redriveDeadLetters(target: DeadLetterTarget, options?: { ids?: readonly string[] }): Promise<number> {
    this.checkOpen();
    const { segment, queue, deadQueue, topic } = this.target(target);
    const wanted = prepareRedriveOptions(DRIVER_NAME, options);
    const channel = await this.link.confirmChannel();
    channel.on('error', () => {});
    const returned = new Set<string>();
    channel.on('return', (msg: GetMessage) => {
      const id = msg.properties.messageId;
      if (typeof id === 'string') returned.add(id);
    });
    try {
      if (!(await new Declarer(channel).exists(deadQueue))) return 0;
      const moved: Array<{ msg: GetMessage; id: string }> = [];
      for (;;) {
        const msg = await channel.get(deadQueue, { noAck: false });
        if (msg === false) break;
        const message = decode(msg, segment, topic);
        if (wanted && !wanted.has(message.id)) continue; // stays unacknowledged: back in place on close
        const reserved: Record<string, string | number> = topic === undefined ? { [H.topic]: message.topic } : {};
        channel.publish(
          '',
          queue,
          msg.content,
          {
            ...publishProperties({
              id: message.id,
              publishedAtMs: message.publishedAt.getTime(),
              headers: userHeaders(msg.properties.headers as Record<string, unknown>),
              reserved,
            }),
            mandatory: true,
          },
          () => {},
        );
        moved.push({ msg, id: message.id });
      }
      if (moved.length === 0) return 0;
      await channel.waitForConfirms();
      let count = 0;
      for (const { msg, id } of moved) {
        if (returned.has(id)) continue; // no queue to go back to: it stays a dead letter
        channel.ack(msg);
        count++;
      }
      return count;
    } finally {
      await channel.close().catch(() => {});
    }
  }

  /**
   * Deletes the queue and dead-letter queue of a kind or named subscription (see unregister.ts).
   * Retries already waiting in the shared delay queues cannot be picked out of them: once they
   * expire they are routed nowhere while the queue is gone, and if the kind is registered again
   * before that, this driver's new subscriptions drop them (their attempt is above 1 and their
   * message older than the unregister). A subscription of another driver instance cannot know.
   */
  async unregister(target: DeadLetterTarget): Promise<UnregisterResult> {
    this.checkOpen();
    const { queue, deadQueue } = this.target(target);
    for (const transport of this.subscriptions.keys()) {
      if (transport.queue === queue) throw inUseError(queue, 'in this driver');
    }
    const config = this.topology.config;
    const dropped = await deleteQueues(this.link, {
      queue: durableQueue(config, queue, deadQueue),
      deadQueue: durableDeadQueue(config, deadQueue),
      quorum: config.queueType === 'quorum',
    });
    this.unregistered.set(queue, Date.now());
    this.topology.forgetDeadQueue(deadQueue);
    return { dropped };
  }

  close(): Promise<void> {
    if (!this.closing) this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await Promise.all([...this.subscriptions.values()].map((subscription) => subscription?.close()));
    await this.publisher.close();
    await this.link.close();
    this.publisher.abort(new DriverClosedError({ driver: DRIVER_NAME }));
  }
}
