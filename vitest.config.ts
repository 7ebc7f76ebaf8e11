import { defineConfig } from 'vitest/config';

// One test run for the whole workspace. Packages are tested through their built `dist`
// (what users install), so `pnpm test` builds first. Files run in parallel against the shared
// brokers; every test uses its own segment. Tests that must run alone (`*.isolated.test.ts`: broker
// restarts, a cluster failover, a fairness measurement that needs the S3 endpoint to itself) run
// afterwards, one file at a time, from vitest.isolated.config.ts.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'scripts/test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/*.isolated.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
