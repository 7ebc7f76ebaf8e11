import { Deque, DriverClosedError, MqError, PublishError } from '@mq-drivers/core';
import type { Message as AmqpMessage, ConfirmChannel, Options } from 'amqplib';
import type { Link } from './link.js';
import { DRIVER_NAME, type ResolvedOptions } from './options.js';
import type { Topology } from './topology.js';
import { PlainProperties } from './wire.js';

/** One message on its way to the broker. It settles exactly once: confirmed, refused or timed out. */
export interface Outgoing {
  exchange: string;
  /** Declared (durably) before the first send on each connection; undefined for the default exchange. */
  exchangeType: 'fanout' | 'topic' | undefined;
  routingKey: string;
  content: Buffer;
  /**
   * The AMQP properties; undefined for a plain publish (no user headers, no extra reserved
   * headers), whose properties the publisher fills from `id` and `publishedAtMs` at send time.
   */
  properties: Options.Publish | undefined;
  /** Publish time in ms; read only when `properties` is undefined. */
  publishedAtMs: number;
  /** Unroutable → the broker returns it and the publish rejects (used for retries and redrives). */
  mandatory: boolean;
  id: string;
}

/** A publish in flight. A class (not the caller's object grown by six fields) keeps one fixed shape and one allocation. */
class Entry implements Outgoing {
  readonly exchange: string;
  readonly exchangeType: 'fanout' | 'topic' | undefined;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly properties: Options.Publish | undefined;
  readonly publishedAtMs: number;
  readonly mandatory: boolean;
  readonly id: string;
  settled = false;
  returned = false;
  sentOn: ConfirmChannel | undefined = undefined;

  constructor(
    outgoing: Outgoing,
    readonly resolve: (receipt: { id: string }) => void,
    readonly reject: (error: unknown) => void,
    readonly deadline: number,
  ) {
    this.exchange = outgoing.exchange;
    this.exchangeType = outgoing.exchangeType;
    this.routingKey = outgoing.routingKey;
    this.content = outgoing.content;
    this.properties = outgoing.properties;
    this.publishedAtMs = outgoing.publishedAtMs;
    this.mandatory = outgoing.mandatory;
    this.id = outgoing.id;
  }
}

/**
 * Sends every message on one confirm channel and settles each publish from the broker's acks
 * (which RabbitMQ batches with `multiple`). Back-pressure: once amqplib's write buffer is full
 * (`publish` returns false) nothing more is written until `drain`. Unconfirmed messages of a
 * lost channel are sent again on the next one (at-least-once); nothing resolves without an ack,
 * and everything left unconfirmed at its deadline rejects with `PublishError`.
 */
export class Publisher {
  private channel: ConfirmChannel | undefined;
  private opening = false;
  private draining = false;
  private waiting = new Deque<Entry>();
  /** Sent on a channel that closed before confirming: sent again first, in order. */
  private lost: Entry[] = [];
  private readonly pending = new Set<Entry>();
  /** Exchanges being declared for messages waiting in `waiting`. */
  private readonly declaring = new Set<string>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private reopenDelay = 0;
  private idleWaiters: Array<() => void> = [];
  /** Sent mandatory entries by message id, to match basic.return. */
  private readonly mandatorySent = new Map<string, Entry[]>();
  /** Reused for every plain publish: amqplib encodes properties synchronously in `publish`. */
  private readonly plain = new PlainProperties();

  constructor(
    private readonly link: Link,
    private readonly topology: Topology,
    private readonly options: ResolvedOptions,
  ) {}

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Resolves with `{id}` once the broker confirmed the message. */
  publish(outgoing: Outgoing): Promise<{ id: string }> {
    if (this.closed) return Promise.reject(new DriverClosedError({ driver: DRIVER_NAME }));
    return new Promise<{ id: string }>((resolve, reject) => {
      const entry = new Entry(outgoing, resolve, reject, Date.now() + this.options.publishTimeoutMs);
      this.pending.add(entry);
      this.waiting.push(entry);
      this.startSweep();
      this.flush();
    });
  }

