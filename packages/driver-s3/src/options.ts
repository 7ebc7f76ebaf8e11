import type { S3Client } from '@aws-sdk/client-s3';
import {
  type BackoffOptions,
  InvalidArgumentError,
  type MqError,
  nearestName,
  readOptions,
  redactUrl,
  validateBackoffOptions,
} from '@mq-drivers/core';
import { isSecretName, REDACTED, shown } from './redact.js';

export const DRIVER_NAME = 's3';

/** Options of the S3 driver. Every field is optional except `bucket` (or a `client` plus `bucket`). */
export interface S3DriverOptions {
  /** Bucket that holds the logs. Required. URL: `s3://<bucket>/...`. */
  bucket: string;
  /** Key prefix under which everything is stored (no leading or trailing `/` needed). URL: the path. Default: none. */
  prefix?: string;
  /** S3 endpoint, e.g. `http://127.0.0.1:7480` for Ceph RGW or MinIO. Default: AWS for `region`. URL: `?endpoint=`. */
  endpoint?: string;
  /** Region. Default: `AWS_REGION`, else `us-east-1`. URL: `?region=`. */
  region?: string;
  /** Path-style addressing (`endpoint/bucket/key`). Default: true when `endpoint` is set, else false. URL: `?forcePathStyle=`. */
  forcePathStyle?: boolean;
  /** Static credentials. Default: the AWS SDK's default chain (env, profile, instance role). URL: `s3://KEY:SECRET@bucket`. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** An S3Client to use instead of creating one (the caller owns it: `close()` does not destroy it). */
  client?: S3Client;
  /** Create the bucket when it does not exist. Default false: a missing bucket is an error naming it. URL: `?createBucket=`. */
  createBucket?: boolean;
  /** Most messages written in one log object (one PUT). Default 1000. URL: `?maxBatchMessages=`. */
  maxBatchMessages?: number;
  /** Most bytes written in one log object. Default 8 MiB. URL: `?maxBatchBytes=`. */
  maxBatchBytes?: number;
  /**
   * How long a publish waits for company before its batch is written, in ms. While a write is in
   * flight the next batch fills without this wait, and a batch goes at once when it holds as many
   * publishes as the previous one (its publishers are back). Default 5. URL: `?flushIntervalMs=`.
   */
  flushIntervalMs?: number;
  /** Poll interval right after data was found, in ms. Default 50. URL: `?minPollIntervalMs=`. */
  minPollIntervalMs?: number;
  /** Poll interval when idle (it doubles from the minimum up to this), in ms. Default 1000. URL: `?maxPollIntervalMs=`. */
  maxPollIntervalMs?: number;
  /** Lease of a task claim, in ms: a dead worker's unacked tasks go to another after this. Renewed while handlers run. Default 30000. URL: `?leaseMs=`. */
  leaseMs?: number;
  /** Backoff before a failed message is redelivered. Default `{baseMs: 1000, maxMs: 60000}`. */
  redeliveryBackoff?: BackoffOptions;
  /**
   * Upper bound for one S3 request including SDK retries, in ms. A publish settles at most this long
   * after the call, also when it waited behind another write (it then rejects with a `PublishError`).
   * After a request that got no answer in time, the driver drops its idle pooled connections (they may
   * lead into a black hole), so consumers recover within about this long once the endpoint answers
   * again. Default 15000. URL: `?requestTimeoutMs=`.
   */
  requestTimeoutMs?: number;
  /** How often a durable share subscription saves its cursor, in ms. Default 1000. */
  cursorSaveIntervalMs?: number;
  /**
   * Check once that the endpoint enforces `If-None-Match: *` (two creates of a probe key; the second must fail).
   * Default true. Turn off only for an endpoint you know enforces it.
   */
  verifyConditionalWrites?: boolean;
  /**
   * Delete log objects older than this, in ms (by their S3 `LastModified`). Default: none, every
   * log object is kept. At least 1000. URL: `?retentionMs=`.
   *
   * A driver with this option sweeps every log it has written to or read from, every
   * `min(retentionMs / 2, 60 s)` (not at start-up). A sweep never deletes the highest-numbered
   * object of a log, and never a task log object that some registered kind has not finished (its
   * watermark is not past it), however old. Share log objects are deleted by age alone: a durable
   * subscription that falls further behind than the retention skips what was deleted and reports
   * the skip through `onError`. Set it on every driver that publishes to the swept segments (the
   * same value, or a smaller one): a publisher re-finds the log's head after being idle for half its
   * retention, so it never re-uses a number that was deleted (LAYOUT.md, "Retention").
   */
  retentionMs?: number;
  /**
   * Called with problems that no pending call can report: a share subscription that skipped log
   * objects deleted by retention, a failed retention sweep. Default: `process.emitWarning`.
   */
  onError?: (error: MqError) => void;
}

