import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Driver } from '@mq-drivers/core';
import { createS3Driver, type S3DriverOptions } from '@mq-drivers/s3';

export const S3 = {
  endpoint: process.env.MQ_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480',
  region: process.env.MQ_TEST_S3_REGION ?? 'us-east-1',
  accessKeyId: process.env.MQ_TEST_S3_ACCESS_KEY_ID ?? 'mqtestaccesskey',
  secretAccessKey: process.env.MQ_TEST_S3_SECRET_ACCESS_KEY ?? 'mqtestsecretkey0123456789',
  bucket: process.env.MQ_TEST_S3_BUCKET ?? 'mq-test',
};

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
    bucket: S3.bucket,
    prefix: 'driver-s3-tests',
    endpoint: S3.endpoint,
    region: S3.region,
    credentials: { accessKeyId: S3.accessKeyId, secretAccessKey: S3.secretAccessKey },
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

/** Whether the S3 endpoint answers; the reason when it does not. */
export async function s3Unavailable(): Promise<string | undefined> {
  const reason = await new Promise<string | undefined>((resolve) => {
    const req = request(S3.endpoint, { method: 'GET', timeout: 3000 }, (res) => {
      res.resume();
      resolve(undefined);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(`no answer from ${S3.endpoint} within 3 s`);
    });
    req.on('error', (error) => resolve(`${S3.endpoint} unreachable: ${error.message}`));
    req.end();
  });
  if (reason && process.env.CI === 'true') throw new Error(`S3 endpoint required in CI: ${reason}`);
  if (reason) console.warn(`[driver-s3 tests] skipped: ${reason} (run scripts/services-up.sh)`);
  return reason;
}

export async function waitFor(condition: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Describes which ids are missing and which are extra (or duplicated). */
export function diffIds(expected: readonly string[], actual: readonly string[]): string {
  const want = new Set(expected);
  const seen = new Map<string, number>();
  for (const id of actual) seen.set(id, (seen.get(id) ?? 0) + 1);
  const missing = expected.filter((id) => !seen.has(id));
  const extra = actual.filter((id) => !want.has(id));
  const dup = [...seen].filter(([, n]) => n > 1).map(([id, n]) => `${id}x${n}`);
  return `missing [${missing.join(', ')}] extra [${extra.join(', ')}] duplicated [${dup.join(', ')}]`;
}
