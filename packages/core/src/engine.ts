/**
 * The delivery engine: the at-least-once policy of the contract, written once for every driver.
 * A driver gives `consume()` a transport (`transport.ts`) and gets a running `Subscription`.
 */
import { type BackoffOptions, backoffDelay } from './backoff.js';
import type { CloseOptions, Handler, JsonValue, Message, Subscription } from './contract.js';
import { Deque } from './deque.js';
import { errorText, prepareCloseOptions } from './prepare.js';
import type { DeliverySink, Received, SubscriptionTransport } from './transport.js';

export interface ConsumeSettings {
  /** The driver's name, for errors. */
  driver: string;
  /** The subscription's name: the kind for tasks, the subscription name for shares. */
  name: string;
  handler: Handler;
  /** Handlers running at once, at most. */
  prefetch: number;
  /** Deliveries of a failing message before it is dead-lettered. */
  maxAttempts: number;
  /** Delay before a failed message comes back. */
  backoff: BackoffOptions;
  /** A transport operation failed (the broker redelivers the message); for the driver's logging. */
  onError?: (error: unknown) => void;
  /** Called once when the subscription has closed. */
  onClosed?: () => void;
}

/** A running subscription of the engine. A driver may add `cursor()` to it. */
export interface EngineSubscription extends Subscription {
  /** Deliveries held now: queued, running or being settled (what counts against `prefetch`). */
  readonly load: number;
}

type State = 'queued' | 'held' | 'running' | 'settling' | 'done';

/** One received message while the engine holds it. */
interface Entry<R extends Received> {
  received: R;
  state: State;
  /** The transport said its acknowledgement would mean nothing (see `DeliverySink.void`). */
  void: boolean;
  /** Close handed it back: whatever its handler does later has no effect. */
  returned: boolean;
}

/** How a void delivery's handler ended: applied to the broker's next copy of that message. */
interface Outcome {
  attempt: number;
  ok: boolean;
  error: unknown;
}

/** Outcomes remembered for redeliveries that may never come (another consumer took them). */
const MAX_OUTCOMES = 10_000;

/** Starts a subscription: the transport receives, the engine runs handlers and decides outcomes. */
export async function consume<R extends Received>(
  transport: SubscriptionTransport<R>,
  settings: ConsumeSettings,
): Promise<EngineSubscription> {
  const engine = new Engine(transport, settings);
  await engine.start();
  return engine;
}

class Engine<R extends Received> implements EngineSubscription, DeliverySink<R> {
  readonly name: string;
  private readonly queue = new Deque<Entry<R>>();
  private readonly entries = new Map<R, Entry<R>>();
  /** The entry whose handler runs, by message id: one message never runs twice at once. */
  private readonly runningIds = new Map<string, Entry<R>>();
  /** Deliveries that arrived while a handler of their message id was running. */
  private readonly held = new Map<string, Entry<R>[]>();
  private readonly outcomes = new Map<string, Outcome>();
  private readonly pending = new Set<Promise<void>>();
  private readonly listeners: (() => void)[] = [];
  private running = 0;
  private loadCount = 0;
  private closing: Promise<void> | undefined;
  private stopped = false;
  private isClosed = false;
  private drained: (() => void) | undefined;
  private notifyScheduled = false;

  constructor(
    private readonly transport: SubscriptionTransport<R>,
    private readonly settings: ConsumeSettings,
  ) {
    this.name = settings.name;
  }

  get closed(): boolean {
    return this.isClosed || this.closing !== undefined;
  }

  get load(): number {
    return this.loadCount;
  }

  get capacity(): number {
    return this.stopped ? 0 : Math.max(0, this.settings.prefetch - this.loadCount);
  }

  async start(): Promise<void> {
    await this.transport.start(this);
  }

  onCapacity(listener: () => void): void {
    this.listeners.push(listener);
  }

  deliver(received: R): void {
    const entry: Entry<R> = { received, state: 'queued', void: false, returned: false };
    this.entries.set(received, entry);
    this.loadCount++;
    if (this.stopped) {
      this.handBack(entry);
      return;
    }
    if (this.settledByOutcome(entry)) return;
    this.queue.push(entry);
    this.pump();
  }

  void(received: R): void {
    const entry = this.entries.get(received);
    if (!entry || entry.void) return;
    entry.void = true;
    // Queued or held: the broker delivers it again; a running one keeps its slot until it ends.
    if (entry.state === 'queued' || entry.state === 'held') this.finish(entry);
  }

  /** The broker's copy of a message whose handler ran on a channel that is gone: settled with that run's outcome. */
  private settledByOutcome(entry: Entry<R>): boolean {
    const { id, attempt } = entry.received;
    const outcome = this.outcomes.get(id);
    if (!outcome || outcome.attempt !== attempt) return false;
    this.outcomes.delete(id);
    this.settle(entry, outcome.ok, outcome.error);
    return true;
  }

  private pump(): void {
    while (!this.stopped && this.running < this.settings.prefetch && this.queue.length > 0) {
      const entry = this.queue.shift() as Entry<R>;
      if (entry.state !== 'queued' || this.settledByOutcome(entry)) continue; // voided while queued, or already run
      const id = entry.received.id;
      if (this.runningIds.has(id)) {
        entry.state = 'held';
        const list = this.held.get(id) ?? [];
        list.push(entry);
        this.held.set(id, list);
        continue;
      }
      this.run(entry);
    }
  }

