import { type BackoffOptions, DEFAULT_BACKOFF, DEFAULT_PREFETCH, InvalidArgumentError, type MqError } from '@mq-drivers/core';
import type { ChannelModel, SocketOptions } from 'amqplib';

export const DRIVER_NAME = 'rabbitmq';

/** RabbitMQ 4's default `max_message_size` (16 MiB); older brokers allow more, so this is safe everywhere. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Options of {@link createRabbitMqDriver}. Every field is optional except a way to reach the broker. */
export interface RabbitMqDriverOptions {
  /**
   * Broker URL, `amqp://user:pass@host:5672/vhost` or `amqps://...`. Several URLs (a cluster):
   * each connection attempt tries them in turn, starting after the last one that worked.
   * Required unless {@link connection} is given.
   */
  url?: string | readonly string[];
  /**
   * An amqplib connection (`await amqplib.connect(...)`) that you own. The driver opens its
   * channels on it, never closes it, and cannot reconnect it: once it closes, every call rejects
   * with `ConnectionError`. Mutually exclusive with {@link url}.
   */
  connection?: ChannelModel;
  /** AMQP heartbeat in seconds (0 disables). Default 10; a URL `?heartbeat=` query wins. */
  heartbeatSeconds?: number;
  /** Connection name shown by `rabbitmqctl list_connections client_properties` and the management UI. */
  connectionName?: string;
  /** Default `prefetch` for subscriptions that do not set one. Default 10 (core's `DEFAULT_PREFETCH`). */
  prefetch?: number;
  /**
   * Type of the durable queues (task kinds, named subscriptions, their dead-letter queues).
   * `quorum` for replicated queues on a cluster. Ephemeral subscription queues are always
   * classic queues with `x-expires`. Changing it for existing queues fails with `TopologyError`
   * (RabbitMQ cannot convert a queue). Default `classic`.
   */
  queueType?: 'classic' | 'quorum';
  /**
   * Quorum queues only: the broker dead-letters a message returned (not acknowledged) this many
   * times, e.g. by consumers that crash on it. Our own attempt count (`maxAttempts`) does the
   * usual work; this bounds poison messages that kill the process. Default 20.
   */
  deliveryLimit?: number;
  /**
   * How long a publish may wait for the broker's confirm (including time spent reconnecting)
   * before it rejects with `PublishError`. Default 30000.
   */
  publishTimeoutMs?: number;
  /**
   * Bound for one connection attempt (TCP + AMQP handshake), and for calls waiting on a
   * reconnect. The first use of an unreachable broker rejects with `ConnectionError` after at
   * most this long per URL. Default 10000.
   */
  connectTimeoutMs?: number;
  /** Delay between reconnect attempts: exponential from `baseMs` to `maxMs`, with jitter. Default `{baseMs: 100, maxMs: 10000}`. */
  reconnectBackoff?: BackoffOptions;
  /** Delay before a failed message is delivered again (per failed attempt). Default core's `{baseMs: 1000, maxMs: 60000}`. */
  redeliveryBackoff?: BackoffOptions;
  /** Largest encoded message (JSON body + header keys and values) accepted, in bytes. Default 16 MiB. */
  maxMessageBytes?: number;
  /** First word of every exchange and queue name (see TOPOLOGY.md). Dotted words. Default `mq`. */
  prefix?: string;
  /**
   * Disable Nagle's algorithm on the socket. amqplib's own default is `false`, which adds tens of
   * milliseconds of latency at moderate rates; the driver's default is `true`.
   */
  noDelay?: boolean;
  /** Extra socket/TLS options handed to amqplib (`ca`, `cert`, `key`, `servername`, ...). */
  socketOptions?: SocketOptions;
  /**
   * How long the queue of an ephemeral subscription survives without a consumer (RabbitMQ
   * `x-expires`) when the driver could not delete it: while the driver reconnects (what is
   * published meanwhile is kept), or after the process died. Default 300000 (five minutes).
   */
  ephemeralQueueExpiresMs?: number;
  /**
   * How long the dead-letter queue of an ephemeral subscription survives unused after the
   * subscription is gone (RabbitMQ `x-expires`). Default 86400000 (one day).
   */
  ephemeralDeadLetterExpiresMs?: number;
  /**
   * Called with problems that no pending call can report: connection lost (the driver
   * reconnects), a consumer cancelled by the broker (the driver re-declares and resumes), a
   * failed retry publish. Default: `process.emitWarning`.
   */
  onError?: (error: MqError) => void;
}

