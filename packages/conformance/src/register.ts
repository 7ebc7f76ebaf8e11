import { GROUP_NAMES, type GroupName } from './case.js';
import { groupCases } from './cases.js';
import { type ConformanceOptions, resolveOptions } from './options.js';
import { checkRunner, type SuiteBody, type TestRunner } from './runner.js';

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

function register(fn: string, runner: TestRunner, options: ConformanceOptions, groups: readonly GroupName[], title: string) {
  checkRunner(runner, fn);
  // Bad options fail at once, when the file is collected, not inside the suite.
  const suite = resolveOptions(options);
  const { describe, it } = runner;
  describe(title, async () => {
    for (const { group, options: settings, cases } of await groupCases(suite, groups)) {
      const body: SuiteBody = () => {
        for (const testCase of cases) {
          if (testCase.skipReason !== undefined) it.skip(testCase.title, () => undefined);
          else it(testCase.title, () => testCase.run(), testCase.timeoutMs);
        }
      };
      // Concurrent sibling groups overlap (in vitest); a sequential one waits for them. The reconnect
      // group breaks every connection to the broker, so it runs alone, after the others (it is last).
      if (settings.concurrent && group !== 'reconnect' && describe.concurrent) describe.concurrent(GROUP_TITLES[group], body);
      else if (describe.sequential) describe.sequential(GROUP_TITLES[group], body);
      else describe(GROUP_TITLES[group], body);
    }
  });
}

/**
 * Registers the whole suite (every group) with `runner`: one `describe` per group inside one
 * `describe(\`conformance: ${name}\`)`. For vitest, `@mq-drivers/conformance/vitest` passes the runner.
 */
export function runConformance(runner: TestRunner, options: ConformanceOptions): void {
  register('runConformance', runner, options, GROUP_NAMES, `conformance: ${options?.name}`);
}

/** Registers one group of the suite with `runner` (the group's `groups` options apply). */
export type RegisterTests = (runner: TestRunner, options: ConformanceOptions) => void;

const one =
  (group: GroupName, fn: string): RegisterTests =>
  (runner, options) =>
    register(fn, runner, options, [group], `conformance: ${options?.name}: ${GROUP_TITLES[group]}`);

/** Task fan-out: one worker per kind gets each task; kinds each get a copy; segments isolate. */
export const runTaskTests: RegisterTests = one('tasks', 'runTaskTests');
/** Topic sharing: every matching subscription gets each message once; `*` and `#`. */
export const runShareTests: RegisterTests = one('shares', 'runShareTests');
/** Per-publisher order for prefetch-1 consumers (when `capabilities.ordering` is `per-publisher`). */
export const runOrderingTests: RegisterTests = one('ordering', 'runOrderingTests');
/** Acks, redelivery, dead letters, redrive, hand-back on close, prefetch bound. */
export const runAckTests: RegisterTests = one('acks', 'runAckTests');
/** Close drains, close is idempotent, use after close rejects, capabilities are well-formed. */
export const runLifecycleTests: RegisterTests = one('lifecycle', 'runLifecycleTests');
/** Every bad input rejected with the right typed error, nothing delivered. */
export const runBadInputTests: RegisterTests = one('bad-input', 'runBadInputTests');
/** `from: 'earliest' | Date | {cursor}` (when `capabilities.replay`). */
export const runReplayTests: RegisterTests = one('replay', 'runReplayTests');
/** Tasks and named subscriptions survive while nobody consumes (when `capabilities.durable`). */
export const runDurableTests: RegisterTests = one('durable', 'runDurableTests');
/** Removing a kind or named subscription (when `capabilities.unregister`; else it must be refused). */
export const runUnregisterTests: RegisterTests = one('unregister', 'runUnregisterTests');
/** Publish and consume keep working across the harness' `reconnect` hook. */
export const runReconnectTests: RegisterTests = one('reconnect', 'runReconnectTests');
