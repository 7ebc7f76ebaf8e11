import { encodeBody } from './body.js';
import {
  type Capabilities,
  type CloseOptions,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_PREFETCH,
  type DeadLetterTarget,
  type ReplayFrom,
  type ShareConsumeOptions,
  type SharePublishOptions,
  type TaskConsumeOptions,
  type TaskPublishOptions,
} from './contract.js';
import { InvalidArgumentError, MessageTooLargeError, UnsupportedError } from './errors/index.js';
import { newMessageId } from './message-id.js';
import {
  describeValue,
  validateHeaders,
  validateKind,
  validateMessageId,
  validateNonNegativeNumber,
  validatePatterns,
  validatePositiveInteger,
  validateSegment,
  validateSubscriptionName,
  validateTopic,
} from './names.js';
import { rejectUnknownKeys } from './options.js';

/** A publish that passed every check: what a driver stores or sends. */
export interface PreparedPublish {
  id: string;
  segment: string;
  /** The share topic; undefined for tasks. */
  topic: string | undefined;
  headers: Record<string, string>;
  /** The body, JSON-encoded. */
  json: string;
  /** Encoded size counted against `maxMessageBytes`: JSON body plus header keys and values. */
  bytes: number;
  publishedAt: Date;
}

/** The options object, checked to hold only `known` keys (named `${prefix}${key}` when not). */
function requireOptions(
  driver: string,
  options: unknown,
  known: readonly string[],
  argument = 'options',
  prefix = '',
): Record<string, unknown> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError({
      driver,
      argument,
      value: options,
      message: `${describeValue(options)} must be an object`,
    });
  }
  rejectUnknownKeys(driver, options, known, prefix);
  return options as Record<string, unknown>;
}

const TASK_PUBLISH_KEYS = ['segment', 'headers', 'id'] as const;
const SHARE_PUBLISH_KEYS = ['topic', 'segment', 'headers', 'id'] as const;
const TASK_CONSUME_KEYS = ['topic', 'segment', 'prefetch', 'maxAttempts'] as const;
const SHARE_CONSUME_KEYS = ['topics', 'segment', 'name', 'from', 'prefetch', 'maxAttempts'] as const;
const TARGET_KEYS = ['segment', 'kind', 'subscription'] as const;
const CLOSE_KEYS = ['timeoutMs'] as const;

function measure(json: string, headers: Record<string, string>): number {
  let bytes = Buffer.byteLength(json);
  for (const [key, value] of Object.entries(headers)) bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  return bytes;
}

/** The entry of `refused` (a name, or a prefix ending in `*`) that matches `key`, if any. */
export function refusedHeaderEntry(refused: readonly string[], key: string): string | undefined {
  return refused.find((entry) => (entry.endsWith('*') ? key.startsWith(entry.slice(0, -1)) : key === entry));
}

function refuseHeaders(driver: string, headers: Record<string, string>, refused: readonly string[]): void {
  for (const key in headers) {
    if (refusedHeaderEntry(refused, key) === undefined) continue;
    throw new InvalidArgumentError({
      driver,
      argument: `headers.${key}`,
      value: key,
      message: `header ${JSON.stringify(key)} is owned or interpreted by the broker and would not reach handlers as sent (refused: ${refused.join(', ')}); use another name`,
    });
  }
}

function preparePublish(
  driver: string,
  capabilities: Capabilities,
  body: unknown,
  options: Record<string, unknown>,
  topic: string | undefined,
): PreparedPublish {
  const segment = validateSegment(driver, options.segment);
  const headers = validateHeaders(driver, options.headers);
  if (capabilities.refusedHeaders !== undefined) refuseHeaders(driver, headers, capabilities.refusedHeaders);
  const id = options.id === undefined ? newMessageId() : validateMessageId(driver, options.id);
  const json = encodeBody(driver, body);
  const bytes = measure(json, headers);
  if (bytes > capabilities.maxMessageBytes) {
    throw new MessageTooLargeError({ driver, bytes, maxBytes: capabilities.maxMessageBytes });
  }
  return { id, segment, topic, headers, json, bytes, publishedAt: new Date() };
}

export function prepareTaskPublish(
  driver: string,
  capabilities: Capabilities,
  body: unknown,
  options: TaskPublishOptions,
): PreparedPublish {
  return preparePublish(driver, capabilities, body, requireOptions(driver, options, TASK_PUBLISH_KEYS), undefined);
}

export function prepareSharePublish(
  driver: string,
  capabilities: Capabilities,
  body: unknown,
  options: SharePublishOptions,
): PreparedPublish {
  const raw = requireOptions(driver, options, SHARE_PUBLISH_KEYS);
  const topic = validateTopic(driver, raw.topic);
  return preparePublish(driver, capabilities, body, raw, topic);
}

function checkHandler(driver: string, handler: unknown): void {
  if (typeof handler !== 'function') {
    throw new InvalidArgumentError({
      driver,
      argument: 'handler',
      value: handler,
      message: `${describeValue(handler)} must be a function`,
    });
  }
}

export interface PreparedTaskConsume {
  segment: string;
  kind: string;
  prefetch: number;
  maxAttempts: number;
}

