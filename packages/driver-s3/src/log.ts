import { randomUUID } from 'node:crypto';
import { AuthenticationError, MqError, PublishError, TopologyError, UnsupportedError } from '@mq-drivers/core';
import { decodeRecords, type Keys, type LogRecord, type LogType } from './layout.js';
import { DRIVER_NAME, type ResolvedOptions } from './options.js';
import type { ListedObject, Store } from './store.js';

/**
 * A writer without `retentionMs` looks the head up again after this long without a write: safe
 * next to any sweeper with a retention of 60 s or more (the other 30 s cover clock differences).
 */
export const STALE_WITHOUT_RETENTION_MS = 30_000;

/** The head hint is rewritten every this many log objects; a new writer lists at most this many keys. */
const HINT_EVERY = 64;
const CACHE_SIZE = 256;

/** Reads log objects (immutable once written, so cached) and finds a log's head. */
export class LogReader {
  private readonly cache = new Map<string, LogRecord[]>();
  /** Per log, the highest number this driver has seen written (it may have been deleted since). */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly keys: Keys,
  ) {}

  /** The records of log object `seq`, or undefined when it does not exist (yet). */
  async read(segment: string, type: LogType, seq: number): Promise<LogRecord[] | undefined> {
    const key = this.keys.log(segment, type, seq);
    const cached = this.cache.get(key);
    if (cached) return cached;
    const object = await this.store.get(key);
    if (object === undefined) return undefined;
    let records: LogRecord[];
    try {
      records = decodeRecords(object.text);
    } catch (cause) {
      throw new TopologyError({
        driver: DRIVER_NAME,
        resource: key,
        message: `log object ${key} is not valid JSON Lines`,
        cause,
      });
    }
    this.cache.set(key, records);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    this.saw(segment, type, seq);
    return records;
  }

  /**
   * Notes that log object `seq` exists or existed. Numbers are gap-free, so every lower number was
   * written too: a reader that gets 404 below it knows retention deleted that number.
   */
  saw(segment: string, type: LogType, seq: number): void {
    const id = `${type}:${segment}`;
    if (seq > (this.seen.get(id) ?? 0)) this.seen.set(id, seq);
  }

  /** The highest number {@link saw} noted for a log (0 when none). */
  highestSeen(segment: string, type: LogType): number {
    return this.seen.get(`${type}:${segment}`) ?? 0;
  }

  /** The number in `head.json`: a log object that exists or existed (0 when there is none). */
  async hint(segment: string, type: LogType): Promise<number> {
    const hint = (await this.store.getJson<{ seq?: number }>(this.keys.headHint(segment, type)))?.seq ?? 0;
    this.saw(segment, type, hint);
    return hint;
  }

  /**
   * Highest sequence number written so far (0 for an empty log). The hint may name a number
   * retention deleted since: the listing after it still finds the head, which is never deleted.
   */
  async head(segment: string, type: LogType): Promise<number> {
    const hint = await this.hint(segment, type);
    const listed = await this.store.list(this.keys.logDir(segment, type), {
      startAfter: hint > 0 ? this.keys.log(segment, type, hint) : undefined,
    });
    let head = hint;
    for (const entry of listed) head = Math.max(head, this.keys.logSeq(entry.key) ?? 0);
    this.saw(segment, type, head);
    return head;
  }

  /** The lowest number stored after `seq` (undefined when there is none): one LIST of one key. */
  async firstAfter(segment: string, type: LogType, seq: number): Promise<number | undefined> {
    const listed = await this.store.list(this.keys.logDir(segment, type), {
      startAfter: this.keys.log(segment, type, seq),
      limit: 1,
    });
    const next = listed[0] ? this.keys.logSeq(listed[0].key) : undefined;
    if (next !== undefined) this.saw(segment, type, next);
    return next;
  }

  /** Lowest sequence number still stored (head + 1 for an empty log). */
  async earliest(segment: string, type: LogType): Promise<number> {
    const first = await this.store.list(this.keys.logDir(segment, type), { limit: 1 });
    const seq = first[0] ? this.keys.logSeq(first[0].key) : undefined;
    return seq ?? (await this.head(segment, type)) + 1;
  }

  /**
   * The oldest log objects written before `cutoffMs` (S3 `LastModified`), in log order: the listing
   * stops at the first newer object, and never returns the log's highest number.
   */
  async writtenBefore(segment: string, type: LogType, cutoffMs: number): Promise<number[]> {
    const isNew = (entry: ListedObject): boolean => (entry.lastModified?.getTime() ?? Number.POSITIVE_INFINITY) >= cutoffMs;
    const listed = await this.store.list(this.keys.logDir(segment, type), { until: isNew });
    const old: number[] = [];
    let newer = false;
    for (const entry of listed) {
      const seq = this.keys.logSeq(entry.key);
      if (seq === undefined) continue;
      if (isNew(entry)) {
        newer = true;
        break;
      }
      old.push(seq);
    }
    // Every object listed is old: the last one is the head, which must stay.
    if (!newer) old.pop();
    return old;
  }

  /** Log objects with their write time (server clock), from `startAfterSeq` on. */
  async listFrom(
    segment: string,
    type: LogType,
    startAfterSeq: number,
  ): Promise<{ seq: number; lastModified: Date | undefined }[]> {
    const listed = await this.store.list(this.keys.logDir(segment, type), {
      startAfter: startAfterSeq > 0 ? this.keys.log(segment, type, startAfterSeq) : undefined,
    });
    return listed.flatMap((entry) => {
      const seq = this.keys.logSeq(entry.key);
      return seq === undefined ? [] : [{ seq, lastModified: entry.lastModified }];
    });
  }
}

