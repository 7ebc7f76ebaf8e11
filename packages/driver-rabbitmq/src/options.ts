import {
  type BackoffOptions,
  backoffOption,
  DEFAULT_BACKOFF,
  DEFAULT_PREFETCH,
  InvalidArgumentError,
  integerOption,
  type MqError,
  readOptions,
  redactUrl as redact,
  redactValue,
} from '@mq-drivers/core';

export { redact };

import type { ChannelModel, SocketOptions } from 'amqplib';

export const DRIVER_NAME = 'rabbitmq';

/** RabbitMQ 4's default `max_message_size` (16 MiB); older brokers allow more, so this is safe everywhere. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Options of {@link createRabbitMqDriver}. Every field is optional except a way to reach the broker. */
export interface RabbitMqDriverOptions {
  /**
   * Broker URL, `amqp://user:pass@host:5672/vhost` or `amqps://...`. A cluster: several hosts in
   * one URL, comma-separated (`amqp://user:pass@host1:5672,host2:5673/vhost`, sharing
   * credentials, vhost and query), or several URLs. Each connection attempt tries the hosts in
   * turn, starting with the last one that worked. Query parameters: those amqplib reads
   * (`heartbeat`, `frameMax`, `channelMax`, `locale`, `maxFrameSize`); others are refused.
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

/** Throws `InvalidArgumentError`; the value it carries has its passwords redacted. */
function bad(argument: string, value: unknown, message: string): never {
  throw new InvalidArgumentError({ driver: DRIVER_NAME, argument: `options.${argument}`, value: redactValue(value), message });
}

function integer(raw: Record<string, unknown>, key: string, fallback: number, min: number, max: number): number {
  return integerOption(DRIVER_NAME, raw, key, fallback, min, max);
}

/** A `{baseMs, maxMs}` option (core's check), with `maxMs` not below `baseMs`. */
function backoff(raw: Record<string, unknown>, key: string, fallback: BackoffOptions): BackoffOptions {
  const value = backoffOption(DRIVER_NAME, raw, key, fallback);
  if (value.maxMs < value.baseMs) bad(key, raw[key], 'must be {baseMs, maxMs} with 0 <= baseMs <= maxMs');
  return value;
}

/** URL query parameters amqplib reads (lib/connect.js); anything else would be ignored silently. */
const QUERY_PARAMETERS = ['heartbeat', 'frameMax', 'channelMax', 'locale', 'maxFrameSize'];

const FORM = 'amqp://user:pass@host:port/vhost (several hosts: amqp://user:pass@host1:port1,host2:port2/vhost)';

/**
 * Expands one URL option (a URL naming one host, or several comma-separated hosts) into one URL
 * per host, sharing credentials, vhost and query. Every error names what is wrong and shows the
 * URL with its password redacted; none keeps the URL parser's error (it holds the whole input).
 */
export function expandUrl(url: unknown, argument: string): string[] {
  if (typeof url !== 'string') bad(argument, url, `must be a URL string of the form ${FORM}`);
  const shown = redact(url);
  const parts = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([\s\S]*)$/.exec(url);
  if (!parts) bad(argument, url, `${shown} is not a URL of the form ${FORM}`);
  const scheme = parts[1]!.toLowerCase();
  if (scheme !== 'amqp' && scheme !== 'amqps')
    bad(argument, url, `${shown} must use the amqp:// or amqps:// scheme, not ${scheme}:`);
  const authority = parts[2]!;
  const rest = parts[3]!;
  if (rest.includes('@')) {
    bad(
      argument,
      url,
      `${shown}: the user name or password seems to contain "/", "?" or "#"; percent-encode them (%2F, %3F, %23)`,
    );
  }
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at + 1) : '';
  const hostList = authority.slice(at + 1);
  if (hostList === '') bad(argument, url, `${shown} names no host`);
  const urls: string[] = [];
  for (const host of hostList.split(',')) {
    const match = /^(\[[^\]]*\]|[^:[\]]*)(?::([^:]*))?$/.exec(host);
    if (!match) bad(argument, url, `host "${host}" of ${shown} is not of the form host or host:port`);
    const name = match[1]!;
    const port = match[2];
    if (name === '')
      bad(
        argument,
        url,
        `${shown} names an empty host${hostList.includes(',') ? ' (two commas in a row, or a comma at an end?)' : ''}`,
      );
    if (port !== undefined && port !== '' && (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65_535)) {
      bad(argument, url, `port "${port}" of host "${name}" in ${shown} must be a number from 1 to 65535`);
    }
    const single = `${scheme}://${userinfo}${host}${rest}`;
    let parsed: URL | undefined;
    try {
      parsed = new URL(single);
    } catch {
      parsed = undefined;
    }
    if (!parsed?.hostname) bad(argument, url, `host "${name}" in ${shown} is not a valid host name`);
    for (const key of parsed.searchParams.keys()) {
      if (!QUERY_PARAMETERS.includes(key)) {
        bad(argument, url, `${shown} has the unknown query parameter "${key}" (known: ${QUERY_PARAMETERS.join(', ')})`);
      }
    }
    urls.push(single);
  }
  return urls;
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
  // Core's check: only known keys (a typo is refused, with a did-you-mean); secrets are not echoed.
  const raw = readOptions(DRIVER_NAME, options, [...KNOWN]);
  const connection = raw.connection as ChannelModel | undefined;
  if (connection !== undefined && (connection === null || typeof (connection as ChannelModel).createChannel !== 'function')) {
    bad('connection', connection, 'must be an amqplib connection (the result of amqplib.connect)');
  }
  let urls: string[] = [];
  if (raw.url !== undefined) {
    if (connection !== undefined) bad('url', raw.url, 'cannot be given together with `connection`');
    if (Array.isArray(raw.url)) {
      if (raw.url.length === 0) bad('url', raw.url, 'must name at least one URL');
      urls = raw.url.flatMap((u, i) => expandUrl(u, `url[${i}]`));
    } else {
      urls = expandUrl(raw.url, 'url');
    }
    urls = [...new Set(urls)];
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
