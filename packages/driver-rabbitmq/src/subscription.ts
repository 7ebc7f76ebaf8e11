import {
  anyTopicMatches,
  backoffDelay,
  type DeliverySink,
  Deque,
  errorText,
  MqError,
  PublishError,
  type Received,
  type SubscriptionTransport,
  TopologyError,
} from '@mq-drivers/core';
import type { Channel, ConsumeMessage } from 'amqplib';
import { Declarer, type Link } from './link.js';
import { DRIVER_NAME, type ResolvedOptions } from './options.js';
import type { Publisher } from './publisher.js';
import { delayBucket, delayExchange, H, type Topology } from './topology.js';
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
  /** An ephemeral share subscription: its dead-letter queue expires, its queue is deleted on close. */
  ephemeral: boolean;
  /**
   * When this driver unregistered the queue (ms since the epoch): retries of messages published
   * before then may still come back from the shared delay queues, and are dropped unseen.
   */
  unregisteredAt: number | undefined;
  /** Declares exchange, queue and bindings on the given channel. */
  declare(declarer: Declarer): Promise<void>;
}

/** Driver services a subscription uses. */
export interface SubscriptionContext {
  link: Link;
  publisher: Publisher;
  topology: Topology;
  options: ResolvedOptions;
}

/**
 * Where a delivery stands for its channel: `open` while the engine holds it, `busy` while its
 * retry or dead letter is being published, `done` while its ack waits for the next flush,
 * `settled` once acknowledged or handed back (or its channel is gone).
 */
type State = 'open' | 'busy' | 'done' | 'settled';

/** A received message (what the engine sees) plus what acknowledging it takes. */
interface AmqpReceived extends Received {
  readonly msg: ConsumeMessage;
  readonly gen: Generation;
  state: State;
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
  /** Deliveries of this channel the engine holds (open or busy). */
  held: number;
  /** Unsettled deliveries in delivery-tag order. */
  inflight: Deque<AmqpReceived>;
  /** Deliveries whose ack waits for the next flush. */
  acks: AmqpReceived[];
  flushScheduled: boolean;
  /** Serializes `basic.qos` + `basic.consume` pairs (a qos applies to the next consume). */
  chain: Promise<void>;
}

const MAX_ERROR_HEADER = 16 * 1024;
/** Resolved messages remembered for redeliveries that may never come (another consumer took them). */
const MAX_RESOLVED = 10_000;

/**
 * The RabbitMQ transport of one subscription; core's engine (`consume`) runs the handlers and
 * decides every outcome. This class moves messages: it consumes on a channel, acknowledges in
 * runs (consecutive finished deliveries with one `basic.ack(multiple)`, never past one still
 * held), publishes retries to a delay queue and dead letters to the dead-letter queue (with
 * publisher confirms, then acknowledges the original), and hands back with `basic.nack`.
 *
 * `prefetch` bounds the broker's unacknowledged window across reconnects: handlers of a lost
 * channel keep their slots in the engine, so a new channel's consumers take only what they leave
 * free, and a consumer is added for the rest as they finish. Deliveries of a lost channel are
 * voided (the engine settles the broker's next copy with the outcome of the run it has seen);
 * a message whose outcome was already carried out but whose ack was lost with the channel is
 * remembered here, and the broker's copy of it is acknowledged unseen.
 */
export class RabbitTransport implements SubscriptionTransport<AmqpReceived> {
  private sink: DeliverySink<AmqpReceived> | undefined;
  private gen: Generation | undefined;
  private closing = false;
  /** Messages (id → attempt) whose outcome was carried out but whose ack was lost with its channel. */
  private readonly resolved = new Map<string, number>();
  /** Deliveries whose retry or dead letter is being published, by message id. */
  private readonly publishing = new Map<string, AmqpReceived>();
  /** The broker's copy of such a delivery whose channel is gone: it waits for that publish to end. */
  private readonly parked = new Map<string, AmqpReceived>();
  private restartTimer: NodeJS.Timeout | undefined;
  private restartAttempt = 0;
  /** A generation is being started: resume() must not start a second one. */
  private starting: Promise<void> | undefined;

  constructor(
    private readonly spec: SubscriptionSpec,
    private readonly ctx: SubscriptionContext,
  ) {}

  /** The queue it consumes. */
  get queue(): string {
    return this.spec.queue;
  }

  /** Declares the topology and starts consuming; errors go to the caller. */
  async start(sink: DeliverySink<AmqpReceived>): Promise<void> {
    this.sink = sink;
    sink.onCapacity(() => {
      const gen = this.gen;
      if (gen?.alive && this.free(gen) > 0) this.topUp(gen).catch(() => {});
    });
    await this.startGeneration();
  }

  private async startGeneration(): Promise<void> {
    this.starting = this.startChannel();
    try {
      await this.starting;
    } finally {
      this.starting = undefined;
    }
  }

