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
  message: Message;
  /** Set when the body is not JSON: the delivery goes to the dead letters. */
  invalidBody: string | undefined;
  /** `running` until acknowledged or handed back (also while held, see `held`). */
  state: State;
  gen: Generation;
  /** Counted in `running`: its handler runs (or its failure is being published). False while held. */
  active: boolean;
}

/**
 * One channel and its consumers. A reconnect or a broker cancel starts a new generation.
 * Consumers are added as capacity frees (see `topUp`); their prefetches add up to `limit`.
 */
interface Generation {
  channel: Channel;
  tags: string[];
  /** Sum of the prefetch (`basic.qos`, per consumer) of this channel's consumers. */
  limit: number;
  alive: boolean;
  /** Active deliveries of this generation. */
  running: number;
  /** Unsettled deliveries in delivery-tag order, from `head`. */
  inflight: Array<Delivery | undefined>;
  head: number;
  /** Finished deliveries not yet acknowledged. */
  done: number;
  flushScheduled: boolean;
  /** Serializes `basic.qos` + `basic.consume` pairs (a qos applies to the next consume). */
  chain: Promise<void>;
}

/**
 * How a message's handler ended in a generation that was gone by then (its ack or retry could
 * not be sent): the broker redelivers that message, and the redelivered copy is settled with this
 * outcome instead of running the handler again.
 */
interface Outcome {
  attempt: number;
  publishedAtMs: number;
  failed: boolean;
  error: unknown;
}

const MAX_ERROR_HEADER = 16 * 1024;
/** Outcomes remembered for redeliveries that may never come (another consumer took them). */
const MAX_OUTCOMES = 10_000;

/**
 * A consumer. Acknowledges after the handler succeeds, in runs: consecutive finished deliveries
 * are acknowledged with one `basic.ack(multiple)`, and a delivery is never covered by an ack
 * before its handler finished. A failed handler's message is republished to the retry path
 * (or to the dead letters) with publisher confirms, and only then acknowledged.
 *
 * `prefetch` bounds the handlers running at once, across reconnects: handlers of a lost
 * channel keep running, so a new channel consumes only what they leave free (the prefetch of
 * its consumers adds up to `prefetch` minus the handlers still running on lost channels), and
 * adds a consumer for the rest as they finish. A redelivered message whose handler still runs
 * here is held until that run ends, then settled with its outcome (acknowledged after a
 * success, retried after a failure) instead of running twice.
 */
