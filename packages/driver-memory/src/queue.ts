import { type BackoffOptions, backoffDelay, type DeadLetter, errorText, type Handler, type Message } from '@mq-drivers/core';
import { Deque } from './deque.js';

/** A message as the broker stores it: the body stays JSON so every delivery gets its own copy. */
export interface Envelope {
  readonly id: string;
  readonly json: string;
  readonly segment: string;
  /** Published topic for shares, kind for tasks. */
  readonly topic: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly publishedAt: Date;
  /** Position in the segment's share history (shares only); drives cursors. */
  readonly seq: number | undefined;
  readonly attempt: number;
}

export interface StoredDeadLetter {
  envelope: Envelope;
  error: string;
  failedAt: Date;
}

function toMessage(envelope: Envelope): Message {
  return Object.freeze({
    id: envelope.id,
    body: JSON.parse(envelope.json),
    segment: envelope.segment,
    topic: envelope.topic,
    publishedAt: new Date(envelope.publishedAt.getTime()),
    attempt: envelope.attempt,
    headers: Object.freeze({ ...envelope.headers }),
  });
}

export function toDeadLetter(stored: StoredDeadLetter): DeadLetter {
  return Object.freeze({ message: toMessage(stored.envelope), error: stored.error, failedAt: new Date(stored.failedAt) });
}

/** One delivery in progress. `handedBack` is set when close gave the message back; its outcome is then ignored. */
interface Delivery {
  envelope: Envelope;
  handedBack: boolean;
}

/**
 * A consumer attached to a queue: at most `prefetch` handlers at once. The queue hands it
 * messages; it reports acks and failures back. Close detaches it first, so nothing new arrives.
 */
export class Consumer {
  readonly inFlight = new Set<Delivery>();
  closed = false;
  private drained: (() => void) | undefined;

  constructor(
    readonly queue: Queue,
    private readonly handler: Handler,
    readonly prefetch: number,
    readonly maxAttempts: number,
    /** Redelivery delays of the driver that opened this consumer. */
    private readonly backoff: BackoffOptions,
  ) {}

  get hasCapacity(): boolean {
    return !this.closed && this.inFlight.size < this.prefetch;
  }

  deliver(envelope: Envelope): void {
    const delivery: Delivery = { envelope, handedBack: false };
    this.inFlight.add(delivery);
    // Run the handler on a later tick: a publish never runs user code inside its own call.
    queueMicrotask(() => {
      let outcome: unknown;
      try {
        outcome = this.handler(toMessage(envelope));
      } catch (error) {
        this.settle(delivery, error, true);
        return;
      }
      Promise.resolve(outcome).then(
        () => this.settle(delivery, undefined, false),
        (error: unknown) => this.settle(delivery, error, true),
      );
    });
  }

  private settle(delivery: Delivery, error: unknown, failed: boolean): void {
    if (delivery.handedBack) return; // close gave it back already; another consumer owns it now
    this.inFlight.delete(delivery);
    if (failed) this.queue.fail(delivery.envelope, error, this.maxAttempts, this.backoff);
    else this.queue.onDone?.(delivery.envelope);
    if (this.inFlight.size === 0) this.drained?.();
    this.queue.dispatch();
  }

  /** Stops receiving, waits for in-flight handlers up to the deadline, hands the rest back. */
  async close(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.detach(this);
    if (this.inFlight.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const unfinished = [...this.inFlight].reverse();
    this.inFlight.clear();
    for (const delivery of unfinished) {
      delivery.handedBack = true;
      this.queue.handBack(delivery.envelope);
    }
    this.queue.dispatch();
  }
}

/**
 * A queue: a task kind's queue or a share subscription's queue. Consumers on one queue compete;
 * delivery goes round-robin to consumers with free prefetch.
 */
export class Queue {
  readonly ready = new Deque<Envelope>();
  readonly deadLetters: StoredDeadLetter[] = [];
  private readonly consumers: Consumer[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private next = 0;
  private dispatching = false;
  deleted = false;
  /** Called when a message leaves the queue for good (acked or dead-lettered), e.g. to move a cursor. */
  onDone: ((envelope: Envelope) => void) | undefined;

  constructor(readonly name: string) {}

  get consumerCount(): number {
    return this.consumers.length;
  }

  /** Messages waiting for a consumer: ready ones plus failed ones waiting for their retry. */
  get waiting(): number {
    return this.ready.length + this.timers.size;
  }

  enqueue(envelope: Envelope): void {
    this.ready.push(envelope);
    this.dispatch();
  }

  attach(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.dispatch();
  }

  detach(consumer: Consumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
  }

  /** Put back at the head: a handed-back message is the oldest outstanding one. No attempt is counted. */
  handBack(envelope: Envelope): void {
    if (!this.deleted) this.ready.unshift(envelope);
  }

  fail(envelope: Envelope, error: unknown, maxAttempts: number, backoff: BackoffOptions): void {
    if (this.deleted) return;
    if (envelope.attempt >= maxAttempts) {
      this.deadLetters.push({ envelope, error: errorText(error), failedAt: new Date() });
      this.onDone?.(envelope);
      return;
    }
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        this.enqueue({ ...envelope, attempt: envelope.attempt + 1 });
      },
      backoffDelay(envelope.attempt, backoff),
    );
    timer.unref?.();
    this.timers.add(timer);
  }

  dispatch(): void {
    if (this.dispatching) return; // re-entrant calls are covered by the running loop
    this.dispatching = true;
    try {
      while (this.ready.length > 0) {
        const consumer = this.nextWithCapacity();
        if (!consumer) return;
        consumer.deliver(this.ready.shift() as Envelope);
      }
    } finally {
      this.dispatching = false;
    }
  }

  private nextWithCapacity(): Consumer | undefined {
    const count = this.consumers.length;
    for (let i = 0; i < count; i++) {
      const consumer = this.consumers[(this.next + i) % count] as Consumer;
      if (consumer.hasCapacity) {
        this.next = (this.next + i + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  /** Drops everything (an ephemeral subscription going away, or an unregistered one). */
  delete(): void {
    this.deleted = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.ready.clear();
  }
}
