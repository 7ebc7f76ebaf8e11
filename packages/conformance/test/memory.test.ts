import { runConformance } from '@mq-drivers/conformance/vitest';
import { connect } from '@mq-drivers/core';
import { createMemoryDriver } from '@mq-drivers/memory';

// The full suite on the in-process reference driver. Every createDriver() call is a fresh
// driver on the same named broker; the suite closes all of them.
runConformance({
  name: 'memory',
  createDriver: () =>
    createMemoryDriver({
      broker: 'conformance',
      // Short redelivery delays keep the retry and dead-letter cases fast.
      redeliveryBackoff: { baseMs: 10, maxMs: 50 },
    }),
  url: 'memory:',
  // From this folder, where @mq-drivers/memory is installed (vitest runs from the root).
  connect: (url: string) => connect(url, { resolveFrom: import.meta.dirname }),
  timeoutMs: 5_000,
  quietMs: 300,
});
