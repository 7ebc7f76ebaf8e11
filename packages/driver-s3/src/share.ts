import {
  anyTopicMatches,
  consume,
  type DeliverySink,
  Deque,
  type EngineSubscription,
  type Handler,
  InvalidArgumentError,
  MqError,
  type PreparedShareConsume,
} from '@mq-drivers/core';
import type { Context } from './context.js';
import { DeletedCheck } from './deleted-check.js';
import { storedFromRecord } from './layout.js';
import { DRIVER_NAME } from './options.js';
import { PullTransport, type S3Received, toReceived } from './transport.js';

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

/** A share message as a subscription delivers it: from the log (at `position`), or from the retry area. */
interface ShareReceived extends S3Received {
  readonly position?: string;
}

/**
 * Starts a share subscription on core's engine: a durable one resumes at its saved cursor (skipping
 * what it had resolved out of order), else it starts where `from` says (default: after the head).
 * A new durable subscription saves its first cursor before this resolves. `stillOpen` throws when
 * the driver closed meanwhile; `onClosed` runs once the subscription has closed.
 */
export async function openShareSubscription(
  ctx: Context,
  handler: Handler,
  spec: PreparedShareConsume,
  name: string,
  stillOpen: () => void,
  onClosed: () => void,
): Promise<EngineSubscription & { cursor(): string }> {
  const durable = spec.name !== undefined;
  const saved = durable ? await ctx.store.getJson<SavedCursor>(ctx.keys.cursor(spec.segment, name)) : undefined;
  let start: Position | undefined = saved && { seq: saved.seq, index: saved.index };
  let fromDate: Date | undefined;
  if (!start) {
    const from = spec.from ?? 'latest';
    if (from === 'latest') start = { seq: (await ctx.logs.head(spec.segment, 'share')) + 1, index: 0 };
    else if (from === 'earliest') start = { seq: await ctx.logs.earliest(spec.segment, 'share'), index: 0 };
    else if (from instanceof Date) {
      fromDate = from;
      start = await positionAt(ctx, spec.segment, from);
    } else start = parseCursor(from.cursor);
  }
  stillOpen();
  const transport = new ShareSubscription(ctx, spec, name, durable, start, saved?.done ?? [], fromDate, saved === undefined);
  const subscription = await consume(transport, {
    driver: DRIVER_NAME,
    name,
    handler,
    prefetch: spec.prefetch,
    maxAttempts: spec.maxAttempts,
    backoff: ctx.options.redeliveryBackoff,
    onClosed,
  });
  return Object.assign(subscription, { cursor: () => transport.cursor() });
}

/** The first log object that may hold messages published at or after `date` (server write times, 60 s margin). */
async function positionAt(ctx: Context, segment: string, date: Date): Promise<Position> {
  const since = date.getTime() - 60_000;
  const objects = await ctx.logs.listFrom(segment, 'share', 0);
  const first = objects.find((o) => (o.lastModified?.getTime() ?? 0) >= since);
  if (first) return { seq: first.seq, index: 0 };
  const last = objects[objects.length - 1];
  return { seq: (last?.seq ?? (await ctx.logs.head(segment, 'share'))) + 1, index: 0 };
}

/**
 * A share subscription, the transport of a share consumer: it tails the segment's share log from a
 * position, delivering records whose topic matches while the engine has capacity. Failed log
 * messages are retried in memory (the position stays unresolved, so a durable cursor never passes
 * them, and a subscription without a name writes nothing); re-driven dead letters arrive through the
 * subscription's retry area.
 */
class ShareSubscription extends PullTransport<ShareReceived> {
  private readonly deleted: DeletedCheck;
  /** Matching positions not yet resolved or resolved out of order, in log order. */
  private readonly held = new Map<string, { resolved: boolean }>();
  private readonly skip: Set<string>;
  /** Failed log messages waiting for their backoff, then for capacity. */
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly due = new Deque<ShareReceived>();
  private readonly maxHeld: number;
  private position: Position;
  private dirty = false;
  private saving: Promise<void> | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private hits = 0;

