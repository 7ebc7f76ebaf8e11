import { randomBytes } from 'node:crypto';
import { serviceSkipReason, testS3 } from '@mq-drivers/conformance/services';
import type { Driver } from '@mq-drivers/core';
import { createS3Driver, type S3DriverOptions } from '@mq-drivers/s3';

/** Test settings: fast polls, short leases, fast redelivery. */
export const FAST: Partial<S3DriverOptions> = {
  minPollIntervalMs: 20,
  maxPollIntervalMs: 200,
  leaseMs: 2000,
  redeliveryBackoff: { baseMs: 20, maxMs: 200 },
  cursorSaveIntervalMs: 100,
};

export function testOptions(extra: Partial<S3DriverOptions> = {}): S3DriverOptions {
  return {
    bucket: testS3.bucket,
    prefix: 'driver-s3-tests',
    endpoint: testS3.endpoint,
    region: testS3.region,
    credentials: { accessKeyId: testS3.accessKeyId, secretAccessKey: testS3.secretAccessKey },
    createBucket: true,
    ...FAST,
    ...extra,
  };
}

export function newDriver(extra: Partial<S3DriverOptions> = {}): Driver {
  return createS3Driver(testOptions(extra));
}

export function segmentName(label: string): string {
  return `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/**
 * Why the S3 suites cannot run, or undefined when they can. In CI (`CI=true`) an unreachable
 * endpoint is a failure, never a skip.
 */
export function s3Unavailable(): Promise<string | undefined> {
  return serviceSkipReason('driver-s3 tests', [{ name: 'S3', url: testS3.endpoint }]);
}

/** Polls until `condition` holds or the deadline passes (then throws with `describe()`). */
export async function waitFor(condition: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** {@link waitFor} for a condition that needs a request (e.g. listing the bucket). */
export async function waitForAsync(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string | Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${await describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
