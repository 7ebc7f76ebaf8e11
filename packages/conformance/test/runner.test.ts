import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as main from '@mq-drivers/conformance';
import {
  type ConformanceOptions,
  conformanceCases,
  GROUP_NAMES,
  GROUPS,
  runConformance,
  runReconnectTests,
  type SuiteBody,
  type TestRunner,
} from '@mq-drivers/conformance';
import * as vitestEntry from '@mq-drivers/conformance/vitest';
import { createMemoryDriver } from '@mq-drivers/memory';
import { describe, expect, it } from 'vitest';

// The runner-agnostic main entry: what it registers with a runner, the per-group options, that
// it loads no test runner, and that it runs on node:test.
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const TOTAL = GROUP_NAMES.reduce((sum, group) => sum + GROUPS[group].length, 0);

/** A runner that records what the suite registers; `collect()` runs the suite bodies, as a runner would. */
function recorder() {
  const suites: { path: string; kind: string }[] = [];
  const tests: { path: string; title: string; skipped: boolean; timeoutMs?: number; run?: () => Promise<void> }[] = [];
  const queue: { path: string; body: SuiteBody }[] = [];
  let current = '';
  const suite = (kind: string) => (title: string, body: SuiteBody) => {
    const path = current ? `${current} > ${title}` : title;
    suites.push({ path, kind });
    queue.push({ path, body });
  };
  const runner: TestRunner = {
    describe: Object.assign(suite('describe'), { concurrent: suite('concurrent'), sequential: suite('sequential') }),
    it: Object.assign(
      (title: string, run: () => Promise<void>, timeoutMs: number) => {
        tests.push({ path: current, title, skipped: false, timeoutMs, run });
      },
      { skip: (title: string) => void tests.push({ path: current, title, skipped: true }) },
    ),
  };
  const collect = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      current = next.path;
      await next.body();
    }
    current = '';
  };
  const find = (group: string, idPrefix = '') =>
    tests.filter((test) => test.path.endsWith(` > ${group}`) && test.title.startsWith(idPrefix));
  return { runner, suites, tests, collect, find };
}

/** A memory driver factory on its own broker that counts its calls. */
function counted(broker: string) {
  const factory = Object.assign(
    () => {
      factory.calls++;
      return createMemoryDriver({ broker, redeliveryBackoff: { baseMs: 5, maxMs: 20 } });
    },
    { calls: 0 },
  );
  return factory;
}

const FAST = { timeoutMs: 2_000, quietMs: 100, messageCount: 6 } as const;

