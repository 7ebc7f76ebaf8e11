import {
  assertDriver,
  type BackoffOptions,
  DEFAULT_CLOSE_TIMEOUT_MS,
  type Driver,
  InvalidArgumentError,
  type SharePublishOptions,
  type TaskPublishOptions,
  validateNonNegativeNumber,
  validatePositiveInteger,
} from '@mq-drivers/core';

export const DRIVER_NAME = 'tee';

/** Failure policy of a tee publish; see the README's table. */
export type TeeMode = 'all' | 'primary';

/** A mirror copy that failed once more (`mode: 'primary'`). */
export interface MirrorErrorEvent {
  /** The mirror's target name. */
  readonly target: string;
  readonly messageId: string;
  /** Failed attempts of this copy so far (1 on the first failure). */
  readonly attempts: number;
  readonly error: unknown;
  /** Copies waiting in this mirror's outbox after this failure. */
  readonly outboxDepth: number;
}

/** A mirror copy that was not confirmed when the tee closed. */
export interface UndeliveredCopy {
  /** The mirror that does not (or may not) hold the message. */
  readonly target: string;
  readonly kind: 'task' | 'share';
  readonly messageId: string;
  /** The body as published (a JSON copy taken at publish time). */
  readonly body: unknown;
  /** Options to publish it again to that target: `mq.target(target).taskPublish(body, options)` (or `sharePublish`). */
  readonly options: TaskPublishOptions | SharePublishOptions;
  /** Failed attempts so far. */
  readonly attempts: number;
  /** The last error, if an attempt failed. */
  readonly lastError: unknown;
  /**
   * `true` when an attempt was still running at the deadline: the mirror may have stored it
   * after all (a re-publish with the same id is then a detectable duplicate).
   */
  readonly uncertain: boolean;
}

/** What `closeWithReport()` (and `onUndelivered`) hands back. */
export interface TeeCloseReport {
  /** Mirror copies not confirmed within the close deadline (`mode: 'primary'`); empty when all caught up. */
  readonly undelivered: readonly UndeliveredCopy[];
  /** Targets whose own `close()` rejected. */
  readonly closeFailures: readonly { readonly target: string; readonly error: unknown }[];
}

/** Options of {@link tee}. All optional. */
export interface TeeOptions {
  /**
   * `'all'` (default): a publish resolves once EVERY target confirmed it, else rejects with
   * `TeePublishError`. `'primary'`: it resolves on the primary's confirmation; mirror copies that
   * fail are retried in the background from a bounded outbox.
   */
  mode?: TeeMode;
  /**
   * The target that consumers, dead letters and re-drives use: a target name or index.
   * Default: the primary (index 0).
   */
  consumeFrom?: string | number;
  /**
   * `mode: 'primary'`: most copies one mirror may have unconfirmed at once (in flight or waiting
   * in the outbox). A publish that would exceed it rejects with `TeePublishError`
   * (`reason: 'outbox-full'`) BEFORE any target receives the message. Default 10000.
   */
  outboxLimit?: number;
  /**
   * `mode: 'primary'`: delay between retries while a mirror keeps failing: exponential from
   * `baseMs`, capped at `maxMs`, with jitter (core's `backoffDelay`). While a mirror fails, one
   * copy probes it; once it succeeds the outbox drains. Default `{ baseMs: 100, maxMs: 5000 }`.
   */
  retryBackoff?: BackoffOptions;
  /** `mode: 'primary'`: copies re-sent at once while an outbox drains. Default 32. */
  retryConcurrency?: number;
  /**
   * `mode: 'primary'`: called on every failed attempt of a mirror copy (after the primary
   * accepted the message). Errors thrown by the callback are ignored.
   */
  onMirrorError?: (event: MirrorErrorEvent) => void;
  /**
   * How long `close()` waits for in-flight publishes, open subscriptions and the outbox to drain
   * before it closes the targets. Default 10000.
   */
  closeTimeoutMs?: number;
  /**
   * Called by `close()` with the mirror copies it could not deliver in time (only when there are
   * some). `closeWithReport()` returns the same list.
   */
  onUndelivered?: (undelivered: readonly UndeliveredCopy[]) => void;
  /** Close the target drivers when the tee closes. Default true (the tee owns its targets). */
  closeTargets?: boolean;
}

export interface ResolvedTarget {
  name: string;
  driver: Driver;
}

export interface ResolvedOptions {
  mode: TeeMode;
  consumeFrom: number;
  outboxLimit: number;
  retryBackoff: BackoffOptions;
  retryConcurrency: number;
  onMirrorError: ((event: MirrorErrorEvent) => void) | undefined;
  closeTimeoutMs: number;
  onUndelivered: ((undelivered: readonly UndeliveredCopy[]) => void) | undefined;
  closeTargets: boolean;
}

/** Either a list (`[primary, ...mirrors]`) or named targets (`{ rabbit, s3 }`, the first is the primary). */
export type TeeTargets = readonly Driver[] | Readonly<Record<string, Driver>>;

const DEFAULT_RETRY_BACKOFF: BackoffOptions = { baseMs: 100, maxMs: 5_000 };
const KNOWN = new Set([
  'mode',
  'consumeFrom',
  'outboxLimit',
  'retryBackoff',
  'retryConcurrency',
  'onMirrorError',
  'closeTimeoutMs',
  'onUndelivered',
  'closeTargets',
]);

function bad(argument: string, value: unknown, message: string): never {
  throw new InvalidArgumentError({ driver: DRIVER_NAME, argument, value, message });
}

