import { defineConfig } from 'vitest/config';

// Destructive tests (they stop and restart brokers): run alone, one file at a time, after the
// main run, so no other suite sees the outage.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.isolated.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    passWithNoTests: true,
  },
});