export interface ResolvedOptions {
  urls: string[];
  connection: ChannelModel | undefined;
  heartbeatSeconds: number;
  connectionName: string | undefined;
  prefetch: number;
  queueType: 'classic' | 'quorum';
  deliveryLimit: number;
  publishTimeoutMs: number;
  connectTimeoutMs: number;
  reconnectBackoff: BackoffOptions;
  redeliveryBackoff: BackoffOptions;
  maxMessageBytes: number;
  prefix: string;
  noDelay: boolean;
  socketOptions: SocketOptions;
  ephemeralDeadLetterExpiresMs: number;
  ephemeralQueueExpiresMs: number;
  onError: (error: MqError) => void;
}

const KNOWN = new Set([
  'url',
  'connection',
  'heartbeatSeconds',
  'connectionName',
  'prefetch',
  'queueType',
  'deliveryLimit',
  'publishTimeoutMs',
  'connectTimeoutMs',
  'reconnectBackoff',
  'redeliveryBackoff',
  'maxMessageBytes',
  'prefix',
  'noDelay',
  'socketOptions',
  'ephemeralDeadLetterExpiresMs',
  'ephemeralQueueExpiresMs',
  'onError',
]);

function bad(argument: string, value: unknown, message: string): never {
  throw new InvalidArgumentError({ driver: DRIVER_NAME, argument: `options.${argument}`, value, message });
}

function integer(raw: Record<string, unknown>, key: string, fallback: number, min: number, max: number): number {
  const value = raw[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    bad(key, value, `must be a whole number from ${min} to ${max}`);
  }
  return value;
}

function backoff(raw: Record<string, unknown>, key: string, fallback: BackoffOptions): BackoffOptions {
  const value = raw[key];
  if (value === undefined) return fallback;
  const b = value as Partial<BackoffOptions> | null;
  if (
    b === null ||
    typeof b !== 'object' ||
    typeof b.baseMs !== 'number' ||
    typeof b.maxMs !== 'number' ||
    !Number.isFinite(b.baseMs) ||
    !Number.isFinite(b.maxMs) ||
    b.baseMs < 0 ||
    b.maxMs < b.baseMs
  ) {
    bad(key, value, 'must be {baseMs, maxMs} with 0 <= baseMs <= maxMs');
  }
  return { baseMs: b.baseMs, maxMs: b.maxMs };
}

function checkUrl(url: unknown, argument: string): string {
  if (typeof url !== 'string') bad(argument, url, 'must be an amqp:// or amqps:// URL string');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    bad(argument, redact(url), 'is not a valid URL');
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    bad(argument, redact(url), 'must use the amqp:// or amqps:// scheme');
  }
  if (!parsed.hostname) bad(argument, redact(url), 'must name a host');
  return url;
}

/** The URL with its password replaced, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}

/** `host:port` of a URL, as named in `ConnectionError`. */
export function hostOf(url: string): string {
  try {
    const parsed = new URL(url);
    const port = parsed.port || (parsed.protocol === 'amqps:' ? '5671' : '5672');
    return `${parsed.hostname}:${port}`;
  } catch {
    return url;
  }
}

