import {
  anyTopicMatches,
  backoffDelay,
  type CloseOptions,
  DEFAULT_CLOSE_TIMEOUT_MS,
  errorText,
  type Handler,
  type Message,
  MqError,
  PublishError,
  type Subscription,
  TopologyError,
  validateNonNegativeNumber,
} from '@mq-drivers/core';
import type { Channel, ConsumeMessage } from 'amqplib';
import { Declarer, type Link } from './link.js';
import { DRIVER_NAME, type ResolvedOptions } from './options.js';
import type { Publisher } from './publisher.js';
import { delayBucket, delayExchange, H } from './topology.js';
import { decode, publishProperties } from './wire.js';

/** What a subscription consumes and how it declares its topology. */
export interface SubscriptionSpec {
  kind: 'task' | 'share';
  segment: string;
  /** The kind (tasks) or the subscription name (shares). */
  name: string;
  /** Tasks: the kind, used as every message's topic. Shares: undefined (topic from the message). */
  fixedTopic: string | undefined;
  /** Shares: the patterns; messages of stale bindings that match none are acknowledged unseen. */
  patterns: string[] | undefined;
  queue: string;
  deadQueue: string;
  /**
   * When this driver unregistered the queue (ms since the epoch): retries of messages published
   * before then may still come back from the shared delay queues, and are dropped unseen.
   */
  unregisteredAt: number | undefined;
  /** Ephemeral subscriptions delete their queue when they close. */
  deleteOnClose: boolean;
  prefetch: number;
  maxAttempts: number;
  handler: Handler;
  /** Declares exchange, queue and bindings on the given channel. */
  declare(declarer: Declarer): Promise<void>;
}

/** Driver services a subscription uses. */
export interface SubscriptionContext {
  link: Link;
  publisher: Publisher;
  options: ResolvedOptions;
  /** Declares (once per connection) the delay exchange and queue of a bucket. */
  ensureDelay(bucket: number): Promise<void>;
  /** Declares (once per connection) the dead-letter queue of a subscription. */
  ensureDeadQueue(spec: SubscriptionSpec): Promise<void>;
  forget(subscription: RabbitSubscription): void;
}

type State = 'running' | 'done' | 'settled';

interface Delivery {
  msg: ConsumeMessage;
  state: State;
  gen: Generation;
}

/** One consumer on one channel. A reconnect or a broker cancel starts a new generation. */
interface Generation {
  channel: Channel;
  tag: string | undefined;
  alive: boolean;
  /** Unsettled deliveries in delivery-tag order, from `head`. */
  inflight: Array<Delivery | undefined>;
  head: number;
  /** Finished deliveries not yet acknowledged. */
  done: number;
  flushScheduled: boolean;
}

const MAX_ERROR_HEADER = 16 * 1024;

/**
 * A consumer. Acknowledges after the handler succeeds, in runs: consecutive finished deliveries
 * are acknowledged with one `basic.ack(multiple)`, and a delivery is never covered by an ack
 * before its handler finished. A failed handler's message is republished to the retry path
 * (or to the dead letters) with publisher confirms, and only then acknowledged.
 */
export class RabbitSubscription implements Subscription {
  readonly name: string;
  private gen: Generation | undefined;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private running = 0;
  private idle: Array<() => void> = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private restartAttempt = 0;
  /** A generation is being started: resume() must not start a second one. */
  private starting = false;
  private startPromise: Promise<void> | undefined;

  constructor(
    private readonly spec: SubscriptionSpec,
    private readonly ctx: SubscriptionContext,
  ) {
    this.name = spec.name;
  }

  /** The queue it consumes. */
  get queue(): string {
    return this.spec.queue;
  }

  get closed(): boolean {
    return this.closing;
  }

  /** Declares the topology and starts consuming; errors go to the caller. */
  async start(): Promise<void> {
    await this.startGeneration();
  }

  private async startGeneration(): Promise<void> {
    this.starting = true;
    this.startPromise = this.startChannel();
    try {
      await this.startPromise;
    } finally {
      this.starting = false;
    }
  }

