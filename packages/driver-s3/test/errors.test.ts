import { inspect } from 'node:util';
import { testS3 } from '@mq-drivers/conformance/services';
import { AuthenticationError, connect, type Driver, InvalidArgumentError, MqError, registerDriver } from '@mq-drivers/core';
import { createS3Driver, driver as definition } from '@mq-drivers/s3';
import { afterEach, describe, expect, it } from 'vitest';
import { newDriver, s3Unavailable, segmentName, testOptions } from './helpers.js';

registerDriver(definition);

/** Recognizable in any output; the `/` and `+` are there because AWS secrets hold them too. */
const SECRET = 'S3cr3t/Val+ue0123456789';
const ENCODED = encodeURIComponent(SECRET);

/** Every text an error can show: own properties (also non-enumerable and symbols), the cause chain, inspect, JSON, stack. */
function everyText(error: unknown): string {
  const texts: string[] = [];
  const seen = new Set<unknown>();
  const walk = (value: unknown, depth: number): void => {
    if (value === null || value === undefined || depth > 8) return;
    if (typeof value !== 'object' && typeof value !== 'function') {
      texts.push(String(value));
      return;
    }
    if (seen.has(value)) return;
    seen.add(value);
    for (const key of Reflect.ownKeys(value)) {
      texts.push(String(key));
      let inner: unknown;
      try {
        inner = (value as Record<PropertyKey, unknown>)[key];
      } catch {
        continue;
      }
      walk(inner, depth + 1);
    }
    if (value instanceof Error) walk(value.cause, depth + 1);
  };
  walk(error, 0);
  texts.push(inspect(error, { showHidden: true, depth: Number.POSITIVE_INFINITY }));
  texts.push(String(error));
  try {
    texts.push(JSON.stringify(error) ?? '');
  } catch {
    // a cycle: the walk above saw every field anyway
  }
  return texts.join('\n');
}

/** Fails naming where the secret shows, if it does (plain or %-encoded). */
function expectNoSecret(error: unknown): void {
  const text = everyText(error);
  for (const secret of [SECRET, ENCODED, 'S3cr3t', 'Val+ue0123456789', 'Val%2Bue0123456789']) {
    const at = text.indexOf(secret);
    expect(at, `the secret shows in the error: …${text.slice(Math.max(0, at - 120), at + secret.length + 40)}…`).toBe(-1);
  }
}

async function failure(run: () => unknown): Promise<Error> {
  try {
    await run();
  } catch (error) {
    expect(MqError.isInstance(error), `not an MqError: ${inspect(error)}`).toBe(true);
    expect((error as Error).message.startsWith('s3: '), (error as Error).message).toBe(true);
    return error as Error;
  }
  throw new Error('expected a rejection, got none');
}

const endpoint = encodeURIComponent(testS3.endpoint);

