import { describe, expect, it } from 'vitest';
import { encodeBody, InvalidArgumentError } from '../dist/index.js';

class Point {
  x = 1;
}

describe('encodeBody', () => {
  it('encodes JSON values unchanged', () => {
    for (const body of [null, true, 0, -1.5, 'text', [], [1, [2, { a: null }]], { a: { b: ['c'] } }, Object.create(null)]) {
      expect(JSON.parse(encodeBody('core', body))).toEqual(JSON.parse(JSON.stringify(body)));
    }
  });

  it.each([
    ['undefined', undefined, 'body'],
    ['a function', () => 1, 'body'],
    ['a symbol', Symbol('s'), 'body'],
    ['BigInt', 10n, 'body'],
    ['NaN', Number.NaN, 'body'],
    ['Infinity', Number.POSITIVE_INFINITY, 'body'],
    ['nested undefined', { a: { b: undefined } }, 'body.a.b'],
    ['Date', { when: new Date() }, 'body.when'],
    ['Map', new Map(), 'body'],
    ['Set', [new Set()], 'body[0]'],
    ['class instance', { p: new Point() }, 'body.p'],
    // biome-ignore lint/suspicious/noSparseArray: a hole is the input under test
    ['sparse array', [1, , 3], 'body[1]'],
    ['Buffer', Buffer.from('x'), 'body'],
  ])('rejects %s and names the path', (_label, body, path) => {
    try {
      encodeBody('core', body);
      expect.unreachable();
    } catch (error) {
      expect(InvalidArgumentError.isInstance(error)).toBe(true);
      expect((error as InstanceType<typeof InvalidArgumentError>).argument).toBe(path);
    }
  });

  it('rejects cycles', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = { back: cyclic };
    expect(() => encodeBody('core', cyclic)).toThrow(/body\.self\.back.*circular/);
  });

  it('accepts a deeply nested body and names a fault deep inside one', () => {
    // Deeper than the quick check walks: the full check decides.
    let deep: Record<string, unknown> = { leaf: [1, 'two', null] };
    for (let level = 0; level < 200; level++) deep = { next: deep };
    expect(JSON.parse(encodeBody('core', deep))).toEqual(deep);
    let bad: Record<string, unknown> = { leaf: Number.NaN };
    for (let level = 0; level < 100; level++) bad = { n: bad };
    expect(() => encodeBody('core', bad)).toThrow(new RegExp(`body${'\\.n'.repeat(100)}\\.leaf`));
  });

  it('allows the same object twice when it is not a cycle', () => {
    const shared = { x: 1 };
    expect(encodeBody('core', { a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });
});