  constructor(
    ctx: Context,
    private readonly spec: PreparedShareConsume,
    readonly name: string,
    private readonly durable: boolean,
    start: Position,
    done: string[],
    private readonly fromDate: Date | undefined,
    private readonly saveFirst: boolean,
  ) {
    super(ctx, ctx.keys.subscription(spec.segment, name), ctx.keys.deadLetters(spec.segment, { subscription: name }));
    this.position = start;
    this.skip = new Set(done);
    this.deleted = new DeletedCheck(ctx.logs, spec.segment, 'share');
    this.maxHeld = Math.max(spec.prefetch * 2, 100);
  }

  /** Saves the starting cursor of a new durable subscription, then starts tailing. */
  override async start(sink: DeliverySink<ShareReceived>): Promise<void> {
    if (this.durable && this.saveFirst) await this.saveCursor();
    if (this.durable) {
      this.saveTimer = setInterval(() => {
        if (this.dirty) void this.saveCursor().catch(() => undefined);
      }, this.ctx.options.cursorSaveIntervalMs);
      this.saveTimer.unref?.();
    }
    sink.onCapacity(() => this.offerDue());
    super.start(sink);
  }

  protected get wantsWork(): boolean {
    return this.sink.capacity > 0 && this.held.size < this.maxHeld;
  }

  protected get busyWait(): number {
    return this.ctx.options.maxPollIntervalMs;
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

  protected readLog(): Promise<boolean> {
    return this.readNext();
  }

  private async readNext(): Promise<boolean> {
    const { seq, index } = this.position;
    const records = await this.ctx.logs.read(this.spec.segment, 'share', seq);
    if (this.stopped) return false;
    if (!records) {
      this.hits = 0;
      const next = await this.deleted.after(seq);
      if (next === undefined || this.stopped) return false;
      this.skipDeleted(seq, next);
      return true;
    }
    this.poll.found();
    if (index === 0 && ++this.hits >= 2) {
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
      if (this.sink.capacity <= 0) {
        // Full: the rest of this object waits (it stays in the reader's cache).
        this.position = { seq, index: i };
        this.dirty = true;
        return true;
      }
      this.held.set(key, { resolved: false });
      this.sink.deliver(toReceived(storedFromRecord(record, this.spec.segment, record.topic, 1), { position: key }));
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

  /** Acked or dead-lettered: the position is resolved (the cursor moves once every earlier one is). */
  protected resolveLog({ position }: ShareReceived): void {
    const entry = position === undefined ? undefined : this.held.get(position);
    if (!entry) return;
    entry.resolved = true;
    // Drop the resolved prefix: what is left starts at the first unresolved position.
    for (const [k, e] of this.held) {
      if (!e.resolved) break;
      this.held.delete(k);
    }
    this.dirty = true;
  }

  /** A failed log message comes back after the backoff, in memory: its position stays unresolved. */
  override async retry(received: ShareReceived, delayMs: number): Promise<void> {
    if (received.item) return super.retry(received, delayMs);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.due.push({
        ...received,
        attempt: received.attempt + 1,
        stored: { ...received.stored, attempt: received.attempt + 1 },
      });
      this.offerDue();
    }, delayMs);
    this.timers.add(timer);
  }

  private offerDue(): void {
    while (!this.stopped && this.due.length > 0 && this.sink.capacity > 0) this.sink.deliver(this.due.shift()!);
  }

  /** A handed-back log message stays unresolved: the saved cursor still points at it. */
  protected async handBackLog(): Promise<void> {}

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

  override stop(): void {
    // Messages waiting for a retry stay unresolved, like handed-back ones.
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.due.clear();
    if (this.saveTimer) clearInterval(this.saveTimer);
    super.stop();
  }

  override async close(): Promise<void> {
    await super.close();
    if (this.durable) await this.saveCursor().catch(() => undefined);
  }
}