  private async startChannel(): Promise<void> {
    const channel = await this.ctx.link.channel();
    const gen: Generation = {
      channel,
      tag: undefined,
      alive: false,
      inflight: [],
      head: 0,
      done: 0,
      flushScheduled: false,
    };
    channel.on('error', (error: Error) => {
      if (!gen.alive) return;
      this.ctx.options.onError(
        new MqError({
          driver: DRIVER_NAME,
          message: `the broker closed the channel of ${this.describe()}: ${error.message}`,
          cause: error,
        }),
      );
    });
    channel.on('close', () => this.onChannelClose(gen));
    try {
      await channel.prefetch(this.spec.prefetch, false);
      await this.spec.declare(new Declarer(channel));
      if (this.closing) throw new MqError({ driver: DRIVER_NAME, message: 'subscription closed while starting' });
      gen.alive = true;
      this.gen = gen;
      const reply = await channel.consume(this.spec.queue, (msg) => this.onMessage(gen, msg), { noAck: false });
      gen.tag = reply.consumerTag;
      this.restartAttempt = 0;
    } catch (error) {
      gen.alive = false;
      if (this.gen === gen) this.gen = undefined;
      channel.close().catch(() => {});
      throw error;
    }
  }

  /** The connection is back: declare again (the broker may have restarted) and consume. */
  resume(): void {
    if (this.closing || this.starting) return;
    if (this.gen?.alive) return;
    this.scheduleRestart(0);
  }

  /** The connection is gone: its deliveries will come again from the broker. */
  suspend(): void {
    if (this.gen) this.gen.alive = false;
  }