export function isDriver(value: unknown): value is Driver {
  return (
    value !== null &&
    typeof value === 'object' &&
    'specificationVersion' in value &&
    typeof (value as Driver).taskPublish === 'function'
  );
}

function checkDriver(value: unknown, argument: string): Driver {
  if (value === null || typeof value !== 'object' || !('specificationVersion' in value)) {
    bad(argument, value, 'must be a driver (an object with specificationVersion, taskPublish, ...)');
  }
  const driver = assertDriver(value as Driver, `tee target ${argument}`);
  for (const method of [
    'taskPublish',
    'sharePublish',
    'taskConsume',
    'shareConsume',
    'listDeadLetters',
    'redriveDeadLetters',
    'close',
  ] as const) {
    if (typeof driver[method] !== 'function') bad(argument, value, `is not a driver: \`${method}\` is not a function`);
  }
  if (driver.capabilities === null || typeof driver.capabilities !== 'object') {
    bad(argument, value, 'is not a driver: `capabilities` is missing');
  }
  return driver;
}

export function resolveTargets(targets: TeeTargets): ResolvedTarget[] {
  if (targets === null || typeof targets !== 'object') {
    bad('targets', targets, 'must be a list of drivers [primary, ...mirrors] or an object of named drivers { name: driver }');
  }
  const resolved: ResolvedTarget[] = [];
  if (Array.isArray(targets)) {
    const seen = new Map<string, number>();
    targets.forEach((value: unknown, index) => {
      const driver = checkDriver(value, `targets[${index}]`);
      const count = (seen.get(driver.name) ?? 0) + 1;
      seen.set(driver.name, count);
      resolved.push({ name: count === 1 ? driver.name : `${driver.name}#${count}`, driver });
    });
  } else {
    for (const [name, value] of Object.entries(targets)) {
      if (name.length === 0) bad('targets', name, 'target names must be non-empty');
      resolved.push({ name, driver: checkDriver(value, `targets.${name}`) });
    }
  }
  if (resolved.length === 0) bad('targets', targets, 'needs at least one driver (the primary)');
  if (new Set(resolved.map((target) => target.driver)).size !== resolved.length) {
    bad('targets', targets, 'the same driver object is given twice; give each target its own driver');
  }
  return resolved;
}

export function resolveOptions(options: TeeOptions, targets: readonly ResolvedTarget[]): ResolvedOptions {
  if (options === null || typeof options !== 'object') bad('options', options, 'must be an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) bad(`options.${key}`, (options as Record<string, unknown>)[key], `is not an option of tee`);
  }
  const mode = options.mode ?? 'all';
  if (mode !== 'all' && mode !== 'primary') bad('options.mode', mode, 'must be "all" or "primary"');
  let consumeFrom = 0;
  if (options.consumeFrom !== undefined) {
    const wanted = options.consumeFrom;
    consumeFrom =
      typeof wanted === 'number' ? (Number.isInteger(wanted) ? wanted : -1) : targets.findIndex((t) => t.name === wanted);
    if (consumeFrom < 0 || consumeFrom >= targets.length) {
      bad('options.consumeFrom', wanted, `must be a target name or index (targets: ${targets.map((t) => t.name).join(', ')})`);
    }
  }
  const backoff = options.retryBackoff ?? DEFAULT_RETRY_BACKOFF;
  if (backoff === null || typeof backoff !== 'object') bad('options.retryBackoff', backoff, 'must be {baseMs, maxMs}');
  validateNonNegativeNumber(DRIVER_NAME, backoff.baseMs, 'options.retryBackoff.baseMs');
  validateNonNegativeNumber(DRIVER_NAME, backoff.maxMs, 'options.retryBackoff.maxMs');
  if (backoff.maxMs < backoff.baseMs) bad('options.retryBackoff.maxMs', backoff.maxMs, 'must be >= retryBackoff.baseMs');
  for (const key of ['onMirrorError', 'onUndelivered'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'function')
      bad(`options.${key}`, options[key], 'must be a function');
  }
  if (options.closeTargets !== undefined && typeof options.closeTargets !== 'boolean') {
    bad('options.closeTargets', options.closeTargets, 'must be a boolean');
  }
  if (mode === 'all') {
    for (const key of ['outboxLimit', 'retryBackoff', 'retryConcurrency', 'onMirrorError'] as const) {
      if (options[key] !== undefined) {
        bad(`options.${key}`, options[key], `needs mode: 'primary' (mode 'all' keeps no outbox)`);
      }
    }
  }
  return {
    mode,
    consumeFrom,
    outboxLimit:
      options.outboxLimit === undefined
        ? 10_000
        : validatePositiveInteger(DRIVER_NAME, options.outboxLimit, 'options.outboxLimit', 2 ** 31 - 1),
    retryBackoff: { baseMs: backoff.baseMs, maxMs: backoff.maxMs },
    retryConcurrency:
      options.retryConcurrency === undefined
        ? 32
        : validatePositiveInteger(DRIVER_NAME, options.retryConcurrency, 'options.retryConcurrency', 10_000),
    onMirrorError: options.onMirrorError,
    closeTimeoutMs:
      options.closeTimeoutMs === undefined
        ? DEFAULT_CLOSE_TIMEOUT_MS
        : validateNonNegativeNumber(DRIVER_NAME, options.closeTimeoutMs, 'options.closeTimeoutMs'),
    onUndelivered: options.onUndelivered,
    closeTargets: options.closeTargets ?? true,
  };
}
