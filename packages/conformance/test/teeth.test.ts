import { type ConformanceCase, conformanceCases } from '@mq-drivers/conformance';
import { type BrokenDriver, brokenDrivers } from '@mq-drivers/conformance/broken';
import { connect } from '@mq-drivers/core';
import { createMemoryDriver } from '@mq-drivers/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The suite must have teeth: every deliberately broken driver fails it, in the case aimed at the
 * rule it breaks, while the unbroken memory driver passes every case. All runs go through one
 * pool so the whole file stays well under a minute.
 */
const HARNESS = { timeoutMs: 1_500, quietMs: 150, messageCount: 12 } as const;
const POOL = 48;

interface Outcome {
  testCase: ConformanceCase;
  error?: unknown;
}

const factory = (broker: string) => () => createMemoryDriver({ broker, redeliveryBackoff: { baseMs: 2, maxMs: 10 } });

async function pool<T>(jobs: (() => Promise<T>)[], size: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const index = next++;
      results[index] = await jobs[index]!();
    }
  };
  await Promise.all(Array.from({ length: size }, worker));
  return results;
}

// From this folder, where @mq-drivers/memory is installed (vitest runs from the root).
const openByUrl = (url: string) => connect(url, { resolveFrom: import.meta.dirname });

const subjects: { id: string; broken?: BrokenDriver }[] = [
  { id: 'unbroken' },
  ...brokenDrivers.map((broken) => ({ id: broken.id, broken })),
];
const outcomes = new Map<string, Outcome[]>();

beforeAll(async () => {
  const runs: { subject: string; testCase: ConformanceCase }[] = [];
  for (const subject of subjects) {
    const base = factory(`teeth-${subject.id}`);
    const cases = await conformanceCases({
      name: subject.id,
      createDriver: subject.broken ? subject.broken.wrap(base) : base,
      // Exercise the reconnect case too: the memory broker has no connection to break.
      reconnect: async () => undefined,
      url: 'memory:',
      connect: subject.broken?.wrapConnect ? subject.broken.wrapConnect(openByUrl) : openByUrl,
      ...HARNESS,
    });
    for (const testCase of cases) if (testCase.skipReason === undefined) runs.push({ subject: subject.id, testCase });
    outcomes.set(subject.id, []);
  }
  const results = await pool(
    runs.map(({ subject, testCase }) => async () => {
      try {
        await testCase.run();
        return { subject, testCase };
      } catch (error) {
        return { subject, testCase, error };
      }
    }),
    POOL,
  );
  for (const { subject, ...outcome } of results) outcomes.get(subject)!.push(outcome);
}, 120_000);

const failures = (id: string) => (outcomes.get(id) ?? []).filter((outcome) => 'error' in outcome);
const describeFailure = (outcome: Outcome) =>
  `${outcome.testCase.id}: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}`;

describe('conformance teeth', () => {
  // TEETH_REPORT=1 prints which cases caught which broken driver.
  afterAll(() => {
    if (!process.env.TEETH_REPORT) return;
    for (const [id, list] of outcomes) {
      const caught = list.filter((outcome) => 'error' in outcome).map((outcome) => outcome.testCase.id);
      console.log(`${id} (${caught.length}/${list.length}): ${caught.join(', ')}`);
    }
  });

  it('the unbroken memory driver passes every case', () => {
    expect(outcomes.get('unbroken')!.length).toBeGreaterThan(40);
    expect(failures('unbroken').map(describeFailure)).toEqual([]);
  });

  it.each(brokenDrivers.map((broken) => [broken.id, broken] as const))('%s is caught', (id, broken) => {
    const failed = failures(id).map((outcome) => outcome.testCase.id);
    expect(failed.length, `${id} (${broken.breaks}) passed the whole suite`).toBeGreaterThan(0);
    for (const aimed of broken.aimedAt) {
      expect(failed, `${id} (${broken.breaks}) was not caught by ${aimed}`).toContain(aimed);
    }
  });
});