  private async startChannel(): Promise<void> {
    const channel = await this.ctx.link.channel();
    const gen: Generation = {
      channel,
      tags: [],
      limit: 0,
      alive: false,
      held: 0,
      inflight: new Deque(),
      acks: [],
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
   * Prefetch slots this channel may still take: `prefetch` minus what the engine holds of lost
   * channels (its load minus this channel's deliveries) minus what this channel's consumers
   * already take. With capacity = prefetch - load, that is capacity + held - limit.
   */
  private free(gen: Generation): number {
    return (this.sink?.capacity ?? 0) + gen.held - gen.limit;
  }

  /** Adds a consumer for the free slots. Serialized per channel. Rejects when the channel fails (`onChannelClose` restarts). */
  private topUp(gen: Generation): Promise<void> {
    const work = gen.chain.then(() => this.addConsumer(gen));
    gen.chain = work.catch(() => {});
    return work;
  }

  private async addConsumer(gen: Generation): Promise<void> {
    const free = this.free(gen);
    if (!gen.alive || this.closing || free <= 0) return;
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

  /** The generation is gone: the broker requeues its deliveries, and their acks would mean nothing. */
  private kill(gen: Generation): void {
    if (!gen.alive) return;
    gen.alive = false;
    for (const d of gen.acks) {
      if (d.state !== 'done') continue;
      d.state = 'settled';
      this.remember(d); // its outcome is carried out but its ack never went out: settle the broker's copy unseen
    }
    gen.acks = [];
    for (let d = gen.inflight.shift(); d !== undefined; d = gen.inflight.shift()) {
      if (d.state !== 'open') continue; // a busy one finds its channel gone when its publish ends
      d.state = 'settled';
      this.sink?.void(d);
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
        this.restartLater();
      });
    }, delayMs);
  }

  private restartLater(): void {
    this.restartAttempt++;
    this.scheduleRestart(backoffDelay(this.restartAttempt, this.ctx.options.reconnectBackoff));
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
    if (wasAlive && !this.closing && this.ctx.link.current) this.restartLater();
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
    this.restartLater();
  }

  private onMessage(gen: Generation, msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.onCancelled(gen);
      return;
    }
    if (!gen.alive) return;
    const delivery = decode(msg, this.spec.segment, this.spec.fixedTopic, { msg, gen, state: 'open' as State });
    gen.inflight.push(delivery);
    const original = this.publishing.get(delivery.id);
    if (original?.attempt === delivery.attempt && !original.gen.alive && !this.parked.has(delivery.id)) {
      this.parked.set(delivery.id, delivery); // settled unseen if that publish succeeds, delivered if not
      return;
    }
    this.admit(delivery);
  }

  private admit(delivery: AmqpReceived): void {
    if (delivery.state !== 'open' || !delivery.gen.alive) return;
    if (this.unseen(delivery)) {
      this.queueAck(delivery);
      return;
    }
    delivery.gen.held++;
    this.sink?.deliver(delivery);
  }

  /**
   * True for a delivery that is acknowledged without reaching the engine: the broker's copy of a
   * message already resolved here, a retry of what `unregister` removed (back from a delay queue
   * after the kind was registered again), or a share routed by a binding this subscription no
   * longer has (a named subscription re-opened with other topics).
   */
  private unseen(d: AmqpReceived): boolean {
    if (d.msg.fields.redelivered && this.resolved.get(d.id) === d.attempt) {
      this.resolved.delete(d.id);
      return true;
    }
    const since = this.spec.unregisteredAt;
    if (since !== undefined && d.attempt > 1 && d.publishedAt.getTime() < since) return true;
    return this.spec.patterns !== undefined && !anyTopicMatches(this.spec.patterns, d.topic);
  }

  /** See {@link resolved}. */
  private remember(d: AmqpReceived): void {
    this.resolved.delete(d.id);
    this.resolved.set(d.id, d.attempt);
    if (this.resolved.size > MAX_RESOLVED) this.resolved.delete(this.resolved.keys().next().value as string);
  }

  /** The engine let go of `d` (an outcome was carried out or handed back). */
  private release(d: AmqpReceived): void {
    if (d.state === 'open' || d.state === 'busy') d.gen.held--;
  }

  /** Resolves once the ack is queued: the next flush sends it. */
  ack(d: AmqpReceived): void {
    this.release(d);
    this.queueAck(d);
  }

  private queueAck(d: AmqpReceived): void {
    if (d.state === 'settled' || d.state === 'done') return;
    const gen = d.gen;
    if (!gen.alive) {
      // Its outcome is carried out but its ack cannot be sent: settle the broker's copy unseen.
      d.state = 'settled';
      this.remember(d);
      return;
    }
    d.state = 'done';
    gen.acks.push(d);
    if (!gen.flushScheduled) {
      gen.flushScheduled = true;
      setImmediate(() => this.flush(gen));
    }
  }

