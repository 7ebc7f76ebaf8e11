/**
 * @mq-drivers/conformance — the suite every mq-drivers driver must pass.
 *
 * Layout: `options.ts` (harness settings), `harness.ts` (per-case context: fresh drivers, unique
 * segment, recorder, cleanup), `wait.ts` (deadlines and the one watch window), `assert.ts`
 * (exactly-once checks that name ids), `groups/*.ts` (one group of cases per file), `cases.ts`
 * (cases as data, runnable without vitest), `vitest.ts` (registration), `broken/` (drivers that
 * break one rule each, exported as `@mq-drivers/conformance/broken`), `containers.ts` (throwaway
 * brokers through testcontainers, an optional peer: `@mq-drivers/conformance/containers`) and
 * `services.ts` (the env settings, reachability check and TCP proxy of real-service test files:
 * `@mq-drivers/conformance/services`).
 */
export {
  assertExactlyOnce,
  assertInOrder,
  assertJsonEqual,
  assertNone,
  ConformanceError,
} from './assert.js';
export type { CaseDefinition, GroupName } from './case.js';
export { type ConformanceCase, conformanceCases, GROUPS } from './cases.js';
export { type CaseContext, type Delivery, Recorder, uniqueSegment } from './harness.js';
export type { ConformanceOptions } from './options.js';
export {
  runAckTests,
  runBadInputTests,
  runConformance,
  runDurableTests,
  runLifecycleTests,
  runOrderingTests,
  runReconnectTests,
  runReplayTests,
  runShareTests,
  runTaskTests,
  runUnregisterTests,
} from './vitest.js';
export { type WaitForOptions, waitFor, watchQuiet, withDeadline } from './wait.js';
