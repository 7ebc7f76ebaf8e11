import { waitFor } from '@mq-drivers/conformance';
import { TcpProxy, testS3 } from '@mq-drivers/conformance/services';
import { runConformance } from '@mq-drivers/conformance/vitest';
import { registerDriver } from '@mq-drivers/core';
import { driver as definition } from '@mq-drivers/s3';
import { afterAll } from 'vitest';
import { newDriver, s3Unavailable } from './helpers.js';

// Every group on the S3 endpoint (bad input also through core's connect(), from URLs derived from `url`); the reconnect group
// through a TCP proxy of its own, which its hook breaks (refused for 300 ms, then relayed again) without touching the others.
registerDriver(definition);
const proxy = await TcpProxy.inFrontOf(testS3.endpoint);
afterAll(() => proxy.stop());
const outage = async () => {
  await proxy.refuse();
  const end = Date.now() + 300;
  await waitFor(() => Date.now() >= end, { timeoutMs: 3_000, description: 'the end of the outage', intervalMs: 10 });
  await proxy.forward();
};
runConformance({
  name: 's3',
  skip: await s3Unavailable(),
  createDriver: () => newDriver({ prefix: 'conformance' }),
  timeoutMs: 30_000, // deadlines, not sleeps: the suite shares 2 cores with every other file in CI
  url: `s3://${encodeURIComponent(testS3.accessKeyId)}:${encodeURIComponent(testS3.secretAccessKey)}@${testS3.bucket}/conformance?endpoint=${encodeURIComponent(testS3.endpoint)}&region=${testS3.region}&forcePathStyle=true`,
  groups: { reconnect: { createDriver: () => newDriver({ prefix: 'conformance', endpoint: proxy.url }), reconnect: outage } },
});