interface Pending {
  line: string;
  bytes: number;
  id: string;
  /** `requestTimeoutMs` after the call: the publish is settled by then, whatever is in flight. */
  deadline: number;
  /** In the batch being written (else still waiting for its turn). */
  sent: boolean;
  settled: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for one log (segment + type). Publishes wait up to `flushIntervalMs` for company, then
 * one PUT writes them all as the next numbered log object, created with `If-None-Match: *`. One write
 * is in flight at a time per writer (so this writer never leaves a gap); what arrives meanwhile forms
 * the next batch. A lost race (412) means that number is taken: the same batch tries the next one.
 *
 * The wait is cut short once as many publishes are pending as the previous batch held: publishers
 * that await each publish come back together when their batch is written, and waiting longer for
 * company that cannot come (they are all here) would only add `flushIntervalMs` to every round.
 */
export class LogWriter {
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private next: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;
  /** Size of the last batch written; none yet: the first batch always waits. */
  private lastBatch = Number.POSITIVE_INFINITY;
  private writing: Promise<void> | undefined;
  /**
   * When `next` was last known fresh (our own write of `next - 1`, or a head lookup): every number
   * from `next` on was written after this, so retention cannot have deleted it for a while.
   */
  private knownAt = 0;

  constructor(
    private readonly store: Store,
    private readonly keys: Keys,
    private readonly reader: LogReader,
    private readonly options: ResolvedOptions,
    private readonly ready: () => Promise<void>,
    readonly segment: string,
    readonly type: LogType,
  ) {}

