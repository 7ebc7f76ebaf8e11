import { defineConfig } from 'vitest/config';

// Tests that must run alone, one file at a time, after the main run: destructive ones (they stop
// and restart brokers, so no other suite may see the outage) and measurements that need a broker
// to themselves (S3 competing-worker fairness, a RabbitMQ cluster failover).
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.isolated.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    passWithNoTests: true,
  },
});
