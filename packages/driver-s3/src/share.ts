import {
  anyTopicMatches,
  backoffDelay,
  type CloseOptions,
  errorText,
  type Handler,
  InvalidArgumentError,
  MqError,
  type PreparedShareConsume,
  type Subscription,
} from '@mq-drivers/core';
import type { Context } from './context.js';
import { DeletedCheck } from './deleted-check.js';
import { type StoredMessage, storedFromRecord } from './layout.js';
import { DRIVER_NAME } from './options.js';
import { RetryArea, type RetryItem } from './retry-area.js';
import { closeTimeout, type Delivery, PollInterval, persist, Runner, Sleeper, Tracker } from './runner.js';

/** A read position: the next record is `index` of log object `seq`. */
export interface Position {
  seq: number;
  index: number;
}

/** What `cursor.json` of a durable subscription holds. */
interface SavedCursor {
  seq: number;
  index: number;
  /** Positions past (seq, index) already resolved (acked or dead-lettered), as `seq:index`. */
  done: string[];
  savedAt: string;
}

export function formatCursor(position: Position): string {
  return `${position.seq}:${position.index}`;
}

export function parseCursor(cursor: string): Position {
  const match = /^(\d{1,16}):(\d{1,8})$/.exec(cursor);
  if (!match) {
    throw new InvalidArgumentError({
      driver: DRIVER_NAME,
      argument: 'from.cursor',
      value: cursor,
      message: `${JSON.stringify(cursor)} is not a cursor of this driver (expected "<seq>:<index>", as returned by subscription.cursor())`,
    });
  }
  return { seq: Number(match[1]), index: Number(match[2]) };
}

const posKey = (seq: number, index: number): string => `${seq}:${index}`;

/**
 * A share subscription tails the segment's share log from a position, delivering records whose
 * topic matches. Failed messages are retried in memory (the position stays held, so a durable
 * cursor never passes them); re-driven dead letters arrive through the subscription's retry area.
 */
export class ShareSubscription implements Subscription {
  closed = false;
  private readonly runner: Runner;
  private readonly sleeper = new Sleeper();
  private readonly writes = new Tracker();
  private readonly poll: PollInterval;
  private readonly retries: RetryArea;
  private readonly deleted: DeletedCheck;
  /** Matching positions not yet resolved or resolved out of order, in log order. */
  private readonly held = new Map<string, { resolved: boolean }>();
  private readonly skip: Set<string>;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly maxHeld: number;
  private position: Position;
  private dirty = false;
  private saving: Promise<void> | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private hits = 0;
  private nextRetryPoll = 0;

  constructor(
    private readonly ctx: Context,
    handler: Handler,
    private readonly spec: PreparedShareConsume,
    readonly name: string,
    private readonly durable: boolean,
    start: Position,
    done: string[],
    private readonly fromDate: Date | undefined,
    private readonly onClosed: (sub: ShareSubscription) => void,
  ) {
    this.position = start;
    this.skip = new Set(done);
    this.poll = new PollInterval(ctx.options.minPollIntervalMs, ctx.options.maxPollIntervalMs);
    this.runner = new Runner(handler, spec.prefetch, () => this.sleeper.wake());
    this.retries = new RetryArea(ctx, ctx.keys.subscription(spec.segment, name));
    this.deleted = new DeletedCheck(ctx.logs, spec.segment, 'share');
    this.maxHeld = Math.max(spec.prefetch * 2, 100);
  }

  /** Saves the starting cursor of a new durable subscription, then starts tailing. */
  async start(saveFirst: boolean): Promise<void> {
    if (saveFirst) await this.saveCursor();
    if (this.durable) {
      this.saveTimer = setInterval(() => {
        if (this.dirty) void this.saveCursor().catch(() => undefined);
      }, this.ctx.options.cursorSaveIntervalMs);
      this.saveTimer.unref?.();
    }
    this.loop = this.run();
  }

  cursor(): string {
    return formatCursor(this.low());
  }

