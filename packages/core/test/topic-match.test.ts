import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { anyTopicMatches, compileTopicPattern, topicMatches } from '../dist/index.js';

const cases: [pattern: string, topic: string, matches: boolean][] = [
  ['a.b', 'a.b', true],
  ['a.b', 'a.c', false],
  ['a.b', 'a', false],
  ['a', 'a.b', false],
  ['a.*', 'a.b', true],
  ['a.*', 'a', false],
  ['a.*', 'a.b.c', false],
  ['*.b', 'a.b', true],
  ['*', 'a', true],
  ['*', 'a.b', false],
  ['#', 'a', true],
  ['#', 'a.b.c', true],
  ['#.#', 'a', true],
  ['#.#', 'a.b.c', true],
  ['#.#.#', 'a.b', true],
  ['a.#', 'a', true],
  ['a.#', 'a.b.c', true],
  ['a.#', 'b.a', false],
  ['a.#.#', 'a', true],
  ['#.a', 'a', true],
  ['#.z', 'z', true],
  ['#.z', 'a.b.z', true],
  ['#.z', 'a.z.b', false],
  ['a.#.z', 'a.z', true],
  ['a.#.z', 'a.b.c.z', true],
  ['a.#.z', 'a.b.c', false],
  ['a.#.#.z', 'a.z', true],
  ['a.#.*', 'a', false],
  ['a.#.*', 'a.b', true],
  ['a.#.*', 'a.b.c', true],
  ['#.*.#', 'a', true],
  ['#.*.*.#', 'a', false],
  ['*.#', 'a', true],
  ['*.#', 'a.b', true],
  ['#.*', 'a', true],
  ['*.*', 'a', false],
  ['#.a.#', 'b.a.b', true],
  ['#.a.#', 'b.b.b', false],
  ['#.a.#.a.#', 'a.a', true],
  ['#.a.#.a.#', 'x.a.x', false],
  ['Frontend.Customer.*', 'Frontend.Customer.Signup', true],
  ['Frontend.Customer.*', 'Frontend.Order.Signup', false],
  ['Job.#', 'Job', true],
  ['a.*.#.b', 'a.x.b', true],
  ['a.*.#.b', 'a.b', false],
  // Words are compared exactly: case matters, no partial words.
  ['A.b', 'a.b', false],
  ['ab', 'a', false],
];

/** The AMQP rules written as plainly as possible: the yardstick for the fast matcher. */
function reference(pattern: string[], topic: string[]): boolean {
  if (pattern.length === 0) return topic.length === 0;
  const [word, ...rest] = pattern;
  if (word === '#') return reference(rest, topic) || (topic.length > 0 && reference(pattern, topic.slice(1)));
  if (topic.length === 0) return false;
  return (word === '*' || word === topic[0]) && reference(rest, topic.slice(1));
}

/** Every sequence of 1..maxLength items of `alphabet`. */
function* sequences(alphabet: string[], maxLength: number): Generator<string[]> {
  let level: string[][] = [[]];
  for (let length = 1; length <= maxLength; length++) {
    level = level.flatMap((prefix) => alphabet.map((item) => [...prefix, item]));
    yield* level;
  }
}

/** A small seeded PRNG (mulberry32): random but repeatable cases. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs topicMatches in a worker that is terminated after `limitMs`: a matcher that backtracks
 * exponentially would block this test for minutes (or hours), so it must fail within the limit.
 */
function matchWithin(pattern: string, topic: string, limitMs: number): Promise<{ result: boolean; ms: number }> {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     import(workerData.module).then(({ topicMatches }) => {
       const start = performance.now();
       const result = topicMatches(workerData.pattern, workerData.topic);
       parentPort.postMessage({ result, ms: performance.now() - start });
     });`,
    { eval: true, workerData: { module: new URL('../dist/index.js', import.meta.url).href, pattern, topic } },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error(`topicMatches(${pattern}, <${topic.split('.').length} words>) took longer than ${limitMs} ms`));
    }, limitMs);
    worker.once('message', (answer: { result: boolean; ms: number }) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(answer);
    });
    worker.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

describe('topicMatches (AMQP topic rules)', () => {
  it.each(cases)('%s vs %s → %s', (pattern, topic, expected) => {
    expect(topicMatches(pattern, topic)).toBe(expected);
    expect(reference(pattern.split('.'), topic.split('.')), 'the reference agrees').toBe(expected);
    expect(compileTopicPattern(pattern)(topic)).toBe(expected);
  });

  it('agrees with the reference on every pattern and topic up to 5 words', () => {
    const topics = [...sequences(['a', 'b'], 5)];
    let checked = 0;
    for (const pattern of sequences(['a', 'b', '*', '#'], 5)) {
      const joined = pattern.join('.');
      for (const topic of topics) {
        const expected = reference(pattern, topic);
        if (topicMatches(joined, topic.join('.')) !== expected) {
          expect.fail(`${joined} vs ${topic.join('.')}: expected ${expected}`);
        }
        checked++;
      }
    }
    expect(checked).toBe(1364 * 62);
  });

  it('agrees with the reference on random longer patterns and topics', () => {
    const next = random(9);
    const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)] as T;
    for (let round = 0; round < 5_000; round++) {
      const pattern = Array.from({ length: 1 + Math.floor(next() * 9) }, () => pick(['a', 'b', 'c', '*', '#', '#']));
      const topic = Array.from({ length: 1 + Math.floor(next() * 12) }, () => pick(['a', 'b', 'c']));
      const expected = reference(pattern, topic);
      if (topicMatches(pattern.join('.'), topic.join('.')) !== expected) {
        expect.fail(`${pattern.join('.')} vs ${topic.join('.')}: expected ${expected}`);
      }
    }
  });

  it('stays linear on adversarial patterns (many "#" that almost match)', async () => {
    // Before the fix each extra "#" multiplied the time by about 8: 7 of them took ~4 s on a
    // 60-word topic, 12 of them would take days. Now it is pattern words × topic words steps.
    const adversarial = `${'#.a.'.repeat(12)}b`;
    const topic = Array.from({ length: 60 }, () => 'a').join('.');
    const { result, ms } = await matchWithin(adversarial, topic, 3_000);
    expect(result).toBe(false);
    expect(ms).toBeLessThan(100);
    // Longest valid pattern (255 characters) against the longest valid topic.
    const longest = `${'#.a.'.repeat(63)}#.b`;
    const longTopic = Array.from({ length: 128 }, () => 'a').join('.');
    const start = performance.now();
    for (let i = 0; i < 100; i++) expect(topicMatches(longest, longTopic)).toBe(false);
    expect(topicMatches(longest, `${longTopic}.b`)).toBe(true);
    expect(performance.now() - start).toBeLessThan(1_000);
  });

  it('matches when any pattern does', () => {
    expect(anyTopicMatches(['x.*', 'a.#'], 'a.b')).toBe(true);
    expect(anyTopicMatches(['x.*', 'y.#'], 'a.b')).toBe(false);
    expect(anyTopicMatches([], 'a.b')).toBe(false);
  });

  it('keeps working with more distinct patterns than the cache holds', () => {
    for (let n = 0; n < 3_000; n++) expect(topicMatches(`p${n}.#`, `p${n}.x`)).toBe(true);
    expect(topicMatches('p0.#', 'p1.x')).toBe(false);
  });
});
