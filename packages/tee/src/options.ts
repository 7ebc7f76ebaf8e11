/** Reads the options of `tee()` with core's shared helpers: unknown keys refused (with a "did you mean"), secrets hidden. */
import {
  backoffOption,
  booleanOption,
  DEFAULT_CLOSE_TIMEOUT_MS,
  integerOption,
  numberOption,
  readOptions,
} from '@mq-drivers/core';
import { bad, DRIVER_NAME, findTarget, type Target } from './target.js';
import type { TeeOptions } from './types.js';

export type ResolvedOptions = Required<Omit<TeeOptions, 'consumeFrom' | 'onMirrorError' | 'onUndelivered'>> &
  Pick<TeeOptions, 'onMirrorError' | 'onUndelivered'> & { consumeFrom: number };

/** Options of the outbox, which only `mode: 'primary'` keeps. */
const OUTBOX_KEYS = ['outboxLimit', 'retryBackoff', 'retryConcurrency', 'onMirrorError'];
const KNOWN = ['mode', 'consumeFrom', ...OUTBOX_KEYS, 'closeTimeoutMs', 'onUndelivered', 'closeTargets'];
/** The longest timer Node keeps (a longer `setTimeout` fires at once). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

function callback<T>(raw: Record<string, unknown>, key: string): T | undefined {
  if (raw[key] !== undefined && typeof raw[key] !== 'function') bad(`options.${key}`, raw[key], 'must be a function');
  return raw[key] as T | undefined;
}

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
    consumeFrom: raw.consumeFrom === undefined ? 0 : findTarget(DRIVER_NAME, targets, raw.consumeFrom, 'options.consumeFrom'),
    outboxLimit: integerOption(DRIVER_NAME, raw, 'outboxLimit', 10_000, 1, 2 ** 31 - 1),
    retryBackoff,
    retryConcurrency: integerOption(DRIVER_NAME, raw, 'retryConcurrency', 32, 1, 10_000),
    onMirrorError: callback(raw, 'onMirrorError'),
    closeTimeoutMs: numberOption(DRIVER_NAME, raw, 'closeTimeoutMs', DEFAULT_CLOSE_TIMEOUT_MS, 0, MAX_TIMEOUT_MS),
    onUndelivered: callback(raw, 'onUndelivered'),
    closeTargets: booleanOption(DRIVER_NAME, raw, 'closeTargets', true),
  };
}