  /** A new connection (the topology cache was emptied): send what waits. */
  onConnectionOpen(): void {
    this.flush();
  }

  private settle(entry: Entry, error?: unknown): void {
    if (entry.settled) return;
    entry.settled = true;
    this.pending.delete(entry);
    if (entry.mandatory) this.forgetMandatory(entry);
    if (error === undefined) entry.resolve({ id: entry.id });
    else entry.reject(error);
    if (this.pending.size === 0) {
      for (const waiter of this.idleWaiters.splice(0)) waiter();
    }
  }

  private flush(): void {
    if (this.closed && this.pending.size === 0) return;
    if (!this.channel) {
      this.open();
      return;
    }
    for (let entry = this.lost.pop(); entry; entry = this.lost.pop()) this.waiting.unshift(entry);
    while (!this.draining && this.channel) {
      const entry = this.waiting.peekFirst();
      if (!entry) break;
      if (entry.settled) {
        this.waiting.shift();
        continue;
      }
      if (entry.exchangeType && !this.topology.hasExchange(entry.exchange)) {
        this.declareExchange(entry.exchange, entry.exchangeType);
        break;
      }
      this.waiting.shift();
      this.send(entry, this.channel);
    }
  }

  private declareExchange(name: string, type: 'fanout' | 'topic'): void {
    if (this.declaring.has(name)) return;
    this.declaring.add(name);
    this.topology.exchange(name, type, this.options.publishTimeoutMs).then(
      () => {
        this.declaring.delete(name);
        this.flush();
      },
      (error: unknown) => {
        this.declaring.delete(name);
        // The exchange cannot be declared (incompatible, refused, unreachable): fail what waits for it.
        const waiting = this.waiting;
        this.waiting = new Deque();
        for (let entry = waiting.shift(); entry; entry = waiting.shift()) {
          if (entry.exchange === name) this.settle(entry, error);
          else this.waiting.push(entry);
        }
        this.flush();
      },
    );
  }

  private send(entry: Entry, channel: ConfirmChannel): void {
    entry.sentOn = channel;
    entry.returned = false;
    let ok: boolean;
    try {
      const base = entry.properties ?? this.plain.fill(entry.id, entry.publishedAtMs);
      const properties = entry.mandatory ? { ...base, mandatory: true } : base;
      ok = channel.publish(entry.exchange, entry.routingKey, entry.content, properties, (error: unknown) =>
        this.confirmed(entry, channel, error),
      );
    } catch (error) {
      entry.sentOn = undefined;
      if (error instanceof RangeError) {
        this.settle(entry, new PublishError({ driver: DRIVER_NAME, message: error.message, messageId: entry.id, cause: error }));
        return;
      }
      // The channel is closing: keep the message for the next one.
      this.lost.push(entry);
      return;
    }
    if (entry.mandatory) {
      const list = this.mandatorySent.get(entry.id);
      if (list) list.push(entry);
      else this.mandatorySent.set(entry.id, [entry]);
    }
    if (!ok) {
      this.draining = true;
      channel.once('drain', () => {
        if (this.channel !== channel) return;
        this.draining = false;
        this.flush();
      });
    }
  }

  private confirmed(entry: Entry, channel: ConfirmChannel, error: unknown): void {
    if (entry.settled || entry.sentOn !== channel) return;
    if (error === null || error === undefined) {
      this.reopenDelay = 0;
      if (entry.returned) {
        this.settle(
          entry,
          new PublishError({
            driver: DRIVER_NAME,
            message: `message ${entry.id} was returned as unroutable by exchange "${entry.exchange}" (routing key "${entry.routingKey}")`,
            messageId: entry.id,
          }),
        );
      } else {
        this.settle(entry);
      }
      return;
    }
    if ((error as Error).message === 'message nacked') {
      this.settle(
        entry,
        new PublishError({
          driver: DRIVER_NAME,
          message: `broker refused message ${entry.id} (basic.nack)`,
          messageId: entry.id,
          cause: error,
        }),
      );
      return;
    }
    // Channel closed before the confirm: the broker may or may not have it. Send it again.
    entry.sentOn = undefined;
    if (entry.mandatory) this.forgetMandatory(entry);
    this.lost.push(entry);
  }

