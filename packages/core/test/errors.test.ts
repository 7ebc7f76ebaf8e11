import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import * as esm from '../dist/index.js';

// The CJS build is a second copy of every class: what users get with two installed versions of core.
const cjs = createRequire(import.meta.url)('../dist/index.cjs') as typeof esm;

const makers = {
  InvalidArgumentError: (m: typeof esm) => new m.InvalidArgumentError({ driver: 'x', argument: 'a', value: 1, message: 'bad' }),
  MessageTooLargeError: (m: typeof esm) => new m.MessageTooLargeError({ driver: 'x', bytes: 2, maxBytes: 1 }),
  DriverClosedError: (m: typeof esm) => new m.DriverClosedError({ driver: 'x' }),
  NoSuchDriverError: (m: typeof esm) => new m.NoSuchDriverError({ scheme: 'zz', availableDrivers: [] }),
  ConnectionError: (m: typeof esm) => new m.ConnectionError({ driver: 'x', host: 'h:1' }),
  AuthenticationError: (m: typeof esm) => new m.AuthenticationError({ driver: 'x', message: 'no' }),
  PublishError: (m: typeof esm) => new m.PublishError({ driver: 'x', message: 'nack' }),
  TopologyError: (m: typeof esm) => new m.TopologyError({ driver: 'x', resource: 'q', message: 'differs' }),
  UnsupportedError: (m: typeof esm) => new m.UnsupportedError({ driver: 'x', feature: 'replay' }),
} as const;

describe('branded errors', () => {
  it('are recognised across package copies, and only as their own class', () => {
    expect(cjs.MqError).not.toBe(esm.MqError);
    for (const [name, make] of Object.entries(makers)) {
      const fromCjs = make(cjs);
      expect(esm.MqError.isInstance(fromCjs), name).toBe(true);
      expect(fromCjs instanceof esm.MqError, name).toBe(false);
      for (const other of Object.keys(makers)) {
        const checker = (esm as unknown as Record<string, { isInstance(e: unknown): boolean }>)[other];
        expect(checker?.isInstance(fromCjs), `${other}.isInstance(${name})`).toBe(other === name);
      }
      expect(fromCjs.name).toBe(name);
      expect(fromCjs.message.startsWith(name === 'NoSuchDriverError' ? 'core: ' : 'x: ')).toBe(true);
    }
    expect(esm.MqError.isInstance(new Error('plain'))).toBe(false);
    expect(esm.MqError.isInstance(null)).toBe(false);
  });

  it('keeps the cause', () => {
    const cause = new Error('socket hang up');
    const error = new esm.ConnectionError({ driver: 'rabbitmq', host: '127.0.0.1:1', cause });
    expect(error.cause).toBe(cause);
    expect(error.message).toBe('rabbitmq: cannot connect to 127.0.0.1:1');
  });
});