export class RabbitSubscription implements Subscription {
  readonly name: string;
  private gen: Generation | undefined;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  /** Active deliveries of every generation (handlers running, failures being published). */
  private running = 0;
  /** Active deliveries of generations that are gone: they still occupy prefetch slots. */
  private oldRunning = 0;
  /** The delivery whose handler runs, by message id. */
  private readonly runningIds = new Map<string, Delivery>();
  /** Deliveries of a message id that arrived while a handler of that id was running. */
  private readonly held = new Map<string, Delivery[]>();
  private readonly outcomes = new Map<string, Outcome>();
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
      tags: [],
      limit: 0,
      alive: false,
      running: 0,
      inflight: [],
      head: 0,
      done: 0,
      flushScheduled: false,
      chain: Promise.resolve(),
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
      await this.spec.declare(new Declarer(channel));
      if (this.closing) throw new MqError({ driver: DRIVER_NAME, message: 'subscription closed while starting' });
      gen.alive = true;
      this.gen = gen;
      // Consumes what the handlers still running on lost channels leave free (maybe nothing yet).
      await this.topUp(gen);
      this.restartAttempt = 0;
    } catch (error) {
      this.kill(gen);
      if (this.gen === gen) this.gen = undefined;
      channel.close().catch(() => {});
      throw error;
    }
  }

  /**
   * Adds a consumer for the prefetch slots that are free: `prefetch` minus the handlers still
   * running on lost channels minus what this channel's consumers already take. Serialized per
   * channel. Rejects when the channel fails (it is closing; `onChannelClose` restarts).
   */
  private topUp(gen: Generation): Promise<void> {
    const work = gen.chain.then(() => this.addConsumer(gen));
    gen.chain = work.catch(() => {});
    return work;
  }

  private async addConsumer(gen: Generation): Promise<void> {
    if (!gen.alive || this.closing) return;
    const free = this.spec.prefetch - this.oldRunning - gen.limit;
    if (free <= 0) return;
    gen.limit += free;
    try {
      await gen.channel.prefetch(free, false);
      const reply = await gen.channel.consume(this.spec.queue, (msg) => this.onMessage(gen, msg), { noAck: false });
      gen.tags.push(reply.consumerTag);
    } catch (error) {
      gen.limit -= free;
      throw error;
    }
  }

  /** The generation is gone: the broker requeues its deliveries; its running handlers become old. */
  private kill(gen: Generation): void {
    if (!gen.alive) return;
    gen.alive = false;
    this.oldRunning += gen.running;
    // Finished but not yet acknowledged: the broker redelivers them; settle those copies unrun.
    for (let i = gen.head; i < gen.inflight.length; i++) {
      const delivery = gen.inflight[i];
      if (delivery?.state === 'done') {
        delivery.state = 'settled';
        if (!this.closing) this.remember(delivery, false, undefined);
      }
    }
    gen.done = 0;
  }

  /** The connection is back: declare again (the broker may have restarted) and consume. */
  resume(): void {
    if (this.closing || this.starting) return;
    if (this.gen?.alive) return;
    this.scheduleRestart(0);
  }

  /** The connection is gone: its deliveries will come again from the broker. */
  suspend(): void {
    if (this.gen) this.kill(this.gen);
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
    this.kill(gen);
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
    this.kill(gen);
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
    const { message, invalidBody } = decode(msg, this.spec.segment, this.spec.fixedTopic);
    const delivery: Delivery = { msg, message, invalidBody, state: 'running', gen, active: false };
    gen.inflight.push(delivery);
    this.dispatch(delivery);
  }

  private activate(delivery: Delivery): void {
    delivery.active = true;
    this.running++;
    delivery.gen.running++;
  }

  /** Runs the handler of a delivery, or holds it / settles it when its message already ran here. */
  private dispatch(delivery: Delivery): void {
    const { message, msg } = delivery;
    if (delivery.invalidBody !== undefined) {
      this.activate(delivery);
      this.fail(delivery, message, delivery.invalidBody, true);
      return;
    }
    const id = message.id;
    if (this.runningIds.has(id)) {
      // The same message still runs (its first delivery was on a lost channel): never twice at once.
      const list = this.held.get(id);
      if (list) list.push(delivery);
      else this.held.set(id, [delivery]);
      return;
    }
    const outcome = this.outcomes.get(id);
    if (
      outcome !== undefined &&
      msg.fields.redelivered &&
      outcome.attempt === message.attempt &&
      outcome.publishedAtMs === message.publishedAt.getTime()
    ) {
      // Its handler already ran to the end here; only the ack (or the retry) was lost with the channel.
      this.outcomes.delete(id);
      this.activate(delivery);
      if (outcome.failed) this.fail(delivery, message, outcome.error, false);
      else this.finish(delivery);
      return;
    }
    this.activate(delivery);
    if (this.isStaleRetry(message)) {
      this.finish(delivery);
      return;
    }
    if (this.spec.patterns && !anyTopicMatches(this.spec.patterns, message.topic)) {
      // Routed by a binding this subscription no longer has (named subscription re-opened with other topics).
      this.finish(delivery);
      return;
    }
    this.runningIds.set(id, delivery);
    let result: unknown;
    try {
      result = this.spec.handler(message);
    } catch (error) {
      this.handlerDone(delivery, true, error);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then(
        () => this.handlerDone(delivery, false, undefined),
        (error: unknown) => this.handlerDone(delivery, true, error),
      );
    } else {
      this.handlerDone(delivery, false, undefined);
    }
  }

  private handlerDone(delivery: Delivery, failed: boolean, error: unknown): void {
    const id = delivery.message.id;
    if (this.runningIds.get(id) === delivery) this.runningIds.delete(id);
    if (failed) this.fail(delivery, delivery.message, error, false);
    else this.finish(delivery);
    this.release(id);
  }

  /** The handler of `id` ended: deliveries of it held meanwhile go on (one runs, the next waits again). */
  private release(id: string): void {
    const list = this.held.get(id);
    if (!list) return;
    this.held.delete(id);
    for (const delivery of list) {
      if (delivery.state !== 'running') continue;
      if (!delivery.gen.alive) {
        // Its channel is gone too: the broker delivers it again.
        delivery.state = 'settled';
        continue;
      }
      this.dispatch(delivery);
    }
  }

  /** See {@link Outcome}. */
  private remember(delivery: Delivery, failed: boolean, error: unknown): void {
    const { message } = delivery;
    if (delivery.invalidBody !== undefined) return;
    this.outcomes.delete(message.id);
    this.outcomes.set(message.id, {
      attempt: message.attempt,
      publishedAtMs: message.publishedAt.getTime(),
      failed,
      error,
    });
    if (this.outcomes.size > MAX_OUTCOMES) {
      const oldest = this.outcomes.keys().next().value;
      if (oldest !== undefined) this.outcomes.delete(oldest);
    }
  }

  /** A retry of what `unregister` removed, back from a delay queue after the kind was registered again. */
  private isStaleRetry(message: Message): boolean {
    const since = this.spec.unregisteredAt;
    return since !== undefined && message.attempt > 1 && message.publishedAt.getTime() < since;
  }

  private handlerEnded(delivery: Delivery): void {
    if (!delivery.active) return;
    delivery.active = false;
    this.running--;
    const gen = delivery.gen;
    gen.running--;
    if (!gen.alive) {
      // A prefetch slot held by a lost channel is free: the current channel may take it.
      this.oldRunning--;
      if (this.gen?.alive) this.topUp(this.gen).catch(() => {});
    }
    if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
  }

  private finish(delivery: Delivery): void {
    if (delivery.state !== 'running') return;
    const gen = delivery.gen;
    if (!gen.alive) {
      // Done (handled, or its retry published) but the ack cannot be sent: settle the redelivery.
      delivery.state = 'settled';
      this.remember(delivery, false, undefined);
      this.handlerEnded(delivery);
      return;
    }
    this.handlerEnded(delivery);
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
      this.kill(gen);
    }
  }

  /** Republishes a failed message for a retry (attempt + 1) or to the dead letters, then acknowledges it. */
  private fail(delivery: Delivery, message: Message, error: unknown, final: boolean): void {
    if (delivery.state !== 'running') return;
    if (!delivery.gen.alive) {
      // The failure cannot be recorded on a lost channel: settle the redelivery with it.
      delivery.state = 'settled';
      this.remember(delivery, true, error);
      this.handlerEnded(delivery);
      return;
    }
    const text = errorText(error).slice(0, MAX_ERROR_HEADER);
    const dead = final || message.attempt >= this.spec.maxAttempts;
    const work = dead ? this.toDeadLetters(delivery, message, text) : this.toRetry(delivery, message, text);
    work.then(
      () => this.finish(delivery),
      (publishError: unknown) => {
        if (delivery.state !== 'running') return;
        if (!delivery.gen.alive) this.remember(delivery, true, error);
        this.handlerEnded(delivery);
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
    // 1. Stop fetching (after a consumer being added, if any: `closing` stops further ones).
    if (gen) await gen.chain;
    if (gen?.alive) {
      for (const tag of gen.tags) await gen.channel.cancel(tag).catch(() => {});
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
      this.kill(gen);
      if (this.spec.deleteOnClose) await gen.channel.deleteQueue(this.spec.queue).catch(() => {});
      await gen.channel.close().catch(() => {});
    } else if (this.spec.deleteOnClose && this.ctx.link.current) {
      await this.ctx.link.declare((d) => d.channel.deleteQueue(this.spec.queue)).catch(() => {});
    }
    this.gen = undefined;
    this.held.clear();
    this.outcomes.clear();
    this.ctx.forget(this);
  }
}