  /** The first unresolved position (or the read position when everything is resolved). */
  private low(): Position {
    for (const [key, entry] of this.held) {
      if (!entry.resolved) {
        const [seq, index] = key.split(':').map(Number) as [number, number];
        return { seq, index };
      }
    }
    return this.position;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        let progressed = false;
        if (Date.now() >= this.nextRetryPoll) {
          this.nextRetryPoll = Date.now() + Math.max(1000, this.ctx.options.maxPollIntervalMs * 2);
          progressed = (await this.pollRetries()) || progressed;
        }
        if (this.held.size < this.maxHeld) progressed = (await this.readNext()) || progressed;
        else {
          await this.sleeper.sleep(this.ctx.options.maxPollIntervalMs);
          continue;
        }
        if (!progressed && !this.closed) await this.sleeper.sleep(this.poll.idle());
      } catch {
        // Endpoint trouble: wait and try again; nothing is lost, the position has not moved.
        if (!this.closed) await this.sleeper.sleep(this.ctx.options.maxPollIntervalMs);
      }
    }
  }

  private async readNext(): Promise<boolean> {
    const { seq, index } = this.position;
    const records = await this.ctx.logs.read(this.spec.segment, 'share', seq);
    if (this.closed) return false;
    if (!records) {
      this.hits = 0;
      const next = await this.deleted.after(seq);
      if (next === undefined || this.closed) return false;
      this.skipDeleted(seq, next);
      return true;
    }
    this.poll.found();
    if (++this.hits >= 2) {
      // Catching up: fetch the next objects in parallel (they land in the reader's cache).
      for (let ahead = 1; ahead <= 8; ahead++)
        void this.ctx.logs.read(this.spec.segment, 'share', seq + ahead).catch(() => undefined);
    }
    for (let i = index; i < records.length; i++) {
      const record = records[i]!;
      if (record.type !== 'share' || record.topic === undefined) continue;
      if (!anyTopicMatches(this.spec.patterns, record.topic)) continue;
      if (this.fromDate && new Date(record.publishedAt) < this.fromDate) continue;
      const key = posKey(seq, i);
      if (this.skip.delete(key)) continue;
      this.held.set(key, { resolved: false });
      this.deliver(storedFromRecord(record, this.spec.segment, record.topic, 1), key);
    }
    this.position = { seq: seq + 1, index: 0 };
    this.dirty = true;
    return true;
  }

  /**
   * Retention deleted log objects [seq, next) before this subscription read them: their messages
   * are lost for it (the policy the user chose). Move on to the lowest stored number, and say so.
   */
  private skipDeleted(seq: number, next: number): void {
    const index = this.position.index;
    this.position = { seq: next, index: 0 };
    for (const key of this.skip) if (Number(key.split(':')[0]) < next) this.skip.delete(key);
    this.dirty = true;
    const range = next - 1 > seq ? `log objects ${seq}-${next - 1}` : `log object ${seq}`;
    this.ctx.options.onError(
      new MqError({
        driver: DRIVER_NAME,
        message:
          `share subscription "${this.name}" of segment "${this.spec.segment}" skipped ${range}` +
          `${index > 0 ? ` (from record ${index})` : ''}: retention deleted them before it read them, so their ` +
          `messages are lost for this subscription; it continues at log object ${next}`,
      }),
    );
  }

  private deliver(stored: StoredMessage, key: string): void {
    const delivery: Delivery = {
      stored,
      state: 'queued',
      settle: (ok, error) => {
        if (ok) return this.resolve(key);
        if (stored.attempt < this.spec.maxAttempts) {
          const timer = setTimeout(
            () => {
              this.timers.delete(timer);
              if (!this.closed) this.deliver({ ...stored, attempt: stored.attempt + 1 }, key);
            },
            backoffDelay(stored.attempt, this.ctx.options.redeliveryBackoff),
          );
          this.timers.add(timer);
          return;
        }
        void this.deadLetter(stored, errorText(error)).then((written) => {
          if (written) this.resolve(key);
        });
      },
    };
    this.runner.push(delivery);
  }

  private deadLetter(stored: StoredMessage, error: string): Promise<boolean> {
    const dir = this.ctx.keys.deadLetters(this.spec.segment, { subscription: this.name });
    return this.writes.track(
      persist(
        () => this.ctx.deadLetters.add(dir, stored, error),
        () => this.closed,
      ),
    );
  }

  private resolve(key: string): void {
    const entry = this.held.get(key);
    if (!entry) return;
    entry.resolved = true;
    // Drop the resolved prefix: what is left starts at the first unresolved position.
    for (const [k, e] of this.held) {
      if (!e.resolved) break;
      this.held.delete(k);
    }
    this.dirty = true;
    this.sleeper.wake();
  }

  /** Re-driven dead letters (and any other retry objects) of this subscription. */
  private async pollRetries(): Promise<boolean> {
    const capacity = this.spec.prefetch - this.runner.load;
    const items = await this.retries.claim(capacity);
    for (const item of items) this.deliverRetry(item);
    return items.length > 0;
  }

  private deliverRetry(item: RetryItem): void {
    const stored = item.stored;
    const finish = (): void =>
      void this.writes.track(
        persist(
          () => this.retries.finish(item),
          () => this.closed,
        ),
      );
    const delivery: Delivery = {
      stored,
      state: 'queued',
      settle: (ok, error) => {
        if (ok) return finish();
        if (stored.attempt < this.spec.maxAttempts) {
          const next = { ...stored, attempt: stored.attempt + 1 };
          const due = Date.now() + backoffDelay(stored.attempt, this.ctx.options.redeliveryBackoff);
          void this.writes.track(
            persist(
              () => this.retries.add(next, due),
              () => this.closed,
            ).then((ok2) => ok2 && finish()),
          );
          return;
        }
        void this.deadLetter(stored, errorText(error)).then((written) => written && finish());
      },
    };
    (delivery as Delivery & { retryItem: RetryItem }).retryItem = item;
    this.runner.push(delivery);
  }

  private saveCursor(): Promise<void> {
    if (!this.durable) return Promise.resolve();
    const run = async (): Promise<void> => {
      this.dirty = false;
      const low = this.low();
      const done: string[] = [];
      for (const [key, entry] of this.held) if (entry.resolved) done.push(key);
      for (const key of this.skip) done.push(key);
      const body: SavedCursor = { seq: low.seq, index: low.index, done, savedAt: new Date().toISOString() };
      try {
        await this.ctx.store.put(this.ctx.keys.cursor(this.spec.segment, this.name), JSON.stringify(body));
      } catch (error) {
        this.dirty = true;
        throw error;
      }
    };
    this.saving = (this.saving ?? Promise.resolve()).then(run, run);
    return this.saving;
  }

  async close(options: CloseOptions = {}): Promise<void> {
    const timeoutMs = closeTimeout(options);
    if (this.closed) return;
    this.closed = true;
    this.sleeper.wake();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.saveTimer) clearInterval(this.saveTimer);
    const returned = await this.runner.stop(timeoutMs);
    await this.loop;
    await this.writes.settled();
    // Handed-back log messages stay unresolved, so the saved cursor still points at them;
    // handed-back retry objects are released for another consumer or the next start.
    for (const delivery of returned) {
      const item = (delivery as Delivery & { retryItem?: RetryItem }).retryItem;
      if (item) await this.retries.release(item).catch(() => undefined);
    }
    if (this.durable) await this.saveCursor().catch(() => undefined);
    this.onClosed(this);
  }
}
