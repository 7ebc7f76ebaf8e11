import { runConformance } from '@mq-drivers/conformance/vitest';
import { createExampleDriver } from '../src/index.js';

// The whole suite in one call. Every createDriver() call is a fresh driver on the SAME broker
// (the suite uses separate drivers for producers and workers, and closes all of them).
runConformance({
  name: 'example',
  createDriver: () =>
    createExampleDriver({
      broker: 'conformance',
      // Short redelivery delays keep the retry and dead-letter cases fast.
      redeliveryBackoff: { baseMs: 10, maxMs: 50 },
    }),
  timeoutMs: 5_000,
  quietMs: 300,
});
