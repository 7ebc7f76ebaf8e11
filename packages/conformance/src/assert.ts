/** A rule of the contract was broken. The message says which rule and names the ids at fault. */
export class ConformanceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConformanceError';
  }
}

/** Fails the case with a message. */
export function fail(message: string): never {
  throw new ConformanceError(message);
}

/** Fails the case unless `condition` holds. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) fail(typeof message === 'function' ? message() : message);
}

const LIST_LIMIT = 20;

/** `[a, b, c]`, cut after 20 entries with a count of the rest. */
export function list(values: readonly unknown[]): string {
  const shown = values.slice(0, LIST_LIMIT).map((value) => (typeof value === 'string' ? value : show(value)));
  const more = values.length > LIST_LIMIT ? `, … and ${values.length - LIST_LIMIT} more` : '';
  return `[${shown.join(', ')}${more}]`;
}

/** A short, printable form of any value (bodies, thrown values, options). */
export function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'function';
  if (typeof value === 'symbol') return value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (value instanceof Date) return `Date(${Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString()})`;
  if (value instanceof Map) return 'Map';
  if (value instanceof Set) return 'Set';
  try {
    const text = JSON.stringify(value);
    if (text === undefined) return String(value);
    return text.length > 120 ? `${text.slice(0, 117)}…(${text.length} chars)` : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Counts occurrences. */
export function countBy(values: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}

/** How received ids differ from expected ones (nothing deduplicated before counting). */
export interface IdDiff {
  /** Expected ids never received, in expected order, each once. */
  missing: string[];
  /** Received ids that were not expected, in order of first receipt, each once. */
  extra: string[];
  /** Ids received more than once (expected or not), with how often, in order of first receipt. */
  duplicated: { id: string; count: number }[];
}

/** Compares received ids with expected ones: what is missing, extra and duplicated. */
export function idDiff(expectedIds: Iterable<string>, receivedIds: Iterable<string>): IdDiff {
  const expected = new Set(expectedIds);
  const counts = countBy([...receivedIds]);
  return {
    missing: [...expected].filter((id) => !counts.has(id)),
    extra: [...counts.keys()].filter((id) => !expected.has(id)),
    duplicated: [...counts].filter(([, count]) => count > 1).map(([id, count]) => ({ id, count })),
  };
}

/** `missing [..], extra [..], duplicated [id xN]`: an id diff for assertion and timeout messages. */
export function describeIdDiff(expectedIds: Iterable<string>, receivedIds: Iterable<string>): string {
  const { missing, extra, duplicated } = idDiff(expectedIds, receivedIds);
  return `missing ${list(missing)}, extra ${list(extra)}, duplicated ${list(duplicated.map(({ id, count }) => `${id} x${count}`))}`;
}

/**
 * Checks that every expected id was received exactly once and nothing else was: NO
 * deduplication happens before the check. The error names the missing ids, the duplicated ids
 * (with how often they came) and the unexpected ids.
 */
export function assertExactlyOnce(expectedIds: readonly string[], receivedIds: readonly string[], label: string): void {
  const expected = new Set(expectedIds);
  if (expected.size !== expectedIds.length) {
    fail(
      `${label}: the expected ids are not unique (the driver returned the same id for two publishes): ${list(duplicatesOf(expectedIds))}`,
    );
  }
  const diff = idDiff(expectedIds, receivedIds);
  const times = new Map(diff.duplicated.map(({ id, count }) => [id, count]));
  const duplicated = diff.duplicated.filter(({ id }) => expected.has(id)).map(({ id, count }) => `${id} ×${count}`);
  const unexpected = diff.extra.map((id) => (times.has(id) ? `${id} ×${times.get(id)}` : id));
  const { missing } = diff;
  if (missing.length === 0 && duplicated.length === 0 && unexpected.length === 0) return;
  const parts = [`${label}: expected each of ${expectedIds.length} ids exactly once, received ${receivedIds.length} deliveries`];
  if (missing.length > 0) parts.push(`missing ${missing.length}: ${list(missing)}`);
  if (duplicated.length > 0) parts.push(`delivered more than once ${duplicated.length}: ${list(duplicated)}`);
  if (unexpected.length > 0) parts.push(`unexpected ${unexpected.length}: ${list(unexpected)}`);
  fail(parts.join('; '));
}

/** Checks that nothing was received; names what was. */
export function assertNone(receivedIds: readonly string[], label: string): void {
  if (receivedIds.length > 0) fail(`${label}: expected no deliveries, received ${receivedIds.length}: ${list(receivedIds)}`);
}

/** Checks `received` equals `expected` in order (exactly once each); names the first position that differs. */
export function assertInOrder(expectedIds: readonly string[], receivedIds: readonly string[], label: string): void {
  assertExactlyOnce(expectedIds, receivedIds, label);
  for (let index = 0; index < expectedIds.length; index++) {
    if (expectedIds[index] !== receivedIds[index]) {
      const at = receivedIds.indexOf(expectedIds[index] ?? '');
      fail(
        `${label}: out of publish order at position ${index}: expected ${expectedIds[index]} (published #${index}), ` +
          `received ${receivedIds[index]} (published #${expectedIds.indexOf(receivedIds[index] ?? '')}); ` +
          `${expectedIds[index]} arrived at position ${at}; received order by publish index: ${list(receivedIds.map((id) => expectedIds.indexOf(id)))}`,
      );
    }
  }
}

function duplicatesOf(values: readonly string[]): string[] {
  return [...countBy(values)].filter(([, count]) => count > 1).map(([value]) => value);
}

/** Structural equality of JSON-like values, ignoring prototypes (null-prototype objects equal plain ones). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b);
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((entry, index) => jsonEqual(entry, b[index]));
  }
  const aKeys = Object.keys(a);
  const bKeys = Object.keys(b);
  if (aKeys.length !== bKeys.length) return false;
  return aKeys.every(
    (key) => Object.hasOwn(b, key) && jsonEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
  );
}

/** Fails unless the two JSON-like values are structurally equal. */
export function assertJsonEqual(actual: unknown, expected: unknown, label: string): void {
  if (!jsonEqual(actual, expected)) fail(`${label}: expected ${show(expected)}, got ${show(actual)}`);
}
