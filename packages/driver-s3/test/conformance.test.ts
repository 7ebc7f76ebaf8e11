import { runConformance } from '@mq-drivers/conformance';
import { describe, it } from 'vitest';
import { newDriver, s3Unavailable } from './helpers.js';

const unavailable = await s3Unavailable();

if (unavailable) {
  describe.skip(`conformance: s3 (skipped: ${unavailable})`, () => {
    it('needs an S3 endpoint', () => undefined);
  });
} else {
  runConformance({
    name: 's3',
    // A fresh driver per call, all on the same bucket and prefix; fast polls and short leases.
    createDriver: () => newDriver({ prefix: 'conformance' }),
    timeoutMs: 15_000,
  });
}