  private onReturn(message: AmqpMessage): void {
    const id = message.properties.messageId as string | undefined;
    if (!id) return;
    const list = this.mandatorySent.get(id);
    const entry = list?.find((e) => !e.returned && e.routingKey === message.fields.routingKey);
    if (entry) entry.returned = true;
  }

  private forgetMandatory(entry: Entry): void {
    const list = this.mandatorySent.get(entry.id);
    if (!list) return;
    const index = list.indexOf(entry);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.mandatorySent.delete(entry.id);
  }

  private open(): void {
    if (this.opening || this.channel) return;
    this.opening = true;
    const delay = this.reopenDelay;
    const start = () => {
      this.link
        .whenOpen()
        .then(
          (model) => model.createConfirmChannel(),
          (error: unknown) => {
            // Terminal (first connect failed, driver closed, injected connection gone): fail everything waiting.
            this.opening = false;
            this.failAll(error);
            return undefined;
          },
        )
        .then(
          (channel) => {
            if (!channel) return;
            this.opening = false;
            if (this.closed && this.pending.size === 0) {
              channel.close().catch(() => {});
              return;
            }
            this.attach(channel);
          },
          () => {
            // createConfirmChannel failed: the connection is going away; try again after a pause.
            this.opening = false;
            this.reopenDelay = Math.min(1_000, Math.max(20, this.reopenDelay * 2));
            if (this.pending.size > 0) this.open();
          },
        );
    };
    if (delay > 0) setTimeout(start, delay).unref();
    else start();
  }

  private attach(channel: ConfirmChannel): void {
    this.channel = channel;
    this.draining = false;
    channel.on('error', (error: Error) => {
      this.options.onError(
        new MqError({ driver: DRIVER_NAME, message: `the broker closed the publishing channel: ${error.message}`, cause: error }),
      );
    });
    channel.on('return', (message: AmqpMessage) => this.onReturn(message));
    channel.on('close', () => {
      if (this.channel !== channel) return;
      this.channel = undefined;
      this.draining = false;
      // A channel error (e.g. an exchange deleted under us) or a lost connection: declare again.
      this.topology.reset();
      this.reopenDelay = Math.min(1_000, Math.max(10, this.reopenDelay * 2));
      if (this.pending.size > 0 && !this.link.isClosed) this.open();
    });
    this.flush();
  }

  private failAll(error: unknown): void {
    const mapped = error as MqError;
    for (let entry = this.waiting.shift(); entry; entry = this.waiting.shift()) this.settle(entry, mapped);
    for (const entry of this.lost.splice(0)) this.settle(entry, mapped);
    for (const entry of [...this.pending]) {
      if (!entry.sentOn) this.settle(entry, mapped);
    }
  }

  private startSweep(): void {
    if (this.sweepTimer) return;
    const every = Math.min(1_000, Math.max(10, Math.floor(this.options.publishTimeoutMs / 20)));
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    const now = Date.now();
    // Deadlines grow with insertion order, so stop at the first one still in time.
    for (const entry of this.pending) {
      if (entry.deadline > now) break;
      this.settle(
        entry,
        new PublishError({
          driver: DRIVER_NAME,
          message: `message ${entry.id} was not confirmed by the broker within ${this.options.publishTimeoutMs} ms${
            this.link.lastError && !this.channel ? ` (${this.link.lastError.message})` : ''
          }; it may or may not have been stored`,
          messageId: entry.id,
          cause: this.link.lastError,
        }),
      );
    }
    if (this.pending.size === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  /** Waits for every pending publish to settle (each has its own deadline), then closes the channel. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.pending.size > 0) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    const channel = this.channel;
    this.channel = undefined;
    if (channel) await channel.close().catch(() => {});
  }

  /** After the link closed: nothing can be confirmed any more. */
  abort(error: unknown): void {
    for (const entry of [...this.pending]) this.settle(entry, error);
  }
}
