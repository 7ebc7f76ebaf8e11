import type { DeliverySink, Received, SubscriptionTransport } from '@mq-drivers/core';
import type { Context } from './context.js';
import type { StoredMessage } from './layout.js';
import { PollInterval, persist, Sleeper, Tracker } from './polling.js';
import { RetryArea, type RetryItem } from './retry-area.js';

/** A message as an S3 consumer hands it to core's engine: the parsed body, and where it came from. */
export interface S3Received extends Received {
  readonly stored: StoredMessage;
  /** The retry object it was read from (a failed attempt, a hand-back, a re-driven dead letter). */
  readonly item?: RetryItem;
}

export function toReceived<R extends S3Received>(stored: StoredMessage, extra: Omit<R, keyof Received | 'stored'>): R {
  return {
    id: stored.id,
    body: stored.body,
    segment: stored.segment,
    topic: stored.topic,
    publishedAt: new Date(stored.publishedAt),
    attempt: stored.attempt,
    headers: stored.headers,
    stored,
    ...extra,
  } as R;
}

/**
 * What task workers and share subscriptions share as transports of core's engine (which runs the
 * handlers and decides every outcome). Both are pull transports: a loop reads while the engine has
 * capacity and sleeps otherwise (woken when capacity frees up). Messages come from the log (each
 * subclass its own way) or from the owner's retry area, which both poll alike. Outcome writes go
 * through `persist()`, so an S3 hiccup delays them instead of losing them; a message whose outcome
 * could not be stored stays unresolved, and S3's own mechanics (leases, cursors) deliver it again.
 */
export abstract class PullTransport<R extends S3Received> implements SubscriptionTransport<R> {
  protected sink!: DeliverySink<R>;
  protected stopped = false;
  protected readonly sleeper = new Sleeper();
  /** Writes that resolve positions in the background (done markers, retry object deletes). */
  protected readonly writes = new Tracker();
  protected readonly poll: PollInterval;
  protected readonly retries: RetryArea;
  /** When the retry area is listed next: every max(1 s, 2 × maxPollIntervalMs), and when a retry written here is due. */
  protected nextRetryPoll = 0;
  private loop: Promise<void> | undefined;

  constructor(
    protected readonly ctx: Context,
    /** `<segment>/tasks/kinds/<kind>/` or `<segment>/shares/subscriptions/<name>/`. */
    ownerDir: string,
    /** Where this consumer's dead letters go. */
    private readonly deadLetterDir: string,
  ) {
    this.poll = new PollInterval(ctx.options.minPollIntervalMs, ctx.options.maxPollIntervalMs);
    this.retries = new RetryArea(ctx, ownerDir);
  }

  /** Reads from the log; true when it found something (the loop goes on without sleeping). */
  protected abstract readLog(): Promise<boolean>;
  /** Whether the loop should read now (else it sleeps `busyWait`, or until capacity frees up). */
  protected abstract get wantsWork(): boolean;
  protected abstract get busyWait(): number;
  /** Periodic work done whatever the capacity (before reading); true when it delivered something. */
  protected housekeeping(): Promise<boolean> {
    return Promise.resolve(false);
  }
  /** The outcome of a log message is stored: move past it. */
  protected abstract resolveLog(received: R): void;
  /** Close gave a log message back unfinished. */
  protected abstract handBackLog(received: R): Promise<void>;

  start(sink: DeliverySink<R>): void | Promise<void> {
    this.sink = sink;
    sink.onCapacity(() => this.sleeper.wake());
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        let progressed = await this.housekeeping();
        if (this.wantsWork && Date.now() >= this.nextRetryPoll) {
          this.nextRetryPoll = Date.now() + Math.max(1000, this.ctx.options.maxPollIntervalMs * 2);
          progressed = (await this.claimRetries()) || progressed;
        }
        if (this.wantsWork && !this.stopped) progressed = (await this.readLog()) || progressed;
        if (this.stopped) break;
        if (!this.wantsWork) await this.sleeper.sleep(this.busyWait);
        else if (!progressed) await this.sleeper.sleep(this.poll.idle());
      } catch {
        // Endpoint trouble: wait and try again; nothing is lost, no position has moved.
        if (!this.stopped) await this.sleeper.sleep(this.ctx.options.maxPollIntervalMs);
      }
    }
  }

  private async claimRetries(): Promise<boolean> {
    const items = await this.retries.claim(this.sink.capacity);
    for (const item of items) this.sink.deliver(toReceived<R>(item.stored, { item } as Omit<R, keyof Received | 'stored'>));
    return items.length > 0;
  }

  /** Runs a write until it succeeds, or once more after a failure when stopping. */
  protected persist(write: () => Promise<void>): Promise<boolean> {
    return persist(write, () => this.stopped);
  }

  private resolve(received: R): void {
    const { item } = received;
    if (item) void this.writes.track(this.persist(() => this.retries.finish(item)));
    else this.resolveLog(received);
  }

  ack(received: R): void {
    this.resolve(received);
  }

  async retry(received: R, delayMs: number): Promise<void> {
    const due = Date.now() + delayMs;
    this.nextRetryPoll = Math.min(this.nextRetryPoll, due + 5);
    const next = { ...received.stored, attempt: received.attempt + 1 };
    if (await this.persist(() => this.retries.add(next, due))) this.resolve(received);
  }

  async deadLetter(received: R, error: string): Promise<void> {
    if (await this.persist(() => this.ctx.deadLetters.add(this.deadLetterDir, received.stored, error))) this.resolve(received);
  }

  /** Tracked: a read still in flight at `stop()` delivers after it, and the engine hands that back. */
  handBack(received: R): Promise<void> {
    const { item } = received;
    return this.writes.track(item ? this.retries.release(item).catch(() => undefined) : this.handBackLog(received));
  }

  /** Receives nothing more. A read in flight still ends (`close` waits for it) without holding up close. */
  stop(): void {
    this.stopped = true;
    this.sleeper.wake();
  }

  /** Waits for the loop and background writes; lets go of retry objects whose outcome could not be stored. */
  async close(): Promise<void> {
    await this.loop;
    await this.writes.settled();
    await this.retries.releaseAll();
  }
}