  private scheduleRestart(delayMs: number): void {
    if (this.closing || this.restartTimer) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closing || this.starting || this.gen?.alive || !this.ctx.link.current) return;
      this.startGeneration().catch((error: unknown) => {
        if (this.closing) return;
        this.ctx.options.onError(
          MqError.isInstance(error)
            ? error
            : new MqError({
                driver: DRIVER_NAME,
                message: `cannot resume ${this.describe()}: ${errorText(error)}`,
                cause: error,
              }),
        );
        this.restartAttempt++;
        this.scheduleRestart(backoffDelay(this.restartAttempt, this.ctx.options.reconnectBackoff));
      });
    }, delayMs);
  }

  private describe(): string {
    return `${this.spec.kind === 'task' ? 'task kind' : 'subscription'} "${this.spec.name}" on segment "${this.spec.segment}" (queue ${this.spec.queue})`;
  }

  private onChannelClose(gen: Generation): void {
    const wasAlive = gen.alive;
    gen.alive = false;
    if (this.gen === gen) this.gen = undefined;
    // Channel error with the connection still up: start again after a pause. A lost connection
    // is handled by resume() once it is back.
    if (wasAlive && !this.closing && this.ctx.link.current) {
      this.restartAttempt++;
      this.scheduleRestart(backoffDelay(this.restartAttempt, this.ctx.options.reconnectBackoff));
    }
  }

  private onCancelled(gen: Generation): void {
    if (this.closing || !gen.alive) return;
    this.ctx.options.onError(
      new TopologyError({
        driver: DRIVER_NAME,
        resource: this.spec.queue,
        message: `the broker cancelled the consumer of ${this.describe()} (was the queue deleted?); declaring it again and resuming`,
      }),
    );
    gen.alive = false;
    if (this.gen === gen) this.gen = undefined;
    gen.channel.close().catch(() => {});
    this.restartAttempt++;
    this.scheduleRestart(backoffDelay(this.restartAttempt, this.ctx.options.reconnectBackoff));
  }

  private onMessage(gen: Generation, msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.onCancelled(gen);
      return;
    }
    if (!gen.alive) return;
    if (this.closing) {
      // Arrived after close() began: hand it straight back, unstarted.
      this.onChannel(gen, (channel) => channel.nack(msg, false, true));
      return;
    }
    const delivery: Delivery = { msg, state: 'running', gen };
    gen.inflight.push(delivery);
    this.running++;
    const { message, invalidBody } = decode(msg, this.spec.segment, this.spec.fixedTopic);
    if (invalidBody !== undefined) {
      this.fail(delivery, message, invalidBody, true);
      return;
    }
    if (this.isStaleRetry(message)) {
      this.finish(delivery);
      return;
    }
    if (this.spec.patterns && !anyTopicMatches(this.spec.patterns, message.topic)) {
      // Routed by a binding this subscription no longer has (named subscription re-opened with other topics).
      this.finish(delivery);
      return;
    }
    let result: unknown;
    try {
      result = this.spec.handler(message);
    } catch (error) {
      this.fail(delivery, message, error, false);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then(
        () => this.finish(delivery),
        (error: unknown) => this.fail(delivery, message, error, false),
      );
    } else {
      this.finish(delivery);
    }
  }

  /** A retry of what `unregister` removed, back from a delay queue after the kind was registered again. */
  private isStaleRetry(message: Message): boolean {
    const since = this.spec.unregisteredAt;
    return since !== undefined && message.attempt > 1 && message.publishedAt.getTime() < since;
  }

  private handlerEnded(): void {
    this.running--;
    if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
  }

  private finish(delivery: Delivery): void {
    if (delivery.state !== 'running') return;
    this.handlerEnded();
    const gen = delivery.gen;
    if (!gen.alive) {
      delivery.state = 'settled';
      return;
    }
    delivery.state = 'done';
    gen.done++;
    if (!gen.flushScheduled) {
      gen.flushScheduled = true;
      setImmediate(() => this.flush(gen));
    }
  }

  /** Acknowledges finished deliveries: the run at the head with one multiple-ack, the rest one by one. */
  private flush(gen: Generation): void {
    gen.flushScheduled = false;
    if (!gen.alive || gen.done === 0) return;
    const inflight = gen.inflight;
    let last: Delivery | undefined;
    while (gen.head < inflight.length) {
      const d = inflight[gen.head]!;
      if (d.state === 'running') break;
      if (d.state === 'done') {
        d.state = 'settled';
        gen.done--;
        last = d;
      }
      inflight[gen.head] = undefined;
      gen.head++;
    }
    if (last) this.onChannel(gen, (channel) => channel.ack(last.msg, true));
    if (gen.done > 0) {
      for (let i = gen.head; i < inflight.length; i++) {
        const d = inflight[i]!;
        if (d.state === 'done') {
          d.state = 'settled';
          this.onChannel(gen, (channel) => channel.ack(d.msg, false));
        }
      }
      gen.done = 0;
    }
    if (gen.head > 256 && gen.head * 2 > inflight.length) {
      gen.inflight = inflight.slice(gen.head);
      gen.head = 0;
    }
  }

  /**
   * Acks and nacks go through here: amqplib throws synchronously once the channel or connection
   * is closing, and then the broker requeues the delivery by itself.
   */
  private onChannel(gen: Generation, work: (channel: Channel) => void): void {
    if (!gen.alive) return;
    try {
      work(gen.channel);
    } catch {
      gen.alive = false;
    }
  }

  /** Republishes a failed message for a retry (attempt + 1) or to the dead letters, then acknowledges it. */
  private fail(delivery: Delivery, message: Message, error: unknown, final: boolean): void {
    if (delivery.state !== 'running') return;
    if (!delivery.gen.alive) {
      delivery.state = 'settled';
      this.handlerEnded();
      return;
    }
    const text = errorText(error).slice(0, MAX_ERROR_HEADER);
    const dead = final || message.attempt >= this.spec.maxAttempts;
    const work = dead ? this.toDeadLetters(delivery, message, text) : this.toRetry(delivery, message, text);
    work.then(
      () => this.finish(delivery),
      (publishError: unknown) => {
        if (delivery.state !== 'running') return;
        this.handlerEnded();
        this.ctx.options.onError(
          new PublishError({
            driver: DRIVER_NAME,
            message: `could not ${dead ? 'dead-letter' : 'schedule the retry of'} message ${message.id} of ${this.describe()}; handing it back to the queue: ${errorText(publishError)}`,
            messageId: message.id,
            cause: publishError,
          }),
        );
        delivery.state = 'settled';
        this.onChannel(delivery.gen, (channel) => channel.nack(delivery.msg, false, true));
      },
    );
  }

  private reserved(message: Message): Record<string, string | number> {
    return this.spec.kind === 'share' ? { [H.topic]: message.topic } : {};
  }

  private async toRetry(delivery: Delivery, message: Message, text: string): Promise<void> {
    const bucket = delayBucket(backoffDelay(message.attempt, this.ctx.options.redeliveryBackoff));
    await this.ctx.ensureDelay(bucket);
    await this.ctx.publisher.publish({
      exchange: delayExchange(this.ctx.options.prefix, bucket),
      exchangeType: 'fanout',
      routingKey: this.spec.queue,
      content: delivery.msg.content,
      properties: publishProperties({
        id: message.id,
        publishedAtMs: message.publishedAt.getTime(),
        headers: message.headers,
        reserved: { ...this.reserved(message), [H.attempt]: message.attempt + 1, [H.error]: text },
      }),
      publishedAtMs: message.publishedAt.getTime(),
      mandatory: true,
      id: message.id,
    });
  }

  private async toDeadLetters(delivery: Delivery, message: Message, text: string): Promise<void> {
    await this.ctx.ensureDeadQueue(this.spec);
    await this.ctx.publisher.publish({
      exchange: '',
      exchangeType: undefined,
      routingKey: this.spec.deadQueue,
      content: delivery.msg.content,
      properties: publishProperties({
        id: message.id,
        publishedAtMs: message.publishedAt.getTime(),
        headers: message.headers,
        reserved: { ...this.reserved(message), [H.attempt]: message.attempt, [H.error]: text, [H.failedAt]: Date.now() },
      }),
      publishedAtMs: message.publishedAt.getTime(),
      mandatory: true,
      id: message.id,
    });
  }

  close(options?: CloseOptions): Promise<void> {
    if (this.closePromise) return this.closePromise;
    let timeoutMs: number;
    try {
      timeoutMs =
        options?.timeoutMs === undefined
          ? DEFAULT_CLOSE_TIMEOUT_MS
          : validateNonNegativeNumber(DRIVER_NAME, options.timeoutMs, 'options.timeoutMs');
    } catch (error) {
      return Promise.reject(error);
    }
    this.closing = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.closePromise = this.shutdown(timeoutMs);
    return this.closePromise;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    if (this.starting) await this.startPromise?.catch(() => {});
    const gen = this.gen;
    // 1. Stop fetching.
    if (gen?.alive && gen.tag) {
      await gen.channel.cancel(gen.tag).catch(() => {});
    }
    // 2. Wait for running handlers, up to the deadline.
    if (this.running > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idle.push(resolve)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    // 3. Acknowledge what finished; hand back everything else, without counting an attempt.
    if (gen?.alive) {
      this.flush(gen);
      let unsettled = false;
      for (let i = gen.head; i < gen.inflight.length; i++) {
        const d = gen.inflight[i];
        if (d && d.state === 'running') {
          d.state = 'settled';
          unsettled = true;
        }
      }
      if (unsettled) this.onChannel(gen, (channel) => channel.nackAll(true));
      gen.alive = false;
      if (this.spec.deleteOnClose) await gen.channel.deleteQueue(this.spec.queue).catch(() => {});
      await gen.channel.close().catch(() => {});
    } else if (this.spec.deleteOnClose && this.ctx.link.current) {
      await this.ctx.link.declare((d) => d.channel.deleteQueue(this.spec.queue)).catch(() => {});
    }
    this.gen = undefined;
    this.ctx.forget(this);
  }
}
