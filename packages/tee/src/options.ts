import {
  type BackoffOptions,
  backoffOption,
  booleanOption,
  DEFAULT_CLOSE_TIMEOUT_MS,
  integerOption,
  numberOption,
  readOptions,
} from '@mq-drivers/core';
import type { MirrorErrorEvent, UndeliveredCopy } from './outbox.js';
import { bad, DRIVER_NAME, type Target } from './target.js';

/** Failure policy of a tee publish; see the README's table. */
export type TeeMode = 'all' | 'primary';

/** Options of {@link tee}. All optional. */
export interface TeeOptions {
  /**
   * `'all'` (default): a publish resolves once EVERY target confirmed it, else rejects with
   * `TeePublishError`. `'primary'`: it resolves on the primary's confirmation; mirror copies that
   * fail are retried in the background from a bounded outbox.
   */
  mode?: TeeMode;
  /** The target that consumers, dead letters and re-drives use: a name or index. Default: the primary (0). */
  consumeFrom?: string | number;
  /**
   * `mode: 'primary'`: most copies one mirror may have unconfirmed at once (in flight or waiting
   * in the outbox). A publish that would exceed it rejects with `TeePublishError`
   * (`reason: 'outbox-full'`) BEFORE any target receives the message. Default 10000.
   */
  outboxLimit?: number;
  /**
   * `mode: 'primary'`: delay between retries while a mirror keeps failing (core's `backoffDelay`).
   * While a mirror fails, one copy probes it; once it succeeds the outbox drains. Default `{ baseMs: 100, maxMs: 5000 }`.
   */
  retryBackoff?: BackoffOptions;
  /** `mode: 'primary'`: copies re-sent at once while an outbox drains. Default 32. */
  retryConcurrency?: number;
  /** `mode: 'primary'`: called on every failed attempt of a mirror copy of a published message; its errors are ignored. */
  onMirrorError?: (event: MirrorErrorEvent) => void;
  /** How long `close()` waits for publishes, open subscriptions and the outbox before it closes the targets. Default 10000. */
  closeTimeoutMs?: number;
  /** Called by `close()` with the mirror copies it could not deliver in time (when there are some). */
  onUndelivered?: (undelivered: readonly UndeliveredCopy[]) => void;
  /** Close the target drivers when the tee closes. Default true (the tee owns its targets). */
  closeTargets?: boolean;
}

export type ResolvedOptions = Required<Omit<TeeOptions, 'consumeFrom' | 'onMirrorError' | 'onUndelivered'>> &
  Pick<TeeOptions, 'onMirrorError' | 'onUndelivered'> & { consumeFrom: number };

const KNOWN = [
  'mode',
  'consumeFrom',
  'outboxLimit',
  'retryBackoff',
  'retryConcurrency',
  'onMirrorError',
  'closeTimeoutMs',
  'onUndelivered',
  'closeTargets',
];
/** Options of the outbox, which only `mode: 'primary'` keeps. */
const OUTBOX_KEYS = ['outboxLimit', 'retryBackoff', 'retryConcurrency', 'onMirrorError'];
/** The longest timer Node keeps (a longer `setTimeout` fires at once). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

function callback<T>(raw: Record<string, unknown>, key: string): T | undefined {
  if (raw[key] !== undefined && typeof raw[key] !== 'function') bad(`options.${key}`, raw[key], 'must be a function');
  return raw[key] as T | undefined;
}

function consumeFromIndex(wanted: unknown, targets: readonly Target[]): number {
  if (wanted === undefined) return 0;
  const index = typeof wanted === 'number' ? wanted : targets.findIndex((target) => target.name === wanted);
  if (!Number.isInteger(index) || index < 0 || index >= targets.length) {
    bad('options.consumeFrom', wanted, `must be a target name or index (targets: ${targets.map((t) => t.name).join(', ')})`);
  }
  return index;
}

/** Checks the options of {@link tee} with core's shared helpers (unknown keys refused, secrets hidden). */
export function resolveOptions(options: TeeOptions, targets: readonly Target[]): ResolvedOptions {
  const raw = readOptions(DRIVER_NAME, options, KNOWN);
  const mode = raw.mode ?? 'all';
  if (mode !== 'all' && mode !== 'primary') bad('options.mode', mode, 'must be "all" or "primary"');
  for (const key of mode === 'all' ? OUTBOX_KEYS : []) {
    if (raw[key] !== undefined) bad(`options.${key}`, raw[key], `needs mode: 'primary' (mode 'all' keeps no outbox)`);
  }
  const retryBackoff = backoffOption(DRIVER_NAME, raw, 'retryBackoff', { baseMs: 100, maxMs: 5_000 });
  if (retryBackoff.maxMs < retryBackoff.baseMs) {
    bad('options.retryBackoff.maxMs', retryBackoff.maxMs, 'must be >= retryBackoff.baseMs');
  }
  return {
    mode,
    consumeFrom: consumeFromIndex(raw.consumeFrom, targets),
    outboxLimit: integerOption(DRIVER_NAME, raw, 'outboxLimit', 10_000, 1, 2 ** 31 - 1),
    retryBackoff,
    retryConcurrency: integerOption(DRIVER_NAME, raw, 'retryConcurrency', 32, 1, 10_000),
    onMirrorError: callback(raw, 'onMirrorError'),
    closeTimeoutMs: numberOption(DRIVER_NAME, raw, 'closeTimeoutMs', DEFAULT_CLOSE_TIMEOUT_MS, 0, MAX_TIMEOUT_MS),
    onUndelivered: callback(raw, 'onUndelivered'),
    closeTargets: booleanOption(DRIVER_NAME, raw, 'closeTargets', true),
  };
}
