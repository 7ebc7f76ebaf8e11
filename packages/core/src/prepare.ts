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

function requireOptions(driver: string, options: unknown): Record<string, unknown> {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError({ driver, argument: 'options', value: options, message: 'must be an object' });
  }
  return options as Record<string, unknown>;
}

function measure(json: string, headers: Record<string, string>): number {
  let bytes = Buffer.byteLength(json);
  for (const [key, value] of Object.entries(headers)) bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  return bytes;
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
  return preparePublish(driver, capabilities, body, requireOptions(driver, options), undefined);
}

export function prepareSharePublish(
  driver: string,
  capabilities: Capabilities,
  body: unknown,
  options: SharePublishOptions,
): PreparedPublish {
  const raw = requireOptions(driver, options);
  const topic = validateTopic(driver, raw.topic);
  return preparePublish(driver, capabilities, body, raw, topic);
}

function checkHandler(driver: string, handler: unknown): void {
  if (typeof handler !== 'function') {
    throw new InvalidArgumentError({ driver, argument: 'handler', value: handler, message: 'must be a function' });
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
  const raw = requireOptions(driver, options);
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
  const raw = requireOptions(driver, options);
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
        message: 'must be "earliest", "latest", a valid Date or {cursor: string}',
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
  const raw = requireOptions(driver, target);
  const segment = validateSegment(driver, raw.segment, 'target.segment');
  if (raw.kind !== undefined) return { segment, kind: validateKind(driver, raw.kind, 'target.kind') };
  if (raw.subscription !== undefined) {
    return { segment, subscription: validateSubscriptionName(driver, raw.subscription, 'target.subscription') };
  }
  throw new InvalidArgumentError({ driver, argument: 'target', value: target, message: 'needs `kind` or `subscription`' });
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
  const raw = requireOptions(driver, options);
  if (raw.timeoutMs === undefined) return DEFAULT_CLOSE_TIMEOUT_MS;
  return validateNonNegativeNumber(driver, raw.timeoutMs, 'timeoutMs');
}