const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export function resolveOptions(options: RabbitMqDriverOptions | undefined): ResolvedOptions {
  if (options === undefined || options === null || typeof options !== 'object') {
    throw new InvalidArgumentError({
      driver: DRIVER_NAME,
      argument: 'options',
      value: options,
      message: 'must be an object with `url` (or `connection`)',
    });
  }
  const raw = options as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!KNOWN.has(key) && raw[key] !== undefined)
      bad(key, raw[key], `is not an option of this driver (known: ${[...KNOWN].join(', ')})`);
  }
  const connection = raw.connection as ChannelModel | undefined;
  if (connection !== undefined && (connection === null || typeof (connection as ChannelModel).createChannel !== 'function')) {
    bad('connection', connection, 'must be an amqplib connection (the result of amqplib.connect)');
  }
  let urls: string[] = [];
  if (raw.url !== undefined) {
    if (connection !== undefined) bad('url', redactAny(raw.url), 'cannot be given together with `connection`');
    urls = Array.isArray(raw.url) ? raw.url.map((u, i) => checkUrl(u, `url[${i}]`)) : [checkUrl(raw.url, 'url')];
    if (urls.length === 0) bad('url', raw.url, 'must name at least one URL');
  } else if (connection === undefined) {
    bad('url', undefined, 'is required (or pass an amqplib `connection`)');
  }
  const queueType = raw.queueType ?? 'classic';
  if (queueType !== 'classic' && queueType !== 'quorum') bad('queueType', queueType, 'must be "classic" or "quorum"');
  const prefix = raw.prefix ?? 'mq';
  if (typeof prefix !== 'string' || !PREFIX.test(prefix) || prefix.length > 32) {
    bad('prefix', prefix, 'must be 1-32 characters of dotted words (letters, digits, "_", "-")');
  }
  const connectionName = raw.connectionName;
  if (connectionName !== undefined && (typeof connectionName !== 'string' || connectionName.length === 0)) {
    bad('connectionName', connectionName, 'must be a non-empty string');
  }
  const noDelay = raw.noDelay ?? true;
  if (typeof noDelay !== 'boolean') bad('noDelay', noDelay, 'must be a boolean');
  const socketOptions = raw.socketOptions ?? {};
  if (socketOptions === null || typeof socketOptions !== 'object') bad('socketOptions', socketOptions, 'must be an object');
  const onError = raw.onError ?? ((error: MqError) => process.emitWarning(error));
  if (typeof onError !== 'function') bad('onError', onError, 'must be a function');
  return {
    urls,
    connection,
    heartbeatSeconds: integer(raw, 'heartbeatSeconds', 10, 0, 3600),
    connectionName: connectionName as string | undefined,
    prefetch: integer(raw, 'prefetch', DEFAULT_PREFETCH, 1, 65_535),
    queueType,
    deliveryLimit: integer(raw, 'deliveryLimit', 20, 1, 1_000_000),
    publishTimeoutMs: integer(raw, 'publishTimeoutMs', 30_000, 1, 86_400_000),
    connectTimeoutMs: integer(raw, 'connectTimeoutMs', 10_000, 1, 600_000),
    reconnectBackoff: backoff(raw, 'reconnectBackoff', { baseMs: 100, maxMs: 10_000 }),
    redeliveryBackoff: backoff(raw, 'redeliveryBackoff', DEFAULT_BACKOFF),
    maxMessageBytes: integer(raw, 'maxMessageBytes', DEFAULT_MAX_MESSAGE_BYTES, 1, 512 * 1024 * 1024),
    prefix,
    noDelay,
    socketOptions: socketOptions as SocketOptions,
    ephemeralDeadLetterExpiresMs: integer(raw, 'ephemeralDeadLetterExpiresMs', 86_400_000, 1_000, 2_147_483_647),
    ephemeralQueueExpiresMs: integer(raw, 'ephemeralQueueExpiresMs', 300_000, 1_000, 2_147_483_647),
    onError: onError as (error: MqError) => void,
  };
}

function redactAny(value: unknown): unknown {
  if (typeof value === 'string') return redact(value);
  if (Array.isArray(value)) return value.map(redactAny);
  return value;
}
