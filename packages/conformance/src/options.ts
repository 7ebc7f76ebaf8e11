import type { Driver } from '@mq-drivers/core';

/**
 * Harness settings for one run of the suite. These describe the TEST SET-UP, never the driver:
 * what a driver can do is read from `driver.capabilities`.
 */
export interface ConformanceOptions {
  /** Shown in the suite title, e.g. `rabbitmq`. */
  name: string;
  /**
   * Returns a FRESH driver on the same broker every time it is called. The suite calls it many
   * times per case (the producer and every worker get their own driver) and closes every driver
   * it created, also when a case fails.
   */
  createDriver: () => Driver | Promise<Driver>;
  /** Deadline for every expected event (a delivery, a dead letter, a close). Default 10000. */
  timeoutMs?: number;
  /**
   * Length of the watch window in which UNexpected deliveries (duplicates, late redeliveries,
   * leaks) are looked for after the expected ones arrived. Default 500. Longer is stricter.
   */
  quietMs?: number;
  /** Messages per case in the bulk cases (tasks, shares, ordering). Default 30, minimum 6. */
  messageCount?: number;
  /**
   * Harness hook that breaks every connection to the broker (e.g. `rabbitmqctl
   * close_all_connections`) and resolves once it did. Without it the reconnect group is a
   * visible skip.
   */
  reconnect?: () => Promise<void>;
  /**
   * The broker's URL as `connect()` takes it, with credentials where the broker uses them (e.g.
   * `amqp://guest:guest@127.0.0.1:5672`, `s3://KEY:SECRET@bucket/prefix?endpoint=…`). The bad-input
   * group derives broken and wrong-credential URLs holding a secret from it and checks that no
   * error carries the secret. Without it that case is a visible skip.
   */
  url?: string;
  /** Opens a driver from a URL, for the cases that use {@link url}. Default: core's `connect(url)`. */
  connect?: (url: string) => Driver | Promise<Driver>;
  /**
   * Run the cases of a group concurrently (vitest `describe.concurrent`). Cases are isolated by
   * segment, so this is safe for a correct driver. Default true.
   */
  concurrent?: boolean;
}

export interface ResolvedOptions {
  name: string;
  createDriver: () => Driver | Promise<Driver>;
  timeoutMs: number;
  quietMs: number;
  messageCount: number;
  reconnect: (() => Promise<void>) | undefined;
  url: string | undefined;
  connect: ((url: string) => Driver | Promise<Driver>) | undefined;
  concurrent: boolean;
}

function positive(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new TypeError(`@mq-drivers/conformance: option \`${name}\` must be a number >= ${min}, got ${String(value)}`);
  }
  return value;
}

export function resolveOptions(options: ConformanceOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('@mq-drivers/conformance: options must be an object with `name` and `createDriver`');
  }
  if (typeof options.name !== 'string' || options.name.length === 0) {
    throw new TypeError('@mq-drivers/conformance: missing required option `name` (a non-empty string)');
  }
  if (typeof options.createDriver !== 'function') {
    throw new TypeError('@mq-drivers/conformance: missing required option `createDriver` (a function returning a fresh driver)');
  }
  const known = ['name', 'createDriver', 'timeoutMs', 'quietMs', 'messageCount', 'reconnect', 'url', 'connect', 'concurrent'];
  const unknown = Object.keys(options).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw new TypeError(
      `@mq-drivers/conformance: unknown option(s) ${unknown.map((key) => `\`${key}\``).join(', ')} (known: ${known.join(', ')})`,
    );
  }
  if (options.reconnect !== undefined && typeof options.reconnect !== 'function') {
    throw new TypeError('@mq-drivers/conformance: option `reconnect` must be a function');
  }
  if (options.url !== undefined && (typeof options.url !== 'string' || !/^[a-z][a-z0-9+.-]*:/i.test(options.url))) {
    throw new TypeError(
      '@mq-drivers/conformance: option `url` must be a URL string with a scheme, e.g. amqp://guest:guest@127.0.0.1',
    );
  }
  if (options.connect !== undefined && typeof options.connect !== 'function') {
    throw new TypeError('@mq-drivers/conformance: option `connect` must be a function (url) => driver');
  }
  return {
    name: options.name,
    createDriver: options.createDriver,
    timeoutMs: positive('timeoutMs', options.timeoutMs, 10_000, 50),
    quietMs: positive('quietMs', options.quietMs, 500, 10),
    messageCount: Math.floor(positive('messageCount', options.messageCount, 30, 6)),
    reconnect: options.reconnect,
    url: options.url,
    connect: options.connect,
    concurrent: options.concurrent ?? true,
  };
}