export interface ResolvedOptions {
  bucket: string;
  prefix: string;
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  credentials: S3DriverOptions['credentials'];
  client: S3Client | undefined;
  createBucket: boolean;
  maxBatchMessages: number;
  maxBatchBytes: number;
  flushIntervalMs: number;
  minPollIntervalMs: number;
  maxPollIntervalMs: number;
  leaseMs: number;
  redeliveryBackoff: BackoffOptions;
  requestTimeoutMs: number;
  cursorSaveIntervalMs: number;
  verifyConditionalWrites: boolean;
  retentionMs: number | undefined;
  onError: (error: MqError) => void;
}

/**
 * Rejects option `argument`. The message names the value (`(got ...)`), with a URL's password
 * hidden; the error's `value` is the value as given, or the redacted URL.
 */
function bad(argument: string, value: unknown, message: string): never {
  throw new InvalidArgumentError({
    driver: DRIVER_NAME,
    argument: `options.${argument}`,
    value: typeof value === 'string' ? redactUrl(value) : value,
    message: `${message} (got ${shown(value)})`,
  });
}

function num(raw: Record<string, unknown>, key: string, fallback: number, min: number, max: number): number {
  const value = raw[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    bad(key, value, `must be a number from ${min} to ${max}`);
  }
  return value;
}

