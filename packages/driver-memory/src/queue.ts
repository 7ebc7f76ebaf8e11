import { type DeadLetter, type DeliverySink, Deque, type Message, type SubscriptionTransport } from '@mq-drivers/core';

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

/**
 * A consumer attached to a queue: the transport of one subscription. The queue hands it messages
 * while the engine has capacity; acks, retries, dead letters and hand-backs go back to the queue.
 */
export class QueueTransport implements SubscriptionTransport<Envelope> {
  private sink: DeliverySink<Envelope> | undefined;

  constructor(readonly queue: Queue) {}

  get hasCapacity(): boolean {
    return (this.sink?.capacity ?? 0) > 0;
  }

  start(sink: DeliverySink<Envelope>): void {
    this.sink = sink;
    sink.onCapacity(() => this.queue.dispatch());
    this.queue.attach(this);
  }

  deliver(envelope: Envelope): void {
    this.sink?.deliver(envelope);
  }

  ack(envelope: Envelope): void {
    this.queue.onDone?.(envelope);
  }

  retry(envelope: Envelope, delayMs: number): void {
    this.queue.retryLater(envelope, delayMs);
  }

  deadLetter(envelope: Envelope, error: string): void {
    this.queue.deadLetter(envelope, error);
  }

  handBack(envelope: Envelope): void {
    this.queue.handBack(envelope);
  }

  stop(): void {
    this.queue.detach(this);
  }

  close(): void {
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
  private readonly consumers: QueueTransport[] = [];
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

  attach(consumer: QueueTransport): void {
    this.consumers.push(consumer);
    this.dispatch();
  }

  detach(consumer: QueueTransport): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
  }

  /** Put back at the head: a handed-back message is the oldest outstanding one. No attempt is counted. */
  handBack(envelope: Envelope): void {
    if (!this.deleted) this.ready.unshift(envelope);
  }

  deadLetter(envelope: Envelope, error: string): void {
    if (this.deleted) return;
    this.deadLetters.push({ envelope, error, failedAt: new Date() });
    this.onDone?.(envelope);
  }

  retryLater(envelope: Envelope, delayMs: number): void {
    if (this.deleted) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.enqueue({ ...envelope, attempt: envelope.attempt + 1 });
    }, delayMs);
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

  private nextWithCapacity(): QueueTransport | undefined {
    const count = this.consumers.length;
    for (let i = 0; i < count; i++) {
      const consumer = this.consumers[(this.next + i) % count] as QueueTransport;
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
