/**
 * CommonJS stand-in for `vitest.ts`: vitest cannot be loaded with `require()`, so in the CJS build
 * the registration functions explain what to do instead of crashing the whole package on load.
 * `conformanceCases`, the helpers and `@mq-drivers/conformance/broken` work from CommonJS.
 */
import type { ConformanceOptions } from './options.js';

const unavailable = (name: string) => (_options: ConformanceOptions) => {
  throw new Error(
    `@mq-drivers/conformance: ${name}() registers vitest tests and vitest cannot be loaded with require(); ` +
      'import the package from an ESM test file (vitest test files are ESM), or run the cases with conformanceCases().',
  );
};

export const runConformance = unavailable('runConformance');
export const runTaskTests = unavailable('runTaskTests');
export const runShareTests = unavailable('runShareTests');
export const runOrderingTests = unavailable('runOrderingTests');
export const runAckTests = unavailable('runAckTests');
export const runLifecycleTests = unavailable('runLifecycleTests');
export const runBadInputTests = unavailable('runBadInputTests');
export const runReplayTests = unavailable('runReplayTests');
export const runDurableTests = unavailable('runDurableTests');
export const runReconnectTests = unavailable('runReconnectTests');
export const runUnregisterTests = unavailable('runUnregisterTests');
