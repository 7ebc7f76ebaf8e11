import { runConformance } from '@mq-drivers/conformance/vitest';
import { createMemoryDriver } from '@mq-drivers/memory';
import { tee } from '@mq-drivers/tee';

// The full suite on tee(memory, memory), in both failure modes. Every createDriver() call is a
// fresh tee over fresh drivers on the SAME two named brokers (primary and mirror); the suite
// closes each tee, which closes its targets.
const backoff = { baseMs: 10, maxMs: 50 };
for (const mode of ['all', 'primary'] as const) {
  runConformance({
    name: `tee(memory,memory) mode ${mode}`,
    createDriver: () =>
      tee(
        [
          createMemoryDriver({ broker: `tee-conf-${mode}-primary`, redeliveryBackoff: backoff }),
          createMemoryDriver({ broker: `tee-conf-${mode}-mirror`, redeliveryBackoff: backoff }),
        ],
        { mode },
      ),
    timeoutMs: 5_000,
    quietMs: 300,
  });
}
