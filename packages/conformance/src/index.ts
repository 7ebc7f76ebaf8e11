/**
 * @mq-drivers/conformance — the suite every mq-drivers driver must pass. This entry is
 * runner-agnostic: it imports no test runner. `runConformance(runner, options)` and the per-group
 * functions register the cases with the `{describe, it}` you pass (`runner.ts`);
 * `@mq-drivers/conformance/vitest` passes vitest's.
 *
 * Layout: `runner.ts` (the runner interface), `options.ts` (harness settings, per group too),
 * `harness.ts` (per-case context: fresh drivers, unique segment, recorder, cleanup), `wait.ts`
 * (deadlines and the one watch window), `assert.ts` (exactly-once checks that name ids),
 * `groups/*.ts` (one group of cases per file), `cases.ts` (cases as data, runnable without any
 * runner), `register.ts` (registration with a runner), `vitest.ts` (the `/vitest` entry),
 * `broken/` (drivers that break one rule each, exported as `@mq-drivers/conformance/broken`),
 * `containers.ts` (throwaway brokers through testcontainers, an optional peer:
 * `@mq-drivers/conformance/containers`) and `services.ts` (the env settings, reachability check
 * and TCP proxy of real-service test files: `@mq-drivers/conformance/services`).
 */
export {
  assertExactlyOnce,
  assertInOrder,
  assertJsonEqual,
  assertNone,
  ConformanceError,
} from './assert.js';
export { type CaseDefinition, GROUP_NAMES, type GroupName } from './case.js';
export { type ConformanceCase, conformanceCases, GROUPS } from './cases.js';
export { type CaseContext, type RecordedDelivery, Recorder, uniqueSegment } from './harness.js';
export type { ConformanceOptions, GroupOptions, HarnessSettings } from './options.js';
export {
  type RegisterTests,
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
} from './register.js';
export type { DescribeFunction, ItFunction, SuiteBody, TestRunner } from './runner.js';
export { type WaitForOptions, waitFor, watchQuiet, withDeadline } from './wait.js';
