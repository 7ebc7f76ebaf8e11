import { InvalidArgumentError } from './errors/index.js';

/**
 * Name rules (docs/semantics.md, "Names"):
 * - segment: 1–64 characters of letters, digits, `_` and `-`, starting with a letter or digit.
 * - topic and task kind: 1–255 characters of dotted words (`Frontend.Customer.Signup`); a word
 *   is 1+ letters, digits, `_` or `-`. No wildcards, no empty words.
 * - share pattern: like a topic, but a word may also be `*` (exactly one word) or `#` (zero or
 *   more words).
 * - subscription name: like a segment.
 * - header key: 1–128 characters of letters, digits, `_`, `-`, `.`; `x-mq-` is reserved.
 * These sets map onto every broker we target (AMQP routing keys and queue names, S3 keys).
 */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const WORD = /^[A-Za-z0-9_-]+$/;
const HEADER_KEY = /^[A-Za-z0-9_.-]{1,128}$/;
const MESSAGE_ID = /^[\x21-\x7e]{1,128}$/;
const MAX_TOPIC_LENGTH = 255;

/** Longest description of a value put into a message; the value itself is kept on the error. */
const DESCRIBE_LIMIT = 120;

function truncate(text: string): string {
  return text.length <= DESCRIBE_LIMIT ? text : `${text.slice(0, DESCRIBE_LIMIT)}… (${text.length} characters)`;
}

/**
 * A short, readable description of a value for an error message: strings quoted (`"a.b"`),
 * numbers and other primitives with their type (`number 42`), objects as JSON (`object {"a":1}`),
 * class instances by class; long text is cut at 120 characters. Never throws.
 * Redact secrets (e.g. with {@link redactUrl}) before describing them.
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return truncate(JSON.stringify(value));
    case 'undefined':
      return 'undefined';
    case 'number':
    case 'boolean':
      return `${typeof value} ${String(value)}`;
    case 'bigint':
      return `bigint ${String(value)}n`;
    case 'symbol':
      return truncate(value.toString());
    case 'function':
      return value.name ? truncate(`function ${value.name}`) : 'an anonymous function';
  }
  if (value === null) return 'null';
  try {
    if (Array.isArray(value)) return truncate(`array ${JSON.stringify(value)}`);
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const name = (value as object).constructor?.name || 'a class';
      if (value instanceof Date) return `Date ${Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString()}`;
      return truncate(`an instance of ${name}`);
    }
    return truncate(`object ${JSON.stringify(value)}`);
  } catch {
    return Array.isArray(value) ? 'an array' : 'an object'; // cycles, throwing getters, BigInts inside
  }
}

function fail(driver: string, argument: string, value: unknown, rule: string): never {
  throw new InvalidArgumentError({ driver, argument, value, message: `${describeValue(value)} ${rule}` });
}

export function validateSegment(driver: string, value: unknown, argument = 'segment'): string {
  if (typeof value !== 'string' || !SEGMENT.test(value)) {
    fail(driver, argument, value, 'must be 1-64 letters, digits, "_" or "-", starting with a letter or digit');
  }
  return value;
}

function validateDotted(driver: string, value: unknown, argument: string, allowWildcards: boolean): string {
  const rule = allowWildcards
    ? 'must be dotted words (letters, digits, "_", "-"), where a word may be "*" or "#"'
    : 'must be dotted words of letters, digits, "_" or "-" (no wildcards, no empty words)';
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TOPIC_LENGTH) {
    fail(driver, argument, value, `${rule}, 1-${MAX_TOPIC_LENGTH} characters`);
  }
  for (const word of value.split('.')) {
    if (WORD.test(word)) continue;
    if (allowWildcards && (word === '*' || word === '#')) continue;
    fail(driver, argument, value, `${rule}; bad word ${JSON.stringify(word)}`);
  }
  return value;
}

export function validateTopic(driver: string, value: unknown, argument = 'topic'): string {
  return validateDotted(driver, value, argument, false);
}

/** A task kind follows the topic rules: dotted words, no wildcards. */
export function validateKind(driver: string, value: unknown, argument = 'topic'): string {
  return validateDotted(driver, value, argument, false);
}

export function validatePattern(driver: string, value: unknown, argument = 'topics'): string {
  return validateDotted(driver, value, argument, true);
}

export function validatePatterns(driver: string, value: unknown, argument = 'topics'): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    fail(driver, argument, value, 'must be a non-empty array of topic patterns');
  }
  return value.map((pattern, index) => validatePattern(driver, pattern, `${argument}[${index}]`));
}

export function validateSubscriptionName(driver: string, value: unknown, argument = 'name'): string {
  return validateSegment(driver, value, argument);
}

export function validateHeaders(driver: string, value: unknown, argument = 'headers'): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail(driver, argument, value, 'must be an object of string values');
  }
  const headers: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (!HEADER_KEY.test(key) || key.toLowerCase().startsWith('x-mq-')) {
      fail(
        driver,
        `${argument}.${key}`,
        key,
        'is not a valid header key (1-128 of letters, digits, "_", "-", "."; "x-mq-" is reserved)',
      );
    }
    if (typeof entry !== 'string') fail(driver, `${argument}.${key}`, entry, 'must be a string');
    headers[key] = entry;
  }
  return headers;
}

export function validateMessageId(driver: string, value: unknown, argument = 'id'): string {
  if (typeof value !== 'string' || !MESSAGE_ID.test(value)) {
    fail(driver, argument, value, 'must be 1-128 visible ASCII characters');
  }
  return value;
}

export function validatePositiveInteger(driver: string, value: unknown, argument: string, max = 1_000_000): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    fail(driver, argument, value, `must be a whole number from 1 to ${max}`);
  }
  return value;
}

export function validateNonNegativeNumber(driver: string, value: unknown, argument: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    fail(driver, argument, value, 'must be a finite number >= 0');
  }
  return value;
}
