import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  validateHeaders,
  validateKind,
  validateMessageId,
  validatePattern,
  validatePatterns,
  validateSegment,
  validateTopic,
} from '../dist/index.js';

function rejects(run: () => unknown, argument: string) {
  try {
    run();
  } catch (error) {
    expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
    expect((error as InstanceType<typeof InvalidArgumentError>).argument).toBe(argument);
    expect((error as Error).message).toMatch(/^core: invalid /);
    return;
  }
  throw new Error(`expected ${argument} to be rejected`);
}

describe('names', () => {
  it('accepts valid segments and rejects the rest, naming the value', () => {
    for (const ok of ['a', 'orders', 'tenant-42', 'A_b-9', 'x'.repeat(64)]) expect(validateSegment('core', ok)).toBe(ok);
    for (const bad of ['', '-a', 'a.b', 'a b', 'x'.repeat(65), 'ä', 42, undefined, null])
      rejects(() => validateSegment('core', bad), 'segment');
    expect(() => validateSegment('core', 'a.b')).toThrow(/"a\.b"/);
  });

  it('accepts dotted topics and kinds without wildcards', () => {
    for (const ok of ['Frontend.Customer.Signup', 'a', 'a-b.c_d.9']) {
      expect(validateTopic('core', ok)).toBe(ok);
      expect(validateKind('core', ok)).toBe(ok);
    }
    for (const bad of ['', 'a..b', '.a', 'a.', 'a.*', '#', 'a b', 'x'.repeat(256), 7]) {
      rejects(() => validateTopic('core', bad), 'topic');
      rejects(() => validateKind('core', bad), 'topic');
    }
  });

  it('accepts * and # only as whole words in patterns', () => {
    for (const ok of ['a.*', '#', 'a.#.z', '*.*', 'Job.#']) expect(validatePattern('core', ok)).toBe(ok);
    for (const bad of ['a*', 'a.#b', '', 'a..b', '**']) rejects(() => validatePattern('core', bad), 'topics');
    rejects(() => validatePatterns('core', []), 'topics');
    rejects(() => validatePatterns('core', ['ok', 'a*']), 'topics[1]');
  });

  it('checks header keys, values and the reserved prefix', () => {
    expect(validateHeaders('core', { 'trace-id': 'x', 'a.b_c': '' })).toEqual({ 'trace-id': 'x', 'a.b_c': '' });
    expect(validateHeaders('core', undefined)).toEqual({});
    rejects(() => validateHeaders('core', { 'x-mq-attempt': '1' }), 'headers.x-mq-attempt');
    rejects(() => validateHeaders('core', { 'X-MQ-thing': '1' }), 'headers.X-MQ-thing');
    rejects(() => validateHeaders('core', { n: 1 }), 'headers.n');
    rejects(() => validateHeaders('core', { 'bad key': 'v' }), 'headers.bad key');
    rejects(() => validateHeaders('core', ['a']), 'headers');
  });

  it('checks message ids', () => {
    expect(validateMessageId('core', 'order-42:v1')).toBe('order-42:v1');
    for (const bad of ['', 'a b', 'x'.repeat(129), 'é', 5]) rejects(() => validateMessageId('core', bad), 'id');
  });
});