  private run(entry: Entry<R>): void {
    entry.state = 'running';
    this.running++;
    this.runningIds.set(entry.received.id, entry);
    // A later tick: a publish never runs user code inside its own call.
    queueMicrotask(() => {
      let message: Message;
      try {
        message = toMessage(entry.received);
      } catch (error) {
        this.ended(entry, false, error, true);
        return;
      }
      let result: unknown;
      try {
        result = this.settings.handler(message);
      } catch (error) {
        this.ended(entry, false, error);
        return;
      }
      Promise.resolve(result).then(
        () => this.ended(entry, true, undefined),
        (error: unknown) => this.ended(entry, false, error),
      );
    });
  }

  /** A handler finished (or its message's body did not parse: `unparsable`). */
  private ended(entry: Entry<R>, ok: boolean, error: unknown, unparsable = false): void {
    const id = entry.received.id;
    this.running--;
    this.runningIds.delete(id);
    if (this.running === 0) this.drained?.();
    if (entry.returned) {
      // Handed back at close: another consumer owns it now; this outcome has no effect.
    } else if (entry.void) {
      this.remember(id, { attempt: entry.received.attempt, ok, error });
      this.finish(entry);
    } else {
      this.settle(entry, ok, error, unparsable);
    }
    this.releaseHeld(id);
    this.pump();
  }

  private remember(id: string, outcome: Outcome): void {
    if (this.outcomes.size >= MAX_OUTCOMES) this.outcomes.delete(this.outcomes.keys().next().value as string);
    this.outcomes.set(id, outcome);
  }

  /** Copies of `id` that waited for its handler: settled with a void run's outcome, else queued first. */
  private releaseHeld(id: string): void {
    const list = this.held.get(id);
    if (!list) return;
    this.held.delete(id);
    for (const entry of list.reverse()) {
      if (entry.state !== 'held' || this.settledByOutcome(entry)) continue;
      entry.state = 'queued';
      this.queue.unshift(entry);
    }
  }

  private settle(entry: Entry<R>, ok: boolean, error: unknown, unparsable = false): void {
    entry.state = 'settling';
    const { received } = entry;
    const { transport, settings } = this;
    if (ok) this.track(entry, () => transport.ack(received));
    else if (unparsable || received.attempt >= settings.maxAttempts) {
      this.track(entry, () => transport.deadLetter(received, errorText(error)));
    } else {
      const delayMs = backoffDelay(received.attempt, settings.backoff);
      this.track(entry, () => transport.retry(received, delayMs, errorText(error)));
    }
  }

  private handBack(entry: Entry<R>): void {
    entry.returned = true;
    entry.state = 'settling';
    this.track(entry, () => this.transport.handBack(entry.received));
  }

  /** Runs a transport operation; the entry counts against prefetch until it settles. */
  private track(entry: Entry<R>, operation: () => void | Promise<void>): void {
    let promise: Promise<void>;
    try {
      promise = Promise.resolve(operation());
    } catch (error) {
      promise = Promise.reject(error);
    }
    const done = promise
      .catch((error: unknown) => this.settings.onError?.(error))
      .finally(() => {
        this.pending.delete(done);
        this.finish(entry);
      });
    this.pending.add(done);
  }

  private finish(entry: Entry<R>): void {
    if (entry.state === 'done') return;
    entry.state = 'done';
    this.entries.delete(entry.received);
    this.loadCount--;
    this.notifyCapacity();
  }

  private notifyCapacity(): void {
    if (this.notifyScheduled || this.stopped) return;
    this.notifyScheduled = true;
    queueMicrotask(() => {
      this.notifyScheduled = false;
      if (this.stopped) return;
      for (const listener of this.listeners) listener();
    });
  }

  close(options?: CloseOptions): Promise<void> {
    if (!this.closing) {
      let timeoutMs: number;
      try {
        timeoutMs = prepareCloseOptions(this.settings.driver, options);
      } catch (error) {
        return Promise.reject(error); // bad input: reject, and the subscription stays open
      }
      this.closing = this.shutdown(timeoutMs);
    }
    return this.closing;
  }

  /** Stops receiving, hands back what never started, waits for handlers up to the deadline, hands back the rest. */
  private async shutdown(timeoutMs: number): Promise<void> {
    this.stopped = true;
    try {
      await this.transport.stop();
    } catch (error) {
      this.settings.onError?.(error);
    }
    // Newest first, so a transport that puts messages back at the head of a queue keeps their order.
    const waiting = [...this.entries.values()].filter((e) => e.state === 'queued' || e.state === 'held').reverse();
    for (const entry of waiting) this.handBack(entry);
    if (this.running > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const unfinished = [...this.entries.values()].filter((e) => e.state === 'running').reverse();
    for (const entry of unfinished) {
      if (entry.void) {
        entry.returned = true; // the broker has it again already
        this.finish(entry);
      } else this.handBack(entry);
    }
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    try {
      await this.transport.close?.();
    } catch (error) {
      this.settings.onError?.(error);
    }
    this.isClosed = true;
    this.settings.onClosed?.();
  }
}

/** The frozen message a handler gets: its own copy of the body, headers and date. */
function toMessage(received: Received): Message {
  const body: JsonValue =
    received.json !== undefined ? (JSON.parse(received.json) as JsonValue) : structuredClone(received.body as JsonValue);
  return Object.freeze({
    id: received.id,
    body,
    segment: received.segment,
    topic: received.topic,
    publishedAt: new Date(received.publishedAt.getTime()),
    attempt: received.attempt,
    headers: Object.freeze({ ...received.headers }),
  });
}