describe('s3 errors never carry a secret, and name the bad value', () => {
  it('a URL that does not parse (bad bucket, no bucket): the redacted URL is named, the secret is nowhere', async () => {
    for (const [url, shown] of [
      [`s3://AKID:${ENCODED}@bad bucket/p?endpoint=${endpoint}`, 's3://AKID:***@bad bucket/p'],
      [`s3://AKID:${ENCODED}@/p`, 's3://AKID:***@/p'],
      [`s3://AKID:${SECRET}@mq-test/p`, 's3://AKID:***@mq-test/p'], // unencoded `/` in the secret
    ] as const) {
      const error = await failure(() => connect(url));
      expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
      expect(error.message, url).toContain(shown);
      expect((error as InvalidArgumentError).value, url).toContain('AKID:***@');
      expectNoSecret(error);
    }
  });

  it('a valid URL with a bad option value names the option and the value, never the secret', async () => {
    const base = `s3://AKID:${ENCODED}@mq-test/p`;
    const cases: [string, RegExp][] = [
      [`${base}?endpoint=${endpoint}&requestTimeoutMs=abc`, /url\.requestTimeoutMs: must be a number \(got "abc"\)/],
      [`${base}?endpoint=ftp://x`, /options\.endpoint: must be an http:\/\/ or https:\/\/ URL \(got "ftp:\/\/x"\)/],
      [`${base}?endpoint=${endpoint}&createBucket=yes`, /url\.createBucket: must be true or false \(got "yes"\)/],
      [`${base}?endpoint=${endpoint}&leaseMS=100`, /unknown query parameter "leaseMS" \(did you mean leaseMs\?\)/],
      [`${base}?secretAccessKey=${ENCODED}`, /unknown query parameter "secretAccessKey"/],
      [
        `s3://AKID:${ENCODED}@Bad_Bucket/p?endpoint=${endpoint}`,
        /options\.bucket: must be a valid bucket name .*\(got "Bad_Bucket"\)/,
      ],
    ];
    for (const [url, message] of cases) {
      const error = await failure(() => connect(url));
      expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
      expect(error.message, url).toMatch(message);
      expectNoSecret(error);
    }
  });

  it('an endpoint with a password in it is shown redacted', async () => {
    const error = await failure(() => createS3Driver({ bucket: 'ok-bucket', endpoint: `ftp://user:${ENCODED}@host` }));
    expect(error.message).toContain('"ftp://user:***@host"');
    expectNoSecret(error);
  });

  it('unknown option keys are refused naming the key (a typo must not pass silently); secret-looking values are hidden', async () => {
    const typo = await failure(() => createS3Driver({ bucket: 'ok-bucket', leaseMS: 500 } as never));
    expect(InvalidArgumentError.isInstance(typo)).toBe(true);
    expect((typo as InvalidArgumentError).argument).toBe('options.leaseMS');
    expect(typo.message).toMatch(/"leaseMS" is not a known option \(known: .*\); did you mean leaseMs\?/);
    const misplaced = await failure(() => createS3Driver({ bucket: 'ok-bucket', secretAccessKey: SECRET } as never));
    expect(misplaced.message).toMatch(/"secretAccessKey" is not a known option/);
    expectNoSecret(misplaced);
    // Through the URL definition too: options given to connect() are checked the same way.
    const viaConnect = await failure(() =>
      definition.create(`s3://ok-bucket/p?endpoint=${endpoint}`, { requestTimeoutMS: 1 } as never),
    );
    expect(viaConnect.message).toMatch(/"requestTimeoutMS" is not a known option \(known: .*\); did you mean requestTimeoutMs\?/);
  });

  it('bad option values are named in the message', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ bucket: 'Bad_Bucket' }, /options\.bucket: .*\(got "Bad_Bucket"\)/],
      [
        { bucket: 'ok-bucket', requestTimeoutMs: 'abc' },
        /options\.requestTimeoutMs: must be a number from 100 to 600000 \(got "abc"\)/,
      ],
      [{ bucket: 'ok-bucket', endpoint: 'ftp://x' }, /options\.endpoint: .*\(got "ftp:\/\/x"\)/],
      [{ bucket: 'ok-bucket', leaseMs: -1 }, /options\.leaseMs: .*\(got -1\)/],
      [{ bucket: 'ok-bucket', redeliveryBackoff: { baseMS: 10, maxMs: 100 } }, /redeliveryBackoff\.baseMS/],
      [{ bucket: 'ok-bucket', redeliveryBackoff: { baseMs: 100, maxMs: 10 } }, /maxMs >= baseMs.*"maxMs":10/],
      [{ bucket: 'ok-bucket', credentials: { accessKeyId: 'AKID', secretAccessKey: 42 } }, /secretAccessKey: number/],
      [
        { bucket: 'ok-bucket', credentials: { accessKeyId: 7, secretAccessKey: SECRET } },
        /accessKeyId: number, secretAccessKey: string/,
      ],
    ];
    for (const [options, message] of cases) {
      const error = await failure(() => createS3Driver(options as never));
      expect(error.message, JSON.stringify(options)).toMatch(message);
      expectNoSecret(error);
    }
  });
});

const unavailable = await s3Unavailable();

describe.skipIf(unavailable !== undefined)(
  `s3 errors against a real endpoint${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    const drivers: Driver[] = [];
    afterEach(async () => {
      await Promise.all(drivers.splice(0).map((driver) => driver.close()));
    });

    it('a wrong secret or an unknown key id: AuthenticationError naming the S3 reason on the first call, no secret anywhere', async () => {
      for (const [accessKeyId, reason] of [
        [testS3.accessKeyId, 'SignatureDoesNotMatch'],
        ['NOSUCHACCESSKEY', 'InvalidAccessKeyId'],
      ] as const) {
        const url = `s3://${encodeURIComponent(accessKeyId)}:${ENCODED}@${testS3.bucket}/p?endpoint=${endpoint}&region=${testS3.region}`;
        const driver = await connect(url);
        drivers.push(driver);
        const segment = segmentName('auth');
        for (const call of [
          () => driver.taskPublish('x', { segment }),
          () => driver.sharePublish('x', { segment, topic: 't' }),
          () => driver.taskConsume(() => undefined, { segment, topic: 'k' }),
        ]) {
          const error = await failure(call);
          expect(AuthenticationError.isInstance(error), String(error)).toBe(true);
          expect(error.message).toContain(reason);
          expect(error.message).not.toContain('Unknown');
          expectNoSecret(error);
        }
      }
    });

    it('a cursor the driver never issued is named in the error', async () => {
      const driver = newDriver();
      drivers.push(driver);
      const error = await failure(() =>
        driver.shareConsume(() => undefined, { segment: segmentName('cursor'), topics: ['#'], from: { cursor: 'garbage' } }),
      );
      expect(InvalidArgumentError.isInstance(error)).toBe(true);
      expect(error.message).toContain('"garbage"');
    });

    it('wrong credentials given as options: no secret in the error', async () => {
      const driver = createS3Driver({
        ...testOptions(),
        credentials: { accessKeyId: testS3.accessKeyId, secretAccessKey: SECRET },
      });
      drivers.push(driver);
      const error = await failure(() => driver.taskPublish('x', { segment: segmentName('auth-options') }));
      expect(error.message).toContain('SignatureDoesNotMatch');
      expectNoSecret(error);
    });
  },
);
