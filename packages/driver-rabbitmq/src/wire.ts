import { type JsonValue, type Message, type MessageHeaders, newMessageId, type Received } from '@mq-drivers/core';
import type { Message as AmqpMessage, Options } from 'amqplib';
import { H } from './topology.js';

/**
 * The wire format (TOPOLOGY.md, "Messages"): body JSON in UTF-8, `content-type:
 * application/json`, persistent, `message-id` = id, `timestamp` = publish time in seconds,
 * user headers as AMQP string headers, plus reserved `x-mq-*` headers.
 */
export const CONTENT_TYPE = 'application/json';

/**
 * Headers RabbitMQ sets itself (dead-lettering, quorum queues, RabbitMQ 4's `x-acquired-count`):
 * never handed to handlers as user headers, and refused at publish (the broker would overwrite
 * or drop them; a user `x-death` makes it log "invalid x-death header" when dead-lettering).
 * RabbitMQ header names are case-sensitive, so `X-Death` is an ordinary header.
 */
const BROKER_HEADERS = new Set(['x-death', 'x-delivery-count', 'x-acquired-count']);
const BROKER_HEADER_PREFIXES = ['x-first-death-', 'x-last-death-'];
/**
 * Headers RabbitMQ interprets at publish: sender-selected distribution (`CC`, `BCC`: extra
 * routing keys, which must be arrays; a string closes the publishing channel). Refused at publish.
 */
const ROUTING_HEADERS = new Set(['CC', 'BCC']);

function isBrokerHeader(key: string): boolean {
  return BROKER_HEADERS.has(key) || BROKER_HEADER_PREFIXES.some((prefix) => key.startsWith(prefix));
}

/**
 * Not a user header: ours (`x-mq-*`), the broker's, or `CC`/`BCC` of another client's message
 * (its routing; republishing them as strings on a retry would close the publishing channel).
 */
export function isReservedHeader(key: string): boolean {
  return key.toLowerCase().startsWith('x-mq-') || isBrokerHeader(key) || ROUTING_HEADERS.has(key);
}

/**
 * `capabilities.refusedHeaders`: the broker's own headers and CC/BCC, refused at publish by core
 * (they would not reach handlers as sent). Core already refuses `x-mq-*`.
 */
export const REFUSED_HEADERS: readonly string[] = Object.freeze([
  ...BROKER_HEADERS,
  ...BROKER_HEADER_PREFIXES.map((prefix) => `${prefix}*`),
  ...ROUTING_HEADERS,
]);

export interface WireFields {
  id: string;
  publishedAtMs: number;
  /** Extra reserved headers (attempt, topic, error...). */
  reserved?: Record<string, string | number>;
  headers: MessageHeaders;
}

/** AMQP properties for a message of ours. */
export function publishProperties({ id, publishedAtMs, reserved, headers }: WireFields): Options.Publish {
  return {
    persistent: true,
    contentType: CONTENT_TYPE,
    messageId: id,
    timestamp: Math.floor(publishedAtMs / 1000),
    headers: { ...headers, [H.publishedAt]: publishedAtMs, ...reserved },
  };
}

/**
 * Properties of a plain publish (no user headers, no extra reserved headers), refilled for every
 * message: one object per publisher instead of two per message. This is safe because amqplib
 * encodes the properties synchronously inside `channel.publish` and keeps no reference to them.
 * It is also cheaper for amqplib: `Args.publish` makes the headers object the prototype of a new
 * one (`Object.create(headers)`), and a fresh prototype per message costs V8 a prototype-map
 * set-up each time (about 3 µs per message, measured), while a reused one is set up once.
 * The encoded bytes are those of {@link publishProperties} with empty `headers`.
 */
export class PlainProperties {
  private readonly headers: Record<string, number> = { [H.publishedAt]: 0 };
  private readonly properties = {
    persistent: true,
    contentType: CONTENT_TYPE,
    messageId: '',
    timestamp: 0,
    headers: this.headers,
  };

  /** The properties for message `id` published at `publishedAtMs`; valid until the next call. */
  fill(id: string, publishedAtMs: number): Options.Publish {
    this.properties.messageId = id;
    this.properties.timestamp = Math.floor(publishedAtMs / 1000);
    this.headers[H.publishedAt] = publishedAtMs;
    return this.properties;
  }
}

/** True when `headers` has no keys (without allocating, unlike `Object.keys`). */
export function isEmpty(headers: Record<string, unknown>): boolean {
  for (const _ in headers) return false;
  return true;
}

function headerString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return value.toISOString();
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function headerNumber(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' || Buffer.isBuffer(value)) {
    const parsed = Number(String(value));
    return Number.isFinite(parsed) ? parsed : undefined;
  }
  return undefined;
}

/** User headers of a received message: every non-reserved header, as a string. */
export function userHeaders(raw: Record<string, unknown> | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!raw) return headers;
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined || isReservedHeader(key)) continue;
    headers[key] = headerString(value);
  }
  return headers;
}

/**
 * Reads a delivery (ours or a non-JS client's) for core's engine, which parses the body (and
 * dead-letters one that is not JSON). Missing pieces get documented defaults: no `message-id` →
 * a new id; no `x-mq-attempt` → 1; no `x-mq-published-at` → `timestamp` (seconds) → now; no
 * `x-mq-topic` → the routing key. `extra` fields (a transport's own) are added to the same object:
 * spreading the result into another one per message doubled the consumer's CPU (measured).
 */
export function decode<T extends object = object>(
  msg: AmqpMessage,
  segment: string,
  fixedTopic: string | undefined,
  extra?: T,
): Received & T {
  const properties = msg.properties;
  const raw = (properties.headers ?? {}) as Record<string, unknown>;
  const id = typeof properties.messageId === 'string' && properties.messageId.length > 0 ? properties.messageId : newMessageId();
  const publishedMs =
    headerNumber(raw[H.publishedAt]) ??
    (typeof properties.timestamp === 'number' ? properties.timestamp * 1000 : undefined) ??
    Date.now();
  const received: Received = {
    id,
    json: msg.content.toString('utf8'),
    segment,
    topic: fixedTopic ?? (raw[H.topic] !== undefined ? headerString(raw[H.topic]) : msg.fields.routingKey),
    publishedAt: new Date(publishedMs),
    attempt: Math.max(1, Math.floor(headerNumber(raw[H.attempt]) ?? 1)),
    headers: userHeaders(raw),
  };
  return Object.assign(received, extra) as Received & T;
}

/** A dead letter's message: its body parsed, or its text when it is not JSON (why it is a dead letter). */
export function deadMessage({ id, json, segment, topic, publishedAt, attempt, headers }: Received): Message {
  let body: JsonValue;
  try {
    body = JSON.parse(json as string) as JsonValue;
  } catch {
    body = json as string;
  }
  return Object.freeze({ id, body, segment, topic, publishedAt, attempt, headers: Object.freeze({ ...headers }) });
}

/** Approximate encoded size of a headers table; amqplib refuses tables over 64 KiB. */
export function headersTableBytes(headers: Record<string, string>): number {
  let bytes = 4;
  for (const [key, value] of Object.entries(headers)) bytes += 1 + Buffer.byteLength(key) + 5 + Buffer.byteLength(value);
  return bytes;
}

/** Leaves room for the reserved headers the driver adds. */
export const MAX_USER_HEADER_BYTES = 60 * 1024;