describe('the runner-agnostic entry', () => {
  it('registers every case of every group: groups concurrent, reconnect sequential and last, skips visible with the reason', async () => {
    const { runner, suites, tests, collect } = recorder();
    runConformance(runner, { name: 'memory', createDriver: counted('runner-all'), ...FAST });
    expect(suites).toEqual([{ path: 'conformance: memory', kind: 'describe' }]);
    await collect();
    expect(suites.slice(1).map(({ kind }) => kind)).toEqual([...GROUP_NAMES.slice(0, -1).map(() => 'concurrent'), 'sequential']);
    expect(suites.at(-1)!.path).toBe('conformance: memory > reconnect');
    expect(tests).toHaveLength(TOTAL);
    for (const test of tests.filter(({ skipped }) => skipped)) expect(test.title).toMatch(/ \[skipped: .+\]$/);
    const reconnect = tests.filter(({ path }) => path.endsWith('> reconnect'));
    expect(reconnect.length).toBeGreaterThan(0);
    for (const test of reconnect) expect(test.title).toContain('[skipped: the harness gives no `reconnect` hook]');
    for (const test of tests.filter(({ skipped }) => !skipped)) expect(test.timeoutMs).toBeGreaterThan(FAST.timeoutMs);
  });

  it('uses plain describe when the runner has no concurrent/sequential, and for `concurrent: false` groups', async () => {
    const plain = recorder();
    const bare: TestRunner = { describe: (title, body) => plain.runner.describe(title, body), it: plain.runner.it };
    runConformance(bare, { name: 'memory', createDriver: counted('runner-bare'), ...FAST });
    await plain.collect();
    expect(new Set(plain.suites.map(({ kind }) => kind))).toEqual(new Set(['describe']));
    expect(plain.tests).toHaveLength(TOTAL);

    const { runner, suites, collect } = recorder();
    runConformance(runner, {
      name: 'memory',
      createDriver: counted('runner-seq'),
      ...FAST,
      groups: { acks: { concurrent: false } },
    });
    await collect();
    expect(suites.find(({ path }) => path.endsWith('> acks'))!.kind).toBe('sequential');
    expect(suites.find(({ path }) => path.endsWith('> tasks'))!.kind).toBe('concurrent');
  });

  it('`skip` registers every case as a visible skip with the reason and creates no driver', async () => {
    const { runner, tests, collect } = recorder();
    const createDriver = counted('runner-skip');
    runConformance(runner, { name: 'memory', createDriver, skip: 'no broker here' });
    await collect();
    expect(tests).toHaveLength(TOTAL);
    for (const test of tests) {
      expect(test.skipped).toBe(true);
      expect(test.title).toMatch(/ \[skipped: no broker here\]$/);
    }
    expect(createDriver.calls).toBe(0);
  });

  it('a group with settings of its own runs with them, the other groups with the suite-wide ones', async () => {
    const { runner, collect, find } = recorder();
    const suiteDriver = counted('runner-groups');
    const reconnectDriver = counted('runner-groups-reconnect');
    let hooks = 0;
    runConformance(runner, {
      name: 'memory',
      createDriver: suiteDriver,
      ...FAST,
      groups: {
        reconnect: { createDriver: reconnectDriver, reconnect: async () => void hooks++, timeoutMs: 3_000 },
        tasks: { skip: 'not today' },
      },
    });
    await collect();
    // Capabilities are read once per factory.
    expect([suiteDriver.calls, reconnectDriver.calls]).toEqual([1, 1]);
    for (const test of find('tasks')) expect(test.title).toMatch(/ \[skipped: not today\]$/);
    const [keepsWorking] = find('reconnect', 'publish and consume keep working');
    expect(keepsWorking?.skipped).toBe(false);
    const budget = GROUPS.reconnect.find(({ name }) => name === keepsWorking!.title)!.budget ?? 4;
    expect(keepsWorking!.timeoutMs).toBe(budget * 3_000 + 8 * FAST.quietMs + 5_000);
    await keepsWorking!.run!();
    expect(hooks).toBeGreaterThan(0);
    expect(reconnectDriver.calls).toBeGreaterThan(1);
    expect(suiteDriver.calls).toBe(1);
    const [capabilities] = find('lifecycle', 'a driver reports specificationVersion');
    await capabilities!.run!();
    expect(suiteDriver.calls).toBeGreaterThan(1);
  });

  it('a per-group function registers that group only, with its group settings', async () => {
    const { runner, suites, tests, collect } = recorder();
    runReconnectTests(runner, {
      name: 'memory',
      createDriver: counted('runner-one'),
      groups: { reconnect: { reconnect: async () => undefined } },
    });
    await collect();
    expect(suites.map(({ path }) => path)).toEqual([
      'conformance: memory: reconnect',
      'conformance: memory: reconnect > reconnect',
    ]);
    expect(tests).toHaveLength(GROUPS.reconnect.length);
    expect(tests.every(({ skipped }) => !skipped)).toBe(true);
  });

  it('refuses bad options and a missing runner at registration, naming what is wrong', () => {
    const { runner } = recorder();
    const createDriver = counted('runner-bad');
    const bad = (options: unknown) => () => runConformance(runner, options as ConformanceOptions);
    expect(bad({ name: 'x', createDriver, groups: { task: {} } })).toThrow(/unknown group\(s\) `groups\.task`/);
    expect(bad({ name: 'x', createDriver, groups: { tasks: { name: 'y' } } })).toThrow(
      /unknown option\(s\) `groups\.tasks\.name`/,
    );
    expect(bad({ name: 'x', createDriver, groups: { tasks: { timeoutMs: 1 } } })).toThrow(/`groups\.tasks\.timeoutMs` must be/);
    expect(bad({ name: 'x', createDriver, groups: { tasks: { skip: '' } } })).toThrow(
      /`groups\.tasks\.skip` must be a non-empty/,
    );
    expect(bad({ name: 'x', createDriver, skip: 3 })).toThrow(/`skip` must be a non-empty/);
    expect(bad({ name: 'x', createDriver, groups: [] })).toThrow(/`groups` must be an object/);
    // The old one-argument call of the main entry says where that call lives now.
    expect(() => (runConformance as (options: unknown) => void)({ name: 'x', createDriver })).toThrow(
      /import \{ runConformance \} from '@mq-drivers\/conformance\/vitest'/,
    );
    expect(() => runConformance({ describe: () => undefined } as unknown as TestRunner, { name: 'x', createDriver })).toThrow(
      /needs runner = \{ describe, it \} with it\.skip/,
    );
    expect(createDriver.calls).toBe(0);
  });

  it('conformanceCases applies skip and the group settings', async () => {
    const cases = await conformanceCases(
      { name: 'memory', createDriver: counted('runner-cases'), ...FAST, groups: { ordering: { skip: 'later' } } },
      ['ordering', 'lifecycle'],
    );
    expect(cases.filter(({ group }) => group === 'ordering').map(({ skipReason }) => skipReason)).toEqual(
      GROUPS.ordering.map(() => 'later'),
    );
    expect(cases.filter(({ group }) => group === 'lifecycle').every(({ skipReason }) => skipReason === undefined)).toBe(true);
    await expect(
      conformanceCases({ name: 'memory', createDriver: counted('runner-cases') }, ['nope' as 'tasks']),
    ).rejects.toThrow(/unknown group\(s\) nope/);
  });

  it('@mq-drivers/conformance/vitest has the same registration functions, taking the options only', () => {
    const names = (entry: object) => Object.keys(entry).filter((key) => /^run[A-Z]/.test(key));
    expect(names(vitestEntry).sort()).toEqual(names(main).sort());
    for (const name of names(vitestEntry))
      expect((vitestEntry as Record<string, (options: unknown) => void>)[name]).toHaveLength(1);
  });

  it('the main entry loads no test runner (ESM and CommonJS builds)', () => {
    // Follows the relative imports of the built entry; no file it reaches may import vitest.
    const reached = (file: string, seen = new Set<string>()): Set<string> => {
      if (seen.has(file)) return seen;
      seen.add(file);
      const source = readFileSync(file, 'utf8');
      for (const [, specifier] of source.matchAll(/(?:from|import|require\()\s*["'](\.[^"']+)["']/g)) {
        reached(join(dirname(file), specifier!), seen);
      }
      return seen;
    };
    for (const entry of ['dist/index.js', 'dist/index.cjs']) {
      const files = [...reached(join(packageDir, entry))];
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        expect(readFileSync(file, 'utf8'), `${file} (reached from ${entry})`).not.toMatch(
          /(?:from|import|require\()\s*["']vitest/,
        );
      }
    }
  });

  it('runs on node:test through a three-line adapter', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--test', '--test-reporter=tap', join(packageDir, 'test/fixtures/node-test-runner.mjs')],
      { cwd: packageDir, timeout: 60_000 },
    );
    const count = (label: string) => Number(new RegExp(`^# ${label} (\\d+)$`, 'm').exec(stdout)?.[1]);
    expect(count('fail')).toBe(0);
    expect(count('tests')).toBe(TOTAL);
    expect(count('pass')).toBe(GROUPS.lifecycle.length);
    expect(count('skipped')).toBe(TOTAL - GROUPS.lifecycle.length);
    expect(stdout).toMatch(/ \[skipped: not in this run\] # SKIP$/m);
  });
});