export function prepareTaskConsume(driver: string, handler: unknown, options: TaskConsumeOptions): PreparedTaskConsume {
  checkHandler(driver, handler);
  const raw = requireOptions(driver, options, TASK_CONSUME_KEYS);
  return {
    segment: validateSegment(driver, raw.segment),
    kind: validateKind(driver, raw.topic),
    prefetch: raw.prefetch === undefined ? DEFAULT_PREFETCH : validatePositiveInteger(driver, raw.prefetch, 'prefetch', 65_535),
    maxAttempts:
      raw.maxAttempts === undefined
        ? DEFAULT_MAX_ATTEMPTS
        : validatePositiveInteger(driver, raw.maxAttempts, 'maxAttempts', 1_000),
  };
}

export interface PreparedShareConsume {
  segment: string;
  patterns: string[];
  name: string | undefined;
  from: ReplayFrom | undefined;
  prefetch: number;
  maxAttempts: number;
}

export function prepareShareConsume(
  driver: string,
  capabilities: Capabilities,
  handler: unknown,
  options: ShareConsumeOptions,
): PreparedShareConsume {
  checkHandler(driver, handler);
  const raw = requireOptions(driver, options, SHARE_CONSUME_KEYS);
  const from = raw.from as ReplayFrom | undefined;
  if (from !== undefined) {
    const valid =
      from === 'earliest' ||
      from === 'latest' ||
      (from instanceof Date && !Number.isNaN(from.getTime())) ||
      (typeof from === 'object' && from !== null && typeof (from as { cursor?: unknown }).cursor === 'string');
    if (!valid) {
      throw new InvalidArgumentError({
        driver,
        argument: 'from',
        value: from,
        message: `${describeValue(from)} must be "earliest", "latest", a valid Date or {cursor: string}`,
      });
    }
    if (!capabilities.replay && from !== 'latest') {
      throw new UnsupportedError({ driver, feature: 'replay', message: 'replay (`from`) is not supported by this driver' });
    }
  }
  return {
    segment: validateSegment(driver, raw.segment),
    patterns: [...new Set(validatePatterns(driver, raw.topics))],
    name: raw.name === undefined ? undefined : validateSubscriptionName(driver, raw.name),
    from,
    prefetch: raw.prefetch === undefined ? DEFAULT_PREFETCH : validatePositiveInteger(driver, raw.prefetch, 'prefetch', 65_535),
    maxAttempts:
      raw.maxAttempts === undefined
        ? DEFAULT_MAX_ATTEMPTS
        : validatePositiveInteger(driver, raw.maxAttempts, 'maxAttempts', 1_000),
  };
}

/** Validates a dead-letter target; returns `{segment, kind}` or `{segment, subscription}`. */
export function prepareDeadLetterTarget(
  driver: string,
  target: DeadLetterTarget,
): { segment: string; kind: string; subscription?: undefined } | { segment: string; subscription: string; kind?: undefined } {
  const raw = requireOptions(driver, target, TARGET_KEYS, 'target', 'target.');
  const segment = validateSegment(driver, raw.segment, 'target.segment');
  if (raw.kind !== undefined && raw.subscription !== undefined) {
    throw new InvalidArgumentError({
      driver,
      argument: 'target',
      value: target,
      message: `${describeValue(target)} names both \`kind\` and \`subscription\`; a target is one or the other`,
    });
  }
  if (raw.kind !== undefined) return { segment, kind: validateKind(driver, raw.kind, 'target.kind') };
  if (raw.subscription !== undefined) {
    return { segment, subscription: validateSubscriptionName(driver, raw.subscription, 'target.subscription') };
  }
  throw new InvalidArgumentError({
    driver,
    argument: 'target',
    value: target,
    message: `${describeValue(target)} needs \`kind\` or \`subscription\``,
  });
}

/** The text stored with a dead letter: the error's message (or its string form). */
export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  try {
    return typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
  } catch {
    return String(error);
  }
}

/** The close deadline in ms: `options.timeoutMs`, or {@link DEFAULT_CLOSE_TIMEOUT_MS}. */
export function prepareCloseOptions(driver: string, options: CloseOptions | undefined): number {
  if (options === undefined) return DEFAULT_CLOSE_TIMEOUT_MS;
  const raw = requireOptions(driver, options, CLOSE_KEYS);
  if (raw.timeoutMs === undefined) return DEFAULT_CLOSE_TIMEOUT_MS;
  return validateNonNegativeNumber(driver, raw.timeoutMs, 'timeoutMs');
}

/** The ids of `redriveDeadLetters(target, {ids})`: undefined for "all", else the set of ids. */
export function prepareRedriveOptions(driver: string, options: { ids?: readonly string[] } | undefined): Set<string> | undefined {
  if (options === undefined) return undefined;
  const raw = requireOptions(driver, options, ['ids']);
  if (raw.ids === undefined) return undefined;
  if (!Array.isArray(raw.ids)) {
    throw new InvalidArgumentError({
      driver,
      argument: 'ids',
      value: raw.ids,
      message: `${describeValue(raw.ids)} must be an array of message ids`,
    });
  }
  return new Set(raw.ids.map((id, index) => validateMessageId(driver, id, `ids[${index}]`)));
}