  /**
   * Resolves once the line is written; rejects with a `PublishError` when it is not, at most
   * `requestTimeoutMs` after the call, also when it waited behind a write that got no answer.
   */
  publish(line: string, id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const bytes = Buffer.byteLength(line) + 1;
      const timeoutMs = this.options.requestTimeoutMs;
      const timer = setTimeout(() => this.expire(entry), timeoutMs);
      const entry: Pending = {
        line,
        bytes,
        id,
        deadline: Date.now() + timeoutMs,
        sent: false,
        settled: false,
        resolve: () => {
          if (entry.settled) return;
          entry.settled = true;
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          if (entry.settled) return;
          entry.settled = true;
          clearTimeout(timer);
          reject(error);
        },
      };
      this.pending.push(entry);
      this.pendingBytes += bytes;
      if (this.writing) return;
      if (this.full()) this.start();
      // setImmediate, not now: publishes made in the same tick (a burst) still join this batch.
      else if (this.pending.length >= this.lastBatch) this.soon ??= setImmediate(() => this.start());
      else this.timer ??= setTimeout(() => this.start(), this.options.flushIntervalMs);
    });
  }

  /** The publish's time is up: it rejects now, and is left out of any later write. */
  private expire(entry: Pending): void {
    if (entry.settled) return;
    const timeoutMs = this.options.requestTimeoutMs;
    const index = this.pending.indexOf(entry);
    if (index >= 0) {
      this.pending.splice(index, 1);
      this.pendingBytes -= entry.bytes;
    }
    const where = this.store.endpointLabel;
    entry.reject(
      new PublishError({
        driver: DRIVER_NAME,
        messageId: entry.id,
        message: entry.sent
          ? `message ${entry.id} was not confirmed within ${timeoutMs} ms (no answer from ${where} while writing the next log object of ${this.segment}); it may still have been written`
          : `message ${entry.id} was not written within ${timeoutMs} ms: the write ahead of it in ${this.segment} got no answer from ${where} in that time`,
      }),
    );
  }

  /** Resolves once everything published so far is written (or failed). */
  async drain(): Promise<void> {
    while (this.writing || this.pending.length > 0) {
      if (!this.writing) this.start();
      await this.writing;
    }
  }

  private full(): boolean {
    return this.pending.length >= this.options.maxBatchMessages || this.pendingBytes >= this.options.maxBatchBytes;
  }

  private start(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.soon) clearImmediate(this.soon);
    this.timer = undefined;
    this.soon = undefined;
    if (this.writing || this.pending.length === 0) return;
    const batch: Pending[] = [];
    let bytes = 0;
    while (this.pending.length > 0 && batch.length < this.options.maxBatchMessages) {
      const next = this.pending[0]!;
      if (batch.length > 0 && bytes + next.bytes > this.options.maxBatchBytes) break;
      batch.push(next);
      bytes += next.bytes;
      next.sent = true;
      this.pending.shift();
    }
    this.pendingBytes -= bytes;
    this.lastBatch = batch.length;
    this.writing = this.write(batch).finally(() => {
      this.writing = undefined;
      // What arrived during the write goes out at once: it has waited long enough.
      if (this.pending.length > 0) this.start();
    });
  }

  private async write(batch: Pending[]): Promise<void> {
    const token = randomUUID();
    const deadline = Date.now() + this.options.requestTimeoutMs;
    try {
      await this.ready();
      for (let lost = 0; ; ) {
        // Publishes whose time ran out meanwhile have been rejected: they are not written.
        const live = batch.filter((p) => !p.settled);
        if (live.length === 0) return;
        if (Date.now() > deadline) {
          throw new PublishError({
            driver: DRIVER_NAME,
            message: `could not claim a log number for ${this.segment} within ${this.options.requestTimeoutMs} ms (${lost} numbers taken by other writers)`,
          });
        }
        if (this.next === undefined || this.stale()) {
          this.knownAt = Date.now();
          this.next = (await this.reader.head(this.segment, this.type)) + 1;
        }
        const seq: number = this.next;
        const key = this.keys.log(this.segment, this.type, seq);
        const sent = Date.now();
        const body = `${live.map((p) => p.line).join('\n')}\n`;
        // Bounded by the earliest deadline among them: no publish waits on a request past its own.
        const timeoutMs = Math.max(1, Math.min(...live.map((p) => p.deadline)) - sent);
        const result = await this.store.create(key, body, { batch: token, count: String(live.length) }, timeoutMs);
        let ours = result.created;
        if (!ours && result.retried) {
          // The SDK retried: the 412 may answer our own first attempt. The batch token tells.
          ours = (await this.store.get(key))?.metadata.batch === token;
        }
        if (ours) {
          this.next = seq + 1;
          this.knownAt = sent;
          this.reader.saw(this.segment, this.type, seq);
          if (seq % HINT_EVERY === 0) {
            this.store.put(this.keys.headHint(this.segment, this.type), JSON.stringify({ seq })).catch(() => undefined);
          }
          for (const p of live) p.resolve();
          return;
        }
        lost++;
        // Number taken. After a few losses in a row, find the head instead of walking one by one.
        this.next = lost % 4 === 0 ? Math.max(seq + 1, (await this.reader.head(this.segment, this.type)) + 1) : seq + 1;
      }
    } catch (error) {
      // Nothing acknowledged that was not written: every publish of the batch fails.
      this.next = undefined;
      for (const p of batch) p.reject(publishFailure(error, p.id));
    }
  }

  /**
   * With retention, a number another writer took long ago may have been deleted since, and
   * creating it again would put messages where readers have already passed (a silent loss). A
   * sweep deletes only objects older than its `retentionMs`, and every number from `next` on was
   * written after `knownAt`: so after half the retention, find the head again (which is never
   * deleted) instead of trusting `next`. A writer without `retentionMs` cannot know what another
   * process sweeps with; it looks again after {@link STALE_WITHOUT_RETENTION_MS} idle, which keeps it
   * safe next to sweepers whose retention is at least twice that.
   */
  private stale(): boolean {
    const limit = this.options.retentionMs === undefined ? STALE_WITHOUT_RETENTION_MS : this.options.retentionMs / 2;
    return Date.now() - this.knownAt > limit;
  }
}

function publishFailure(error: unknown, messageId: string): Error {
  if (AuthenticationError.isInstance(error) || TopologyError.isInstance(error) || UnsupportedError.isInstance(error)) {
    return error;
  }
  const reason = MqError.isInstance(error) ? error.message.replace(/^s3: /, '') : String(error);
  return new PublishError({
    driver: DRIVER_NAME,
    messageId,
    message: `message ${messageId} was not written: ${reason}`,
    cause: error,
  });
}
