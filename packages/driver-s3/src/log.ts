import { randomUUID } from 'node:crypto';
import { AuthenticationError, MqError, PublishError, TopologyError, UnsupportedError } from '@mq-drivers/core';
import { decodeRecords, type Keys, type LogRecord, type LogType } from './layout.js';
import { DRIVER_NAME, type ResolvedOptions } from './options.js';
import type { Store } from './store.js';

/** The head hint is rewritten every this many log objects; a new writer lists at most this many keys. */
const HINT_EVERY = 64;
const CACHE_SIZE = 256;

/** Reads log objects (immutable once written, so cached) and finds a log's head. */
export class LogReader {
  private readonly cache = new Map<string, LogRecord[]>();

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
    return records;
  }

  /** Highest sequence number written so far (0 for an empty log). */
  async head(segment: string, type: LogType): Promise<number> {
    const hint = (await this.store.getJson<{ seq?: number }>(this.keys.headHint(segment, type)))?.seq ?? 0;
    const listed = await this.store.list(this.keys.logDir(segment, type), {
      startAfter: hint > 0 ? this.keys.log(segment, type, hint) : undefined,
    });
    let head = hint;
    for (const entry of listed) head = Math.max(head, this.keys.logSeq(entry.key) ?? 0);
    return head;
  }

  /** Lowest sequence number still stored (head + 1 for an empty log). */
  async earliest(segment: string, type: LogType): Promise<number> {
    const first = await this.store.list(this.keys.logDir(segment, type), { limit: 1 });
    const seq = first[0] ? this.keys.logSeq(first[0].key) : undefined;
    return seq ?? (await this.head(segment, type)) + 1;
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

  constructor(
    private readonly store: Store,
    private readonly keys: Keys,
    private readonly reader: LogReader,
    private readonly options: ResolvedOptions,
    private readonly ready: () => Promise<void>,
    readonly segment: string,
    readonly type: LogType,
  ) {}

  publish(line: string, id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const bytes = Buffer.byteLength(line) + 1;
      this.pending.push({ line, bytes, id, resolve, reject });
      this.pendingBytes += bytes;
      if (this.writing) return;
      if (this.full()) this.start();
      // setImmediate, not now: publishes made in the same tick (a burst) still join this batch.
      else if (this.pending.length >= this.lastBatch) this.soon ??= setImmediate(() => this.start());
      else this.timer ??= setTimeout(() => this.start(), this.options.flushIntervalMs);
    });
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
    const body = `${batch.map((p) => p.line).join('\n')}\n`;
    const token = randomUUID();
    const deadline = Date.now() + this.options.requestTimeoutMs;
    try {
      await this.ready();
      this.next ??= (await this.reader.head(this.segment, this.type)) + 1;
      for (let lost = 0; ; ) {
        if (Date.now() > deadline) {
          throw new PublishError({
            driver: DRIVER_NAME,
            message: `could not claim a log number for ${this.segment} within ${this.options.requestTimeoutMs} ms (${lost} numbers taken by other writers)`,
          });
        }
        const seq: number = this.next;
        const key = this.keys.log(this.segment, this.type, seq);
        const result = await this.store.create(key, body, { batch: token, count: String(batch.length) });
        let ours = result.created;
        if (!ours && result.retried) {
          // The SDK retried: the 412 may answer our own first attempt. The batch token tells.
          ours = (await this.store.get(key))?.metadata.batch === token;
        }
        if (ours) {
          this.next = seq + 1;
          if (seq % HINT_EVERY === 0) {
            this.store.put(this.keys.headHint(this.segment, this.type), JSON.stringify({ seq })).catch(() => undefined);
          }
          for (const p of batch) p.resolve();
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
