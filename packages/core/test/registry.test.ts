import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, drivers, InvalidArgumentError, NoSuchDriverError, registerDriver, UnsupportedError } from '../dist/index.js';

// A throwaway application folder laid out as npm/pnpm would: the official memory driver linked in,
// a community package `mq-driver-fake`, and one that speaks an old contract version.
const app = mkdtempSync(join(tmpdir(), 'mq-registry-app-'));
const modules = join(app, 'node_modules');
mkdirSync(join(modules, '@mq-drivers'), { recursive: true });
symlinkSync(resolve(import.meta.dirname, '../../driver-memory'), join(modules, '@mq-drivers/memory'), 'dir');

function communityPackage(name: string, scheme: string, version: string) {
  const dir = join(modules, `mq-driver-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `mq-driver-${name}`, type: 'module', exports: './index.js' }));
  writeFileSync(
    join(dir, 'index.js'),
    `export const driver = { name: ${JSON.stringify(name)}, schemes: [${JSON.stringify(scheme)}],
       create: (url, options) => ({ specificationVersion: ${JSON.stringify(version)}, name: ${JSON.stringify(name)}, url, options,
         capabilities: {}, close: async () => {} }) };`,
  );
}
communityPackage('fake', 'fake', 'v1');
communityPackage('old', 'old', 'v0');

afterAll(() => {
  // temp folders are left for the OS; nothing else to undo
});

describe('registry', () => {
  it('lists installed drivers found from the application folder, before loading them', () => {
    const list = drivers({ resolveFrom: app });
    expect(list).toEqual(
      expect.arrayContaining([
        { name: 'memory', schemes: ['memory'], source: 'installed', packageName: '@mq-drivers/memory' },
        { name: 'fake', schemes: ['fake'], source: 'installed', packageName: 'mq-driver-fake' },
      ]),
    );
  });

  it('finds the official package by scheme without an import', async () => {
    const driver = await connect('memory:', { resolveFrom: app });
    expect(driver.name).toBe('memory');
    expect(driver.specificationVersion).toBe('v1');
    await driver.close();
    expect(drivers({ resolveFrom: app }).find((d) => d.name === 'memory')?.source).toBe('registered');
  });

  it('finds a community package mq-driver-<scheme> and passes the options on', async () => {
    const driver = (await connect('fake://somewhere', { resolveFrom: app, answer: 42 })) as unknown as {
      name: string;
      url: string;
      options: unknown;
    };
    expect(driver.name).toBe('fake');
    expect(driver.url).toBe('fake://somewhere');
    expect(driver.options).toEqual({ answer: 42 });
  });

  it('refuses a driver of another contract version', async () => {
    const error = await connect('old:', { resolveFrom: app }).catch((e: unknown) => e);
    expect(UnsupportedError.isInstance(error)).toBe(true);
    expect(String(error)).toMatch(/specificationVersion "v0"/);
  });

  it('names what is available and the install command for an unknown scheme', async () => {
    const error = await connect('amqp://localhost', { resolveFrom: app }).catch((e: unknown) => e);
    expect(NoSuchDriverError.isInstance(error)).toBe(true);
    const typed = error as InstanceType<typeof NoSuchDriverError>;
    expect(typed.scheme).toBe('amqp');
    expect(typed.installCommand).toBe('npm install @mq-drivers/rabbitmq');
    expect(typed.availableDrivers.join(' ')).toMatch(/memory/);
    expect(typed.message).toMatch(/npm install @mq-drivers\/rabbitmq/);
    const custom = await connect('nothing-here:', { resolveFrom: app }).catch((e: unknown) => e);
    expect((custom as Error).message).toMatch(/mq-driver-nothing-here/);
  });

  it('adds a custom driver with registerDriver', async () => {
    registerDriver({
      name: 'custom',
      schemes: ['custom'],
      create: async (url) => ({ ...(await connect('memory:', { resolveFrom: app })), name: `custom(${url})` }),
    });
    const driver = await connect('custom:x', { resolveFrom: app });
    expect(driver.name).toBe('custom(custom:x)');
    expect(drivers().some((d) => d.name === 'custom' && d.source === 'registered')).toBe(true);
  });

  it('rejects bad URLs and definitions with typed errors', async () => {
    expect(InvalidArgumentError.isInstance(await connect('no scheme here').catch((e: unknown) => e))).toBe(true);
    expect(InvalidArgumentError.isInstance(await connect(42 as unknown as string).catch((e: unknown) => e))).toBe(true);
    expect(() => registerDriver({ name: 'x', schemes: ['Bad:'], create: () => ({}) as never })).toThrow(/schemes/);
    expect(() => registerDriver({ name: '', schemes: ['x'], create: () => ({}) as never })).toThrow(/name/);
  });
});
