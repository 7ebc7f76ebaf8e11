import { describe, it } from 'vitest';
import type { CaseDefinition, GroupName } from './case.js';
import { buildCases, GROUPS, probeCapabilities } from './cases.js';
import { type ConformanceOptions, type ResolvedOptions, resolveOptions } from './options.js';

const GROUP_TITLES: Record<GroupName, string> = {
  tasks: 'tasks',
  shares: 'shares',
  ordering: 'ordering',
  acks: 'acks',
  lifecycle: 'lifecycle',
  'bad-input': 'bad input',
  replay: 'replay',
  durable: 'durable',
  unregister: 'unregister',
  reconnect: 'reconnect',
};

function register(options: ConformanceOptions, groups: readonly GroupName[], title: string): void {
  const resolved: ResolvedOptions = resolveOptions(options);
  describe(title, async () => {
    const capabilities = await probeCapabilities(resolved);
    for (const group of groups) {
      const definitions: readonly CaseDefinition[] = GROUPS[group];
      // Concurrent sibling groups overlap in vitest; a sequential one waits for them. The reconnect
      // group breaks every connection to the broker, so it runs alone, after the others (it is last).
      const suite = resolved.concurrent && group !== 'reconnect' ? describe.concurrent : describe.sequential;
      suite(GROUP_TITLES[group], () => {
        for (const testCase of buildCases(definitions, resolved, capabilities)) {
          if (testCase.skipReason !== undefined) it.skip(testCase.title, () => undefined);
          else it(testCase.title, () => testCase.run(), testCase.timeoutMs);
        }
      });
    }
  });
}

const ALL = Object.keys(GROUPS) as GroupName[];

/** Registers the whole suite (every group) as vitest `describe`/`it` blocks. */
export function runConformance(options: ConformanceOptions): void {
  register(options, ALL, `conformance: ${options?.name}`);
}

const one = (group: GroupName) => (options: ConformanceOptions) =>
  register(options, [group], `conformance: ${options?.name}: ${GROUP_TITLES[group]}`);

/** Task fan-out: one worker per kind gets each task; kinds each get a copy; segments isolate. */
export const runTaskTests = one('tasks');
/** Topic sharing: every matching subscription gets each message once; `*` and `#`. */
export const runShareTests = one('shares');
/** Per-publisher order for prefetch-1 consumers (when `capabilities.ordering` is `per-publisher`). */
export const runOrderingTests = one('ordering');
/** Acks, redelivery, dead letters, redrive, hand-back on close, prefetch bound. */
export const runAckTests = one('acks');
/** Close drains, close is idempotent, use after close rejects, capabilities are well-formed. */
export const runLifecycleTests = one('lifecycle');
/** Every bad input rejected with the right typed error, nothing delivered. */
export const runBadInputTests = one('bad-input');
/** `from: 'earliest' | Date | {cursor}` (when `capabilities.replay`). */
export const runReplayTests = one('replay');
/** Tasks and named subscriptions survive while nobody consumes (when `capabilities.durable`). */
export const runDurableTests = one('durable');
/** Removing a kind or named subscription (when `capabilities.unregister`; else it must be refused). */
export const runUnregisterTests = one('unregister');
/** Publish and consume keep working across the harness' `reconnect` hook. */
export const runReconnectTests = one('reconnect');
