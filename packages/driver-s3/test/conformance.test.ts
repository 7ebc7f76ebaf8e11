import { waitFor } from '@mq-drivers/conformance';
import { TcpProxy, testS3 } from '@mq-drivers/conformance/services';
import { runConformance, runReconnectTests } from '@mq-drivers/conformance/vitest';
import { connect, registerDriver } from '@mq-drivers/core';
import { driver as definition } from '@mq-drivers/s3';
import { afterAll, describe, it } from 'vitest';
import { newDriver, s3Unavailable } from './helpers.js';

const unavailable = await s3Unavailable();

/** How long the endpoint refuses connections in the reconnect hook. */
const OUTAGE_MS = 300;

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
    // The bad-input group opens drivers from URLs derived from this one (with a secret in them).
    url: `s3://${encodeURIComponent(testS3.accessKeyId)}:${encodeURIComponent(testS3.secretAccessKey)}@${testS3.bucket}/conformance?endpoint=${encodeURIComponent(testS3.endpoint)}&region=${testS3.region}&forcePathStyle=true`,
    connect: (url) => {
      registerDriver(definition);
      return connect(url);
    },
  });

  // The reconnect group: its drivers reach S3 through a TCP proxy of their own, so the hook can
  // break their connections (cut, refused for a moment, then relayed again) without touching the
  // concurrent groups above, which talk to the endpoint directly.
  const proxy = await TcpProxy.inFrontOf(testS3.endpoint);
  afterAll(() => proxy.stop());
  runReconnectTests({
    name: 's3 through a TCP proxy',
    createDriver: () => newDriver({ prefix: 'conformance', endpoint: proxy.url }),
    timeoutMs: 15_000,
    reconnect: async () => {
      await proxy.refuse();
      const end = Date.now() + OUTAGE_MS;
      await waitFor(() => Date.now() >= end, { timeoutMs: OUTAGE_MS * 10, description: 'the end of the outage', intervalMs: 10 });
      await proxy.forward();
    },
  });
}
