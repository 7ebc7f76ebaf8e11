import { describe, expect, it } from 'vitest';
import { encodeBody, InvalidArgumentError, MAX_BODY_DEPTH, MqError } from '../dist/index.js';

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

  describe('nesting depth', () => {
    /** `levels` arrays or objects inside each other, with `leaf` innermost. */
    function nested(levels: number, kind: 'object' | 'array', leaf: unknown = 1): unknown {
      let body = leaf;
      for (let level = 0; level < levels; level++) body = kind === 'object' ? { n: body } : [body];
      return body;
    }

    it('is documented as 256 levels of arrays and objects', () => {
      expect(MAX_BODY_DEPTH).toBe(256);
    });

    it.each(['object', 'array'] as const)('accepts %s bodies exactly at the limit', (kind) => {
      const body = nested(MAX_BODY_DEPTH, kind);
      expect(JSON.parse(encodeBody('core', body))).toEqual(body);
      // An empty container at the innermost level counts as a level too.
      expect(() => encodeBody('core', nested(MAX_BODY_DEPTH - 1, kind, {}))).not.toThrow();
    });

    it.each([
      ['object', 257],
      ['array', 257],
      ['object', 5_000],
      ['array', 5_000],
      ['object', 100_000],
      ['array', 100_000],
    ] as const)('rejects %s bodies %i levels deep with a typed error', (kind, levels) => {
      let error: unknown;
      try {
        encodeBody('memory', nested(levels, kind));
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(Error);
      expect(MqError.isInstance(error), String(error)).toBe(true);
      expect(InvalidArgumentError.isInstance(error)).toBe(true);
      const typed = error as InstanceType<typeof InvalidArgumentError>;
      expect(typed.message).toMatch(/^memory: invalid body/);
      expect(typed.message).toMatch(/deeper than 256 levels/);
      // The path points at the first container past the limit.
      const step = kind === 'object' ? '.n' : '[0]';
      expect(typed.argument).toBe(`body${step.repeat(MAX_BODY_DEPTH)}`);
      // The error itself stays loggable.
      expect(() => JSON.stringify(typed)).not.toThrow();
    });

    it('rejects an over-deep container even when it is empty', () => {
      expect(() => encodeBody('core', nested(MAX_BODY_DEPTH, 'array', []))).toThrow(/deeper than 256 levels/);
      expect(() => encodeBody('core', nested(MAX_BODY_DEPTH, 'object', {}))).toThrow(/deeper than 256 levels/);
    });
  });
});