function bool(raw: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = raw[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') bad(key, value, 'must be a boolean');
  return value;
}

/** Options that a URL query parameter of the same name can set, by the kind of value they take. */
const NUMERIC = [
  'maxBatchMessages',
  'maxBatchBytes',
  'flushIntervalMs',
  'minPollIntervalMs',
  'maxPollIntervalMs',
  'leaseMs',
  'requestTimeoutMs',
  'cursorSaveIntervalMs',
  'retentionMs',
] as const satisfies readonly (keyof S3DriverOptions)[];
const BOOLEAN = [
  'forcePathStyle',
  'createBucket',
  'verifyConditionalWrites',
] as const satisfies readonly (keyof S3DriverOptions)[];

/** Every option `createS3Driver` knows; any other key is refused (a typo must not pass silently). */
const KNOWN_OPTIONS: readonly (keyof S3DriverOptions)[] = [
  'bucket',
  'prefix',
  'endpoint',
  'region',
  'credentials',
  'client',
  'redeliveryBackoff',
  'onError',
  ...NUMERIC,
  ...BOOLEAN,
];

/** Smallest `retentionMs`: sweeps run every half retention, and clocks must agree within that. */
export const MIN_RETENTION_MS = 1000;

/** Upper bound of `retentionMs` (100 years): only keeps out values that dates cannot hold. */
const MAX_RETENTION_MS = 100 * 365 * 86_400_000;

function retention(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < MIN_RETENTION_MS || value > MAX_RETENTION_MS) {
    bad('retentionMs', value, `must be a number of ms from ${MIN_RETENTION_MS} to ${MAX_RETENTION_MS}`);
  }
  return value;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** What a bad `credentials` value looks like, without any of its values: `{accessKeyId: string, secretAccessKey: number}`. */
function credentialsShape(value: unknown): string {
  if (value === null || typeof value !== 'object') return value === null ? 'null' : `a ${typeof value}`;
  const fields = Object.entries(value as Record<string, unknown>).map(([key, inner]) => `${key}: ${typeof inner}`);
  return `{${fields.join(', ')}}`;
}

export function resolveOptions(options: S3DriverOptions): ResolvedOptions {
  // Core's check: an object holding only known keys (a typo is refused, with a did-you-mean).
  const raw = readOptions(DRIVER_NAME, options, KNOWN_OPTIONS);
  if (raw.bucket === undefined) {
    throw new InvalidArgumentError({
      driver: DRIVER_NAME,
      argument: 'options.bucket',
      value: undefined,
      message: 'missing required option `bucket` (the bucket that holds the logs)',
    });
  }
  if (typeof raw.bucket !== 'string' || !BUCKET.test(raw.bucket)) {
    bad('bucket', raw.bucket, 'must be a valid bucket name (3-63 lower-case letters, digits, "." or "-")');
  }
  let prefix = '';
  if (raw.prefix !== undefined) {
    if (typeof raw.prefix !== 'string' || raw.prefix.length > 512)
      bad('prefix', raw.prefix, 'must be a string of at most 512 characters');
    prefix = raw.prefix.replace(/^\/+|\/+$/g, '');
    if (prefix.includes('//')) bad('prefix', raw.prefix, 'must not contain empty path parts');
  }
  let endpoint: string | undefined;
  if (raw.endpoint !== undefined) {
    if (typeof raw.endpoint !== 'string' || !/^https?:\/\/[^/]+/.test(raw.endpoint)) {
      bad('endpoint', raw.endpoint, 'must be an http:// or https:// URL');
    }
    endpoint = raw.endpoint;
  }
  if (raw.region !== undefined && (typeof raw.region !== 'string' || raw.region.length === 0)) {
    bad('region', raw.region, 'must be a non-empty string');
  }
  const credentials = raw.credentials as S3DriverOptions['credentials'];
  if (
    credentials !== undefined &&
    (credentials === null ||
      typeof credentials !== 'object' ||
      typeof credentials.accessKeyId !== 'string' ||
      typeof credentials.secretAccessKey !== 'string')
  ) {
    throw new InvalidArgumentError({
      driver: DRIVER_NAME,
      argument: 'options.credentials',
      value: REDACTED,
      message: `must be {accessKeyId: string, secretAccessKey: string, sessionToken?: string} (got ${credentialsShape(credentials)})`,
    });
  }
  if (raw.client !== undefined && (raw.client === null || typeof (raw.client as { send?: unknown }).send !== 'function')) {
    bad('client', raw.client, 'must be an S3Client from @aws-sdk/client-s3');
  }
  // Core's check: both fields non-negative numbers, no unknown keys (a `baseMS` typo is refused).
  const backoff =
    raw.redeliveryBackoff === undefined
      ? undefined
      : validateBackoffOptions(DRIVER_NAME, raw.redeliveryBackoff, 'options.redeliveryBackoff');
  if (backoff !== undefined && backoff.maxMs < backoff.baseMs) {
    bad('redeliveryBackoff', raw.redeliveryBackoff, 'must be {baseMs >= 0, maxMs >= baseMs}');
  }
  const minPollIntervalMs = num(raw, 'minPollIntervalMs', 50, 1, 60_000);
  const maxPollIntervalMs = num(raw, 'maxPollIntervalMs', Math.max(1000, minPollIntervalMs), 1, 600_000);
  if (maxPollIntervalMs < minPollIntervalMs)
    bad('maxPollIntervalMs', maxPollIntervalMs, `must be >= minPollIntervalMs (${minPollIntervalMs})`);
  const onError = raw.onError ?? ((error: MqError) => process.emitWarning(error));
  if (typeof onError !== 'function') bad('onError', onError, 'must be a function');
  return {
    bucket: raw.bucket as string,
    prefix,
    endpoint,
    region: (raw.region as string | undefined) ?? process.env.AWS_REGION ?? 'us-east-1',
    forcePathStyle: bool(raw, 'forcePathStyle', endpoint !== undefined),
    credentials,
    client: raw.client as S3Client | undefined,
    createBucket: bool(raw, 'createBucket', false),
    maxBatchMessages: num(raw, 'maxBatchMessages', 1000, 1, 100_000),
    maxBatchBytes: num(raw, 'maxBatchBytes', 8 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    flushIntervalMs: num(raw, 'flushIntervalMs', 5, 0, 60_000),
    minPollIntervalMs,
    maxPollIntervalMs,
    leaseMs: num(raw, 'leaseMs', 30_000, 100, 24 * 3600_000),
    redeliveryBackoff: backoff ?? { baseMs: 1000, maxMs: 60_000 },
    requestTimeoutMs: num(raw, 'requestTimeoutMs', 15_000, 100, 600_000),
    cursorSaveIntervalMs: num(raw, 'cursorSaveIntervalMs', 1000, 10, 600_000),
    verifyConditionalWrites: bool(raw, 'verifyConditionalWrites', true),
    retentionMs: retention(raw.retentionMs),
    onError: onError as (error: MqError) => void,
  };
}

/**
 * Parses `s3://[KEY:SECRET@]bucket[/prefix][?endpoint=...&region=...&forcePathStyle=true&...]`.
 * Query parameters: endpoint, region, and every numeric or boolean option by its name.
 */
export function parseS3Url(url: string): Partial<S3DriverOptions> {
  if (typeof url !== 'string') {
    throw new InvalidArgumentError({
      driver: DRIVER_NAME,
      argument: 'url',
      value: url,
      message: `must be a string (got ${shown(url)})`,
    });
  }
  // Errors show the URL with its password replaced: never the secret, in no field and no cause.
  const redacted = redactUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    // Node's TypeError keeps the whole input (`input`): keep the error as the cause, minus the secret.
    if (cause !== null && typeof cause === 'object' && 'input' in cause) (cause as { input: unknown }).input = redacted;
    throw new InvalidArgumentError({
      driver: DRIVER_NAME,
      argument: 'url',
      value: redacted,
      message: `${JSON.stringify(redacted)} is not a valid URL (expected s3://[KEY:SECRET@]bucket[/prefix][?option=value&...])`,
      cause,
    });
  }
  if (parsed.protocol !== 's3:') {
    throw new InvalidArgumentError({
      driver: DRIVER_NAME,
      argument: 'url',
      value: redacted,
      message: `must start with s3:// (got ${JSON.stringify(redacted)})`,
    });
  }
  const decode = (part: string, what: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new InvalidArgumentError({
        driver: DRIVER_NAME,
        argument: 'url',
        value: redacted,
        message: `the ${what} of ${JSON.stringify(redacted)} holds a malformed %-escape`,
      });
    }
  };
  const options: Record<string, unknown> = {};
  if (parsed.hostname) options.bucket = decode(parsed.hostname, 'bucket');
  const prefix = decode(parsed.pathname, 'path').replace(/^\/+|\/+$/g, '');
  if (prefix) options.prefix = prefix;
  if (parsed.username) {
    options.credentials = {
      accessKeyId: decode(parsed.username, 'access key id'),
      secretAccessKey: decode(parsed.password, 'secret'),
    };
  }
  const badQuery = (key: string, value: string, message: string): never => {
    const hidden = isSecretName(key);
    throw new InvalidArgumentError({
      driver: DRIVER_NAME,
      argument: `url.${key}`,
      value: hidden ? REDACTED : redactUrl(value),
      message: hidden ? message : `${message} (got ${shown(value)})`,
    });
  };
  for (const [key, value] of parsed.searchParams) {
    if (key === 'endpoint' || key === 'region') options[key] = value;
    else if ((NUMERIC as readonly string[]).includes(key)) {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) badQuery(key, value, 'must be a number');
      options[key] = n;
    } else if ((BOOLEAN as readonly string[]).includes(key)) {
      if (value !== 'true' && value !== 'false') badQuery(key, value, 'must be true or false');
      options[key] = value === 'true';
    } else {
      const known = ['endpoint', 'region', ...NUMERIC, ...BOOLEAN];
      const like = nearestName(key, known);
      badQuery(
        key,
        value,
        `unknown query parameter ${JSON.stringify(key)}${like ? ` (did you mean ${like}?)` : ''}; known: ${known.join(', ')}`,
      );
    }
  }
  return options as Partial<S3DriverOptions>;
}
