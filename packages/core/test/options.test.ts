import {
  backoffOption,
  booleanOption,
  InvalidArgumentError,
  integerOption,
  nearestName,
  numberOption,
  readOptions,
  redactValue,
  rejectUnknownKeys,
} from '@mq-drivers/core';
import { describe, expect, it } from 'vitest';

function caught(run: () => unknown): InstanceType<typeof InvalidArgumentError> {
  try {
    run();
  } catch (error) {
    if (InvalidArgumentError.isInstance(error)) return error as InstanceType<typeof InvalidArgumentError>;
    throw error;
  }
  throw new Error('did not throw');
}

describe('option helpers', () => {
  it('an unknown key is refused with the known ones and the near miss', () => {
    const error = caught(() => rejectUnknownKeys('s3', { leaseMS: 5 }, ['leaseMs', 'prefix'], 'options.'));
    expect(error.argument).toBe('options.leaseMS');
    expect(error.message).toBe(
      's3: invalid options.leaseMS: "leaseMS" is not a known option (known: leaseMs, prefix); did you mean leaseMs?',
    );
    expect(nearestName('prefx', ['leaseMs', 'prefix'])).toBe('prefix');
    expect(nearestName('somethingElse', ['leaseMs', 'prefix'])).toBeUndefined();
  });

  it('never carries a secret: secret-looking keys lose their value, URLs their password', () => {
    const secret = caught(() => rejectUnknownKeys('s3', { secretAccessKey: 'hunter2' }, ['bucket']));
    expect(secret.value).toBe('***');
    expect(JSON.stringify(secret)).not.toContain('hunter2');
    const url = caught(() => rejectUnknownKeys('rabbitmq', { uri: 'amqp://u:hunter2@h' }, ['url']));
    expect(url.value).toBe('amqp://u:***@h');
    expect(url.message).toContain('did you mean url?');
    expect(redactValue({ nested: { password: 'x', url: 'amqp://u:p@h' } })).toEqual({
      nested: { password: '***', url: 'amqp://u:***@h' },
    });
  });

  it('readOptions wants an object with known keys only', () => {
    expect(caught(() => readOptions('memory', null, ['broker'])).argument).toBe('options');
    expect(caught(() => readOptions('memory', { brokr: 'x' }, ['broker'])).argument).toBe('options.brokr');
    expect(readOptions('memory', { broker: 'x', other: undefined }, ['broker'])).toEqual({ broker: 'x', other: undefined });
  });

  it('numbers, booleans and backoffs are checked with the bad value named', () => {
    const raw = { n: 1.5, m: -1, b: 'yes', back: { baseMs: 1, maxMs: 2, factor: 2 } };
    expect(caught(() => integerOption('x', raw, 'n', 1, 1, 10)).message).toBe(
      'x: invalid options.n: number 1.5 must be a whole number from 1 to 10',
    );
    expect(caught(() => numberOption('x', raw, 'm', 0, 0, 10)).argument).toBe('options.m');
    expect(caught(() => booleanOption('x', raw, 'b', false)).argument).toBe('options.b');
    expect(caught(() => backoffOption('x', raw, 'back', { baseMs: 1, maxMs: 1 })).argument).toBe('options.back.factor');
    expect(integerOption('x', {}, 'n', 7, 1, 10)).toBe(7);
    expect(numberOption('x', { m: 2.5 }, 'm', 0, 0, 10)).toBe(2.5);
    expect(booleanOption('x', { b: true }, 'b', false)).toBe(true);
    expect(backoffOption('x', { back: { baseMs: 1, maxMs: 2 } }, 'back', { baseMs: 0, maxMs: 0 })).toEqual({
      baseMs: 1,
      maxMs: 2,
    });
  });
});
