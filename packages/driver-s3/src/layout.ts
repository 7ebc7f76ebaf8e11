import type { JsonValue, Message, PreparedPublish } from '@mq-drivers/core';

/** The two logs of a segment. */
export type LogType = 'task' | 'share';

/** 16-digit zero-padded sequence number: keys sort in log order. */
export function seqName(seq: number): string {
  return String(seq).padStart(16, '0');
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Message ids may hold `/`, `%`, `?`…: keep keys flat and readable. */
export function encodeId(id: string): string {
  return encodeURIComponent(id);
}

/** Every key the driver reads or writes (LAYOUT.md documents them). */
export class Keys {
  readonly root: string;
  constructor(prefix: string) {
    this.root = prefix ? `${prefix}/` : '';
  }

  segment(segment: string): string {
    return `${this.root}${segment}/`;
  }
  logDir(segment: string, type: LogType): string {
    return `${this.segment(segment)}${type === 'task' ? 'tasks' : 'shares'}/log/`;
  }
  log(segment: string, type: LogType, seq: number): string {
    return `${this.logDir(segment, type)}${seqName(seq)}.jsonl`;
  }
  /** Parses the sequence number out of a log key; undefined for other keys. */
  logSeq(key: string): number | undefined {
    const match = /\/(\d{16})\.jsonl$/.exec(key);
    return match ? Number(match[1]) : undefined;
  }
  headHint(segment: string, type: LogType): string {
    return `${this.segment(segment)}${type === 'task' ? 'tasks' : 'shares'}/head.json`;
  }

  /** Parent of every kind's folder (listed with a delimiter to find the registered kinds). */
  kindsDir(segment: string): string {
    return `${this.segment(segment)}tasks/kinds/`;
  }
  kind(segment: string, kind: string): string {
    return `${this.kindsDir(segment)}${kind}/`;
  }
  registration(segment: string, kind: string): string {
    return `${this.kind(segment, kind)}registration.json`;
  }
  watermark(segment: string, kind: string): string {
    return `${this.kind(segment, kind)}watermark.json`;
  }
  /** `workers/<owner>`: presence of a live worker, rewritten every half lease (deleted on close). */
  workers(segment: string, kind: string): string {
    return `${this.kind(segment, kind)}workers/`;
  }
  claims(segment: string, kind: string): string {
    return `${this.kind(segment, kind)}claims/`;
  }
  /** `claims/<seq>-<start>-<epoch>`: a lease on messages [start, end) of log object seq. */
  claim(segment: string, kind: string, seq: number, start: number, epoch: number): string {
    return `${this.claims(segment, kind)}${seqName(seq)}-${pad(start, 8)}-${pad(epoch, 6)}.json`;
  }
  /** Parses a claim key (the inverse of {@link claim}); undefined for other keys. */
  claimOf(key: string): { seq: number; start: number; epoch: number } | undefined {
    const match = /(\d{16})-(\d{8})-(\d{6})\.json$/.exec(key);
    return match ? { seq: Number(match[1]), start: Number(match[2]), epoch: Number(match[3]) } : undefined;
  }
  done(segment: string, kind: string): string {
    return `${this.kind(segment, kind)}done/`;
  }
  /** `done/<seq>-<start>-<end>`: every message of the claim [start, end) is resolved. */
  doneMarker(segment: string, kind: string, seq: number, start: number, end: number): string {
    return `${this.done(segment, kind)}${seqName(seq)}-${pad(start, 8)}-${pad(end, 8)}`;
  }

  /** Parses a done marker key (the inverse of {@link doneMarker}); undefined for other keys. */
  doneOf(key: string): { seq: number; start: number; end: number } | undefined {
    const match = /(\d{16})-(\d{8})-(\d{8})$/.exec(key);
    return match ? { seq: Number(match[1]), start: Number(match[2]), end: Number(match[3]) } : undefined;
  }

  /** Retry area of a kind or a share subscription. */
  retryDir(owner: string): string {
    return `${owner}retry/`;
  }
  retryClaimDir(owner: string): string {
    return `${owner}retry-claims/`;
  }
  /** `retry/<due ms>-<attempt>-<id>.json`: keys sort by due time. */
  retry(owner: string, dueMs: number, attempt: number, id: string): string {
    return `${this.retryDir(owner)}${pad(Math.max(0, Math.floor(dueMs)), 13)}-${pad(attempt, 4)}-${encodeId(id)}.json`;
  }
  /** The due time (ms) of a retry object's name `<due>-<attempt>-<id>.json`; undefined for other names. */
  retryDueOf(name: string): number | undefined {
    const match = /^(\d{13})-(\d{4})-(.+)\.json$/.exec(name);
    return match ? Number(match[1]) : undefined;
  }
  retryClaim(owner: string, retryName: string, epoch: number): string {
    return `${this.retryClaimDir(owner)}${retryName}~${pad(epoch, 6)}`;
  }
  /** Parses a retry claim's name `<retry name>~<epoch>` (the inverse of {@link retryClaim}). */
  retryClaimOf(name: string): { retryName: string; epoch: number } | undefined {
    const match = /^(.+)~(\d{6})$/.exec(name);
    return match ? { retryName: match[1]!, epoch: Number(match[2]) } : undefined;
  }

  subscription(segment: string, name: string): string {
    return `${this.segment(segment)}shares/subscriptions/${name}/`;
  }
  cursor(segment: string, name: string): string {
    return `${this.subscription(segment, name)}cursor.json`;
  }

  deadLetters(segment: string, target: { kind?: string; subscription?: string }): string {
    return target.kind !== undefined
      ? `${this.segment(segment)}dead-letters/kinds/${target.kind}/`
      : `${this.segment(segment)}dead-letters/subscriptions/${target.subscription}/`;
  }
  deadLetter(dir: string, failedAtMs: number, id: string): string {
    return `${dir}${pad(failedAtMs, 13)}-${encodeId(id)}.json`;
  }

  probe(token: string): string {
    return `${this.root}.mq-probe/${token}`;
  }
}

/** `registration.json` of a kind: it receives every task in log objects from `seq` on. */
export interface Registration {
  kind: string;
  seq: number;
  registeredAt: string;
}

/** One JSON Lines record of a log object: the message envelope. */
export interface LogRecord {
  id: string;
  type: LogType;
  /** The share topic (absent for tasks). */
  topic?: string;
  headers: Record<string, string>;
  /** ISO time at the producer. */
  publishedAt: string;
  body: JsonValue;
}

/** A message kept in a retry or dead-letter object. */
export interface StoredMessage {
  id: string;
  segment: string;
  topic: string;
  headers: Record<string, string>;
  publishedAt: string;
  body: JsonValue;
  attempt: number;
}

/** Encodes one record; the body JSON (already validated by core) is embedded as it is. */
export function encodeRecord(prepared: PreparedPublish, type: LogType): string {
  const topic = prepared.topic === undefined ? '' : `,"topic":${JSON.stringify(prepared.topic)}`;
  return (
    `{"id":${JSON.stringify(prepared.id)},"type":"${type}"${topic},"headers":${JSON.stringify(prepared.headers)},` +
    `"publishedAt":"${prepared.publishedAt.toISOString()}","body":${prepared.json}}`
  );
}

export function decodeRecords(text: string): LogRecord[] {
  const records: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.length > 0) records.push(JSON.parse(line) as LogRecord);
  }
  return records;
}

export function toMessage(stored: StoredMessage): Message {
  return Object.freeze({
    id: stored.id,
    body: structuredClone(stored.body),
    segment: stored.segment,
    topic: stored.topic,
    publishedAt: new Date(stored.publishedAt),
    attempt: stored.attempt,
    headers: Object.freeze({ ...stored.headers }),
  });
}

export function storedFromRecord(record: LogRecord, segment: string, topic: string, attempt: number): StoredMessage {
  return {
    id: record.id,
    segment,
    topic,
    headers: record.headers,
    publishedAt: record.publishedAt,
    body: record.body,
    attempt,
  };
}
