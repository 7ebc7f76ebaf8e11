/**
 * The test runner the suite registers its cases with: a `describe` and an `it`, as vitest, jest,
 * mocha and `node:test` name them. `@mq-drivers/conformance/vitest` passes vitest's own; for any
 * other runner pass yours (or a small adapter, see the README). This is all the suite calls:
 *
 * ```
 * describe(`conformance: ${name}`, async () => {         // reads the capabilities first
 *   describe.concurrent('tasks', () => {                  // .sequential for the reconnect group
 *     it('one worker gets every task exactly once', run, timeoutMs);
 *     it.skip('… [skipped: driver has no replay capability]', () => undefined);
 *   });
 * });
 * ```
 */
export interface TestRunner {
  describe: DescribeFunction;
  it: ItFunction;
}

/** The body of a suite. The outermost one is async: it reads the driver's capabilities first. */
export type SuiteBody = () => void | Promise<void>;

/**
 * Registers a suite. It must accept an ASYNC body and wait for it before collecting the tests
 * registered inside (vitest and `node:test` do; a runner that does not can run the cases of
 * `conformanceCases()` instead).
 */
export interface DescribeFunction {
  (title: string, body: SuiteBody): unknown;
  /** A suite whose tests may run at the same time (a group with `concurrent: true`). Default: `describe`. */
  concurrent?: (title: string, body: SuiteBody) => unknown;
  /** A suite that runs alone, after its concurrent siblings (the reconnect group). Default: `describe`. */
  sequential?: (title: string, body: SuiteBody) => unknown;
}

/** Registers one case. */
export interface ItFunction {
  /** A case: `test` rejects when the driver breaks the rule; `timeoutMs` bounds the whole case. */
  (title: string, test: () => Promise<void>, timeoutMs: number): unknown;
  /**
   * A VISIBLE skip: a case the driver or harness cannot run, the reason in its title
   * (`… [skipped: <reason>]`). Cases are never left out silently.
   */
  skip(title: string, test: () => void): unknown;
}

/** Throws a TypeError unless `runner` is a {@link TestRunner}; `fn` names the caller in the message. */
export function checkRunner(runner: unknown, fn: string): asserts runner is TestRunner {
  const candidate = runner as { describe?: unknown; it?: unknown } | null;
  if (candidate !== null && typeof candidate === 'object' && 'createDriver' in candidate) {
    throw new TypeError(
      `@mq-drivers/conformance: ${fn}(runner, options) takes the test runner first; ` +
        `with vitest, import { ${fn} } from '@mq-drivers/conformance/vitest' and call ${fn}(options)`,
    );
  }
  if (
    candidate === null ||
    typeof candidate !== 'object' ||
    typeof candidate.describe !== 'function' ||
    typeof candidate.it !== 'function' ||
    typeof (candidate.it as { skip?: unknown }).skip !== 'function'
  ) {
    throw new TypeError(
      `@mq-drivers/conformance: ${fn}(runner, options) needs runner = { describe, it } with it.skip (see TestRunner)`,
    );
  }
}
