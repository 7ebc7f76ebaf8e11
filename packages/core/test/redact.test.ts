import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { connect, InvalidArgumentError, MqError, NoSuchDriverError, redactUrl } from '../dist/index.js';

// An application folder with only the memory driver installed.
const app = mkdtempSync(join(tmpdir(), 'mq-redact-app-'));
mkdirSync(join(app, 'node_modules/@mq-drivers'), { recursive: true });
symlinkSync(resolve(import.meta.dirname, '../../driver-memory'), join(app, 'node_modules/@mq-drivers/memory'), 'dir');

/** Every place of an error a secret could hide: own properties (also hidden ones), causes, nested values, printouts. */
function leaks(error: unknown, secrets: readonly string[]): string[] {
  const found: string[] = [];
  const seen = new Set<unknown>();
  const check = (text: string, where: string) => {
    for (const secret of secrets) if (text.includes(secret)) found.push(`${where} holds ${secret}`);
  };
  const visit = (value: unknown, path: string) => {
    if (typeof value === 'string') return check(value, path);
    if (value === null || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Object.getOwnPropertyDescriptor(value, key);
      let entry: unknown;
      try {
        entry = descriptor && 'value' in descriptor ? descriptor.value : (value as Record<PropertyKey, unknown>)[key];
      } catch {
        continue;
      }
      visit(entry, `${path}.${String(key)}`);
    }
  };
  visit(error, 'error');
  check(inspect(error, { showHidden: true, depth: Number.POSITIVE_INFINITY }), 'util.inspect');
  check(JSON.stringify(error) ?? '', 'JSON.stringify');
  check(String(error), 'String(error)');
  return found;
}

describe('redactUrl', () => {
  it.each([
    ['amqp://user:S3CR3T@host:5672/vhost', 'amqp://user:***@host:5672/vhost'],
    ['amqps://user:S3CR3T@[::1]:5671', 'amqps://user:***@[::1]:5671'],
    ['s3://KEY:S3CR3T@bucket/prefix?region=x', 's3://KEY:***@bucket/prefix?region=x'],
    ['amqp://user:S3C@R3T@host', 'amqp://user:***@host'],
    ['amqp://user:S3C/R3T@host', 'amqp://user:***@host'],
    ['amqp://user:S3C%40R3T@host', 'amqp://user:***@host'],
    ['amqp://:S3CR3T@host', 'amqp://:***@host'],
    ['foo:user:S3CR3T@host', 'foo:***@host'],
    ['user:S3CR3T@host', 'user:***@host'],
    [' amqp://user:S3CR3T@host', ' amqp://user:***@host'],
    ['amqp:\\\\user:S3CR3T@host', 'amqp:\\\\user:***@host'],
    ['s3://K:S@b?endpoint=http://u:S3CR3T@minio', 's3://K:***@minio'],
    ['amqp://guest@host', 'amqp://guest@host'],
    ['amqp://host:5672/vhost', 'amqp://host:5672/vhost'],
    ['memory:', 'memory:'],
    ['amqp://user:***@host', 'amqp://user:***@host'],
  ])('%s → %s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });
});

describe('connect never leaks a password', () => {
  const secrets = ['S3CR3T', 'S3C@R3T', 'S3C%40R3T', 'S3C/R3T'];
  it.each([
    ['an unknown scheme', 'foo://user:S3CR3T@host/x', 'NoSuchDriverError'],
    ['an official scheme not installed', 'amqp://user:S3CR3T@rabbit:5672/vhost', 'NoSuchDriverError'],
    ['a password with an unescaped @', 'foo://user:S3C@R3T@host', 'NoSuchDriverError'],
    ['a password with an escaped @', 'foo://user:S3C%40R3T@host', 'NoSuchDriverError'],
    ['a password with a slash', 'foo://user:S3C/R3T@host', 'NoSuchDriverError'],
    ['an unparseable URL', '::user:S3CR3T@host', 'InvalidArgumentError'],
    ['a URL with a leading space', ' amqp://user:S3CR3T@host', 'InvalidArgumentError'],
    ['no scheme at all', 'user:S3CR3T@host', 'NoSuchDriverError'],
    ['a memory URL with credentials', 'memory://user:S3CR3T@host', 'InvalidArgumentError'],
  ])('%s', async (_label, url, name) => {
    const error = await connect(url, { resolveFrom: app }).then(
      () => expect.unreachable(),
      (e: unknown) => e,
    );
    expect(MqError.isInstance(error), String(error)).toBe(true);
    expect((error as Error).name).toBe(name);
    expect(leaks(error, secrets)).toEqual([]);
    // Still says which URL: the user part and host stay.
    expect((error as Error).message).toContain(':***@');
    if (NoSuchDriverError.isInstance(error)) expect(error.url).toBe(redactUrl(url));
    if (InvalidArgumentError.isInstance(error)) expect(error.value).toBe(redactUrl(url));
  });

  it('a URL object (not a string) is refused without its password', async () => {
    const error = await connect(new URL('amqp://user:S3CR3T@host') as never).catch((e: unknown) => e);
    expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
    expect((error as Error).message).toContain('"amqp://user:***@host"');
    expect(leaks(error, secrets)).toEqual([]);
  });

  it('finds secrets where they are (the check itself works)', () => {
    const error = new InvalidArgumentError({ driver: 'x', argument: 'url', value: { nested: ['S3CR3T'] }, message: 'bad' });
    expect(leaks(error, secrets)).not.toEqual([]);
    const hidden = new MqError({ driver: 'x', message: 'bad', cause: new Error('S3CR3T') });
    expect(leaks(hidden, secrets)).not.toEqual([]);
  });
});
