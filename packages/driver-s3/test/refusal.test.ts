import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { testS3 } from '@mq-drivers/conformance/services';
import {
  AuthenticationError,
  ConnectionError,
  type Driver,
  InvalidArgumentError,
  PublishError,
  TopologyError,
  UnsupportedError,
} from '@mq-drivers/core';
import { createS3Driver, driver as definition } from '@mq-drivers/s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Unavailable, segmentName, testOptions } from './helpers.js';

/** A fake S3 that stores objects but ignores If-None-Match, like most S3 emulators. */
function fakeS3(): Promise<Server> {
  const objects = new Map<string, Buffer>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
      if (req.method === 'PUT') {
        objects.set(path, Buffer.concat(chunks));
        res.writeHead(200, { ETag: '"0"' }).end();
      } else if (req.method === 'HEAD' && path.split('/').filter(Boolean).length === 1) {
        res.writeHead(200).end(); // the bucket exists
      } else if (req.method === 'GET' && objects.has(path)) {
        res.writeHead(200).end(objects.get(path));
      } else if (req.method === 'DELETE') {
        objects.delete(path);
        res.writeHead(204).end();
      } else {
        res.writeHead(404, { 'Content-Type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code></Error>');
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('s3 driver refuses what it cannot work with', () => {
  let server: Server;
  beforeAll(async () => {
    server = await fakeS3();
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const fake = (): Driver =>
    createS3Driver({
      bucket: 'fake-bucket',
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      requestTimeoutMs: 3000,
    });

  it('an endpoint that does not enforce conditional writes is refused with a clear error', async () => {
    const driver = fake();
    try {
      const publish = driver.taskPublish('x', { segment: 's' });
      await expect(publish).rejects.toSatisfy(UnsupportedError.isInstance);
      await expect(publish).rejects.toThrow(/does not enforce conditional writes.*task groups/);
      await expect(driver.taskConsume(() => undefined, { segment: 's', topic: 'k' })).rejects.toThrow(/If-None-Match/);
    } finally {
      await driver.close();
    }
  });

  it('options are validated at construction, naming the bad option', () => {
    expect(() => createS3Driver({} as never)).toThrow(/options.bucket.*missing required option `bucket`/);
    expect(() => createS3Driver({ bucket: 'ok-bucket', leaseMs: -1 })).toThrow(InvalidArgumentError);
    expect(() => definition.create('s3://ok-bucket/p?nonsense=1')).toThrow(/unknown query parameter/);
    expect(() => definition.create('s3://ok-bucket/p?leaseMs=abc')).toThrow(/url.leaseMs/);
  });

  it('an endpoint that is down makes publishes reject after a bounded time', async () => {
    const driver = createS3Driver({
      bucket: 'nobucket',
      endpoint: 'http://127.0.0.1:1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      requestTimeoutMs: 2000,
    });
    const started = Date.now();
    try {
      const error = await driver.taskPublish('x', { segment: 's' }).catch((e: unknown) => e);
      expect(ConnectionError.isInstance(error) || PublishError.isInstance(error), String(error)).toBe(true);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await driver.close();
    }
  });
});

const unavailable = await s3Unavailable();

describe.skipIf(unavailable !== undefined)(
  `s3 driver against a real endpoint: bad setup${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    it('a missing bucket is an error naming it (created only with createBucket: true)', async () => {
      const bucket = `mq-missing-${Date.now().toString(36)}`;
      const driver = createS3Driver({ ...testOptions(), bucket, createBucket: false });
      try {
        const error = await driver.sharePublish('x', { segment: 's', topic: 't' }).catch((e: unknown) => e);
        expect(TopologyError.isInstance(error), String(error)).toBe(true);
        expect(String((error as Error).message)).toContain(bucket);
        expect(String((error as Error).message)).toContain('createBucket');
      } finally {
        await driver.close();
      }
    });

    it('wrong credentials are an AuthenticationError', async () => {
      const driver = createS3Driver({
        ...testOptions(),
        credentials: { accessKeyId: testS3.accessKeyId, secretAccessKey: 'wrong' },
      });
      try {
        const error = await driver.taskPublish('x', { segment: segmentName('auth') }).catch((e: unknown) => e);
        expect(AuthenticationError.isInstance(error), String(error)).toBe(true);
      } finally {
        await driver.close();
      }
    });

    it('connect() finds the driver by its s3:// URL with query parameters', async () => {
      const { connect, registerDriver } = await import('@mq-drivers/core');
      registerDriver(definition);
      const url = `s3://${encodeURIComponent(testS3.accessKeyId)}:${encodeURIComponent(testS3.secretAccessKey)}@${testS3.bucket}/driver-s3-tests?endpoint=${encodeURIComponent(testS3.endpoint)}&region=${testS3.region}&forcePathStyle=true&maxPollIntervalMs=200`;
      const driver = await connect(url);
      try {
        const segment = segmentName('connect');
        const got: string[] = [];
        await driver.shareConsume((m) => void got.push(m.id), { segment, topics: ['#'] });
        const { id } = await driver.sharePublish({ hello: 'world' }, { segment, topic: 'greeting' });
        const deadline = Date.now() + 10_000;
        while (got.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        expect(got).toEqual([id]);
      } finally {
        await driver.close();
      }
    });
  },
);
