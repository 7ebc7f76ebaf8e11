import { describe, expect, it } from 'vitest';
import { anyTopicMatches, topicMatches } from '../dist/index.js';

const cases: [pattern: string, topic: string, matches: boolean][] = [
  ['a.b', 'a.b', true],
  ['a.b', 'a.c', false],
  ['a.*', 'a.b', true],
  ['a.*', 'a', false],
  ['a.*', 'a.b.c', false],
  ['*.b', 'a.b', true],
  ['#', 'a', true],
  ['#', 'a.b.c', true],
  ['a.#', 'a', true],
  ['a.#', 'a.b.c', true],
  ['a.#', 'b.a', false],
  ['#.z', 'z', true],
  ['#.z', 'a.b.z', true],
  ['#.z', 'a.z.b', false],
  ['a.#.z', 'a.z', true],
  ['a.#.z', 'a.b.c.z', true],
  ['a.#.z', 'a.b.c', false],
  ['a.#.#.z', 'a.z', true],
  ['*.#', 'a', true],
  ['*.#', 'a.b', true],
  ['#.*', 'a', true],
  ['*.*', 'a', false],
  ['Frontend.Customer.*', 'Frontend.Customer.Signup', true],
  ['Frontend.Customer.*', 'Frontend.Order.Signup', false],
  ['Job.#', 'Job', true],
  ['a.*.#.b', 'a.x.b', true],
  ['a.*.#.b', 'a.b', false],
];

describe('topicMatches (AMQP topic rules)', () => {
  it.each(cases)('%s vs %s → %s', (pattern, topic, expected) => {
    expect(topicMatches(pattern, topic)).toBe(expected);
  });

  it('matches when any pattern does', () => {
    expect(anyTopicMatches(['x.*', 'a.#'], 'a.b')).toBe(true);
    expect(anyTopicMatches(['x.*', 'y.#'], 'a.b')).toBe(false);
  });
});
