import { InvalidArgumentError } from '@mq-drivers/core';
import { configProblems, loadConfig, runWorkers, validateConfigFile } from '@mq-drivers/dispatcher';
import { afterEach, describe, expect, it } from 'vitest';
import { tempProject } from './helpers.js';

const projects: { cleanup(): void }[] = [];
afterEach(() => {
  for (const project of projects.splice(0)) project.cleanup();
});
function project(files: Record<string, string>) {
  const created = tempProject(files);
  projects.push(created);
  return created;
}

const WORKER = `export class Good { consume() {} shutdown() {} }
export class NoConsume { handle() {} }
export const notAClass = 5;
export function hook() {}
`;

describe('loadConfig', () => {
  it('fills defaults, reads aliases and takes the url from MQ_URL, else memory:', async () => {
    const { path } = project({
      'workers.yml': `consumers:
  - consumer: ./w.js#Good
    task: { kind: Email, segment: shop }
    consumer_count: 3
    prefetch_count: 4
  - consumer: ./w.js#Good
    share: { topics: [Shop.#], segment: shop, name: audit }
`,
      'w.js': WORKER,
    });
    const config = await loadConfig(path('workers.yml'), { env: {} });
    expect(config.url).toBe('memory:');
    expect(config.shutdownGraceMs).toBe(30_000);
    expect(config.consumers).toMatchObject([
      { name: 'Good', instances: 3, prefetch: 4, maxAttempts: 5, task: { kind: 'Email', segment: 'shop' }, line: 2 },
      { name: 'Good-2', instances: 1, prefetch: 1, share: { topics: ['Shop.#'], segment: 'shop', name: 'audit' }, line: 6 },
    ]);
    const fromEnv = await loadConfig(path('workers.yml'), { env: { MQ_URL: 'amqp://rabbit:5672' } });
    expect(fromEnv.url).toBe('amqp://rabbit:5672');
  });

  it('throws an InvalidArgumentError listing every schema problem with its line', async () => {
    const { path } = project({
      'workers.yml': `url: "memory:"
shutdownGraceMs: -1
colour: blue
consumers:
  - consumer: ./w.js#Good
    task: { kind: "bad kind", segment: shop }
    prefetch: 0
  - consumer: ./w.js#Good
    share: { topics: [a.*], segment: s }
    instances: 2
  - consumer: ./w.js#Good
    instances: 1
    consumer_count: 2
    task: { kind: A, segment: s }
    share: { topics: [a], segment: s }
  - task: { kind: A, segment: s }
`,
      'w.js': WORKER,
    });
    const error = await loadConfig(path('workers.yml')).catch((e: unknown) => e);
    expect(InvalidArgumentError.isInstance(error)).toBe(true);
    const problems = configProblems(error)?.map((p) => `${p.line}: ${p.path}`);
    expect(problems).toEqual([
      '2: shutdownGraceMs',
      '3: colour',
      '6: consumers[0].task.kind',
      '7: consumers[0].prefetch',
      '10: consumers[1].instances',
      '13: consumers[2].consumer_count',
      '15: consumers[2].share',
      '16: consumers[3].consumer',
    ]);
    expect((error as Error).message).toContain('workers.yml:3: colour: unknown key `colour`');
  });

  it('explains the unquoted "url: memory:" YAML error', async () => {
    const { path } = project({ 'workers.yml': 'url: memory:\nconsumers: []\n' });
    const problems = await validateConfigFile(path('workers.yml'));
    expect(problems).toMatchObject([{ line: 1, message: expect.stringContaining('url: "memory:"') }]);
  });

  it('reports YAML syntax errors with their lines', async () => {
    const { path } = project({ 'workers.yml': 'consumers:\n  - consumer: x\n   task: [\n' });
    const problems = await validateConfigFile(path('workers.yml'));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatchObject({ line: 3 });
    expect(problems[0]?.message).toMatch(/^YAML: /);
  });
});

describe('validateConfigFile', () => {
  it('loads every module and class and lists every problem with its line', async () => {
    const { path } = project({
      'workers.yml': `startup: ./w.js#notAClass
ready: ./missing.js#go
consumers:
  - consumer: ./w.js#NoConsume
    task: { kind: A, segment: s }
  - consumer: ./w.js#Nope
    task: { kind: A, segment: s }
  - consumer: ./w.js#notAClass
    task: { kind: A, segment: s }
  - consumer: ./w.js#Good
    task: { kind: A, segment: s }
`,
      'w.js': WORKER,
    });
    const problems = await validateConfigFile(path('workers.yml'), { env: {} });
    expect(problems.map((p) => `${p.line}: ${p.path}: ${p.message}`)).toEqual([
      '1: startup: must name a function, got number',
      '2: ready: cannot load "./missing.js": module not found',
      '4: consumers[0].consumer: NoConsume has no consume(message) method',
      '6: consumers[1].consumer: "./w.js" has no export "Nope" (exports: Good, NoConsume, hook, notAClass)',
      '8: consumers[2].consumer: must be a class with a consume(message) method, got number',
    ]);
  });

  it('still loads modules and checks the driver when the schema check fails', async () => {
    const { path } = project({
      'workers.yml': `url: nosuch://host
consumers:
  - consumer: ./w.js#Nope
    task: { kind: A, segment: s }
    prefetch: many
`,
      'w.js': WORKER,
    });
    const problems = await validateConfigFile(path('workers.yml'));
    expect(problems.map((p) => `${p.line}: ${p.path}`)).toEqual([
      '1: url',
      '3: consumers[0].consumer',
      '5: consumers[0].prefetch',
    ]);
    expect(problems[0]?.message).toMatch(/no driver for nosuch: is installed/);
  });

  it('returns no problems for a good file', async () => {
    const { path } = project({
      'workers.yml': `ready: ./w.js#hook
consumers:
  - consumer: ./w.js#Good
    share: { topics: ['a.*', 'b.#'], segment: s, name: sub }
    instances: 2
`,
      'w.js': WORKER,
    });
    expect(await validateConfigFile(path('workers.yml'), { env: {} })).toEqual([]);
  });
});

describe('runWorkers with a config object', () => {
  it('rejects a bad config object with every problem and starts nothing', async () => {
    const error = await runWorkers({
      url: 'memory:',
      consumers: [{ consumer: class {} as never, task: { kind: 'A', segment: 's' }, prefetch: -1 }],
    }).catch((e: unknown) => e);
    expect(configProblems(error)?.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'consumers[0].prefetch: must be a whole number from 1 to 65535',
    ]);
  });
});