  /** Sends the queued acks: the run at the head of the channel with one multiple-ack, the rest one by one. */
  private flush(gen: Generation): void {
    gen.flushScheduled = false;
    if (!gen.alive) return;
    let last: AmqpReceived | undefined;
    for (let d = gen.inflight.peekFirst(); d && d.state !== 'open' && d.state !== 'busy'; d = gen.inflight.peekFirst()) {
      gen.inflight.shift();
      if (d.state === 'done') last = d;
    }
    const lastTag = last?.msg.fields.deliveryTag ?? -1;
    try {
      if (last) gen.channel.ack(last.msg, true);
      for (const d of gen.acks) {
        if (d.state !== 'done') continue;
        if (d.msg.fields.deliveryTag > lastTag) gen.channel.ack(d.msg, false);
        d.state = 'settled';
      }
      gen.acks = [];
    } catch {
      // amqplib throws once the channel or connection is closing; the broker requeues by itself.
      this.kill(gen);
    }
  }

  retry(d: AmqpReceived, delayMs: number, error: string): Promise<void> {
    const bucket = delayBucket(delayMs);
    const { topology, options } = this.ctx;
    return this.republish(d, 'schedule the retry of', () => topology.delay(bucket), delayExchange(options.prefix, bucket), {
      [H.attempt]: d.attempt + 1,
      [H.error]: error.slice(0, MAX_ERROR_HEADER),
    });
  }

  deadLetter(d: AmqpReceived, error: string): Promise<void> {
    let text = error;
    try {
      JSON.parse(d.json as string);
    } catch {
      text = `body is not valid JSON (${error})`; // the engine ran no handler: the body did not parse
    }
    const { spec, ctx } = this;
    return this.republish(d, 'dead-letter', () => ctx.topology.deadQueue(spec.deadQueue, spec.ephemeral), '', {
      [H.attempt]: d.attempt,
      [H.error]: text.slice(0, MAX_ERROR_HEADER),
      [H.failedAt]: Date.now(),
    });
  }

  /**
   * Publishes a copy of `d` (to a delay exchange, or to the dead-letter queue through the default
   * exchange) with publisher confirms, then acknowledges `d`. When the publish fails, `d` is
   * handed back to its queue and the error goes to the engine (which reports it). A copy the
   * broker redelivered meanwhile (the channel of `d` went) waits for the publish: once it
   * succeeded that copy is acknowledged unseen, never run or retried again.
   */
  private async republish(
    d: AmqpReceived,
    what: string,
    declare: () => Promise<void>,
    exchange: string,
    reserved: Record<string, string | number>,
  ): Promise<void> {
    d.state = 'busy';
    this.publishing.set(d.id, d);
    const publishedAtMs = d.publishedAt.getTime();
    let failure: { error: unknown } | undefined;
    try {
      await declare();
      await this.ctx.publisher.publish({
        exchange,
        exchangeType: exchange === '' ? undefined : 'fanout',
        routingKey: exchange === '' ? this.spec.deadQueue : this.spec.queue,
        content: d.msg.content,
        properties: publishProperties({
          id: d.id,
          publishedAtMs,
          headers: d.headers,
          reserved: this.spec.kind === 'share' ? { [H.topic]: d.topic, ...reserved } : reserved,
        }),
        publishedAtMs,
        mandatory: true,
        id: d.id,
      });
    } catch (error) {
      failure = { error };
    }
    if (this.publishing.get(d.id) === d) this.publishing.delete(d.id);
    if (failure) this.handBack(d);
    else this.ack(d);
    this.unpark(d.id);
    if (failure) {
      throw new PublishError({
        driver: DRIVER_NAME,
        message: `could not ${what} message ${d.id} of ${this.describe()}; handing it back to the queue: ${errorText(failure.error)}`,
        messageId: d.id,
        cause: failure.error,
      });
    }
  }

  /** The publish for `id` ended: its parked copy is acknowledged unseen if it was resolved, else delivered. */
  private unpark(id: string): void {
    const copy = this.parked.get(id);
    if (!copy) return;
    this.parked.delete(id);
    this.admit(copy);
  }

  handBack(d: AmqpReceived): void {
    this.release(d);
    if (d.state === 'settled') return;
    d.state = 'settled';
    if (!d.gen.alive) return;
    try {
      d.gen.channel.nack(d.msg, false, true);
    } catch {
      this.kill(d.gen);
    }
  }

  /** Stops fetching (after a consumer being added, if any: `closing` stops further ones). */
  async stop(): Promise<void> {
    this.closing = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.starting?.catch(() => {});
    const gen = this.gen;
    if (!gen) return;
    await gen.chain;
    if (gen.alive) for (const tag of gen.tags) await gen.channel.cancel(tag).catch(() => {});
  }

  /** Everything is settled or handed back: sends the last acks and closes the channel. */
  async close(): Promise<void> {
    const gen = this.gen;
    this.gen = undefined;
    if (gen?.alive) {
      this.flush(gen);
      this.kill(gen);
      if (this.spec.ephemeral) await gen.channel.deleteQueue(this.spec.queue).catch(() => {});
      await gen.channel.close().catch(() => {});
    } else if (this.spec.ephemeral && this.ctx.link.current) {
      await this.ctx.link.declare((d) => d.channel.deleteQueue(this.spec.queue)).catch(() => {});
    }
    this.resolved.clear();
    this.parked.clear();
  }
}
