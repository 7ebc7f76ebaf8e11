/**
 * @mq-drivers/conformance/vitest — the suite registered with vitest: `runConformance(options)` and
 * one function per group, the main entry's functions with vitest's `describe` and `it` as the
 * runner. ESM only (vitest cannot be loaded with `require()`; vitest test files are ESM).
 *
 * ```ts
 * import { runConformance } from '@mq-drivers/conformance/vitest';
 * runConformance({ name: 'my-driver', createDriver: () => createMyDriver() });
 * ```
 */
import { describe, it } from 'vitest';
import type { ConformanceOptions } from './options.js';
import * as suite from './register.js';
import type { TestRunner } from './runner.js';

export type { GroupName } from './case.js';
export type { ConformanceOptions, GroupOptions, HarnessSettings } from './options.js';

/** vitest as the suite's runner: groups in `describe.concurrent` (the reconnect group `describe.sequential`). */
const vitest: TestRunner = { describe, it };

/** Registers one group (or the whole suite) as vitest `describe`/`it` blocks. */
export type RegisterVitestTests = (options: ConformanceOptions) => void;

const withVitest =
  (register: suite.RegisterTests): RegisterVitestTests =>
  (options) =>
    register(vitest, options);

/** Registers the whole suite (every group) as vitest `describe`/`it` blocks. */
export const runConformance: RegisterVitestTests = withVitest(suite.runConformance);
/** Task fan-out: one worker per kind gets each task; kinds each get a copy; segments isolate. */
export const runTaskTests: RegisterVitestTests = withVitest(suite.runTaskTests);
/** Topic sharing: every matching subscription gets each message once; `*` and `#`. */
export const runShareTests: RegisterVitestTests = withVitest(suite.runShareTests);
/** Per-publisher order for prefetch-1 consumers (when `capabilities.ordering` is `per-publisher`). */
export const runOrderingTests: RegisterVitestTests = withVitest(suite.runOrderingTests);
/** Acks, redelivery, dead letters, redrive, hand-back on close, prefetch bound. */
export const runAckTests: RegisterVitestTests = withVitest(suite.runAckTests);
/** Close drains, close is idempotent, use after close rejects, capabilities are well-formed. */
export const runLifecycleTests: RegisterVitestTests = withVitest(suite.runLifecycleTests);
/** Every bad input rejected with the right typed error, nothing delivered. */
export const runBadInputTests: RegisterVitestTests = withVitest(suite.runBadInputTests);
/** `from: 'earliest' | Date | {cursor}` (when `capabilities.replay`). */
export const runReplayTests: RegisterVitestTests = withVitest(suite.runReplayTests);
/** Tasks and named subscriptions survive while nobody consumes (when `capabilities.durable`). */
export const runDurableTests: RegisterVitestTests = withVitest(suite.runDurableTests);
/** Removing a kind or named subscription (when `capabilities.unregister`; else it must be refused). */
export const runUnregisterTests: RegisterVitestTests = withVitest(suite.runUnregisterTests);
/** Publish and consume keep working across the harness' `reconnect` hook. */
export const runReconnectTests: RegisterVitestTests = withVitest(suite.runReconnectTests);
