import { afterEach, describe, expect, it } from 'vitest';
import { WORKER_MODULE, workersYaml } from './fixtures.js';
import { type Cli, diffIds, duplicates, exitOf, readEvents, runCli, tempProject, unique, until } from './helpers.js';

const cleanups: (() => void)[] = [];
const children: Cli[] = [];
afterEach(() => {
  for (const cli of children.splice(0)) if (cli.exitCode() === undefined) cli.child.kill('SIGKILL');
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Writes workers.yml + worker.js to a temp folder and spawns `node dist/cli.js --config <tmp>/workers.yml`. */
function spawnDispatcher(yaml: string, env: Record<string, string> = {}) {
  const project = tempProject({ 'workers.yml': yaml, 'worker.js': WORKER_MODULE });
  cleanups.push(project.cleanup);
  const results = project.path('results.jsonl');
  const cli = runCli(['--config', project.path('workers.yml')], { RESULTS_FILE: results, MQ_URL: '', ...env });
  children.push(cli);
  const events = (kind?: string) => readEvents(results).filter((e) => kind === undefined || e.event === kind);
  /** What the child did so far, for timeout messages. */
  const so = (what: string) => () =>
    `${what}; events ${JSON.stringify(events())}; logs ${cli.logs.map((l) => l.msg).join(' | ')}; stderr ${cli.stderr()}`;
  return { cli, events, project, so };
}

const ids = (events: Record<string, unknown>[]) => events.map((e) => e.id as string);

describe('mq-dispatch (child process, memory:)', () => {
  it('SIGTERM after the work: exit 0, every task handled once, the crashed instance replaced', async () => {
    const segment = unique('cli');
    const { cli, events, so } = spawnDispatcher(workersYaml({ segment, instances: 2 }), {
      SEGMENT: segment,
      TASKS: '10',
      CRASH_AT: '3',
    });
    await until(() => events('handled').length >= 10, so('10 handled'));
    cli.child.kill('SIGTERM');
    const code = await exitOf(cli);
    if (code !== 0) console.log(cli.logs.map((l) => JSON.stringify(l).slice(0, 200)).join('\n'), cli.stderr());
    expect(code).toBe(0);

    const published = ids(events('published'));
    const handled = ids(events('handled'));
    expect(published).toHaveLength(10);
    expect(diffIds(published, handled)).toEqual({ missing: [], extra: [] });
    expect(duplicates(handled)).toEqual([]);
    // Acknowledged once: the dispatcher logged one "handled" (= ack) per id.
    expect(duplicates(cli.logs.filter((l) => l.msg === 'handled').map((l) => l.messageId as string))).toEqual([]);
    expect(cli.logs.filter((l) => l.msg === 'handled')).toHaveLength(10);

    const [thrown] = events('throw');
    expect(events('throw')).toHaveLength(1);
    expect(events('handled').find((e) => e.id === thrown?.id)).toMatchObject({ attempt: 2 });
    // Replaced: shutdown(error) on generation 1 of that instance, generation 2 constructed.
    expect(events('shutdown')).toContainEqual(
      expect.objectContaining({ instance: thrown?.instance, generation: 1, error: 'crash on purpose' }),
    );
    expect(events('construct')).toContainEqual(expect.objectContaining({ instance: thrown?.instance, generation: 2 }));
    expect(cli.hasLog(/^restarting worker instance after consume\(\) threw: crash on purpose/)).toBe(true);
    expect(cli.hasLog(/^worker instance replaced/)).toBe(true);
    // Clean stop: shutdown() (no error) on every live instance, exactly once.
    const clean = events('shutdown')
      .filter((e) => e.error === undefined)
      .map((e) => `${e.instance}/${e.generation}`);
    const other = thrown?.instance === 1 ? 2 : 1;
    expect(clean.sort()).toEqual([`${thrown?.instance}/2`, `${other}/1`].sort());
    expect(cli.logs.find((l) => l.msg === 'stopped cleanly')).toMatchObject({ clean: true, unfinished: 0 });
  });

  it('SIGTERM with messages in flight waits for them, then exits 0', async () => {
    const segment = unique('cli');
    const { cli, events, so } = spawnDispatcher(workersYaml({ segment, prefetch: 2 }), {
      SEGMENT: segment,
      TASKS: '2',
      TASK_MS: '400',
    });
    await until(() => events('consume').length === 2, so('two tasks in flight'));
    cli.child.kill('SIGTERM');
    expect(await exitOf(cli)).toBe(0);
    expect(diffIds(ids(events('published')), ids(events('handled')))).toEqual({ missing: [], extra: [] });
    expect(cli.logs.find((l) => String(l.msg).startsWith('stopping'))).toMatchObject({ inFlight: 2, reason: 'SIGTERM' });
  });

  it('SIGINT then a second signal: exits at once with 128+n, nothing acknowledged', async () => {
    const segment = unique('cli');
    const { cli, events, so } = spawnDispatcher(workersYaml({ segment }), { SEGMENT: segment, TASKS: '1', TASK_MS: '60000' });
    await until(() => events('consume').length === 1, so('a task in flight'));
    cli.child.kill('SIGINT');
    await until(() => cli.hasLog(/^stopping/), so('the stopping log'));
    cli.child.kill('SIGTERM');
    expect(await exitOf(cli)).toBe(143);
    expect(cli.hasLog(/^second signal \(SIGTERM\)/)).toBe(true);
    expect(events('handled')).toEqual([]);
    expect(cli.logs.filter((l) => l.msg === 'handled')).toEqual([]);
  });

  it('past shutdownGraceMs: hands the unfinished message back and exits 1', async () => {
    const segment = unique('cli');
    const { cli, events, so } = spawnDispatcher(workersYaml({ segment, graceMs: 200 }), {
      SEGMENT: segment,
      TASKS: '1',
      TASK_MS: '60000',
    });
    await until(() => events('consume').length === 1, so('a task in flight'));
    cli.child.kill('SIGTERM');
    expect(await exitOf(cli)).toBe(1);
    expect(cli.hasLog(/^shutdown deadline passed: 1 unfinished message\(s\) handed back/)).toBe(true);
    expect(cli.logs.find((l) => l.clean === false)).toMatchObject({ unfinished: 1 });
    expect(events('handled')).toEqual([]);
  });

  it('--validate lists every problem with its line and exits 1; a good file exits 0', async () => {
    const segment = unique('cli');
    const bad = tempProject({
      'workers.yml': `consumers:\n  - consumer: ./worker.js#Missing\n    task: { kind: Job, segment: ${segment} }\n    prefetch: 0\n`,
      'worker.js': WORKER_MODULE,
    });
    cleanups.push(bad.cleanup);
    const failing = runCli(['--config', bad.path('workers.yml'), '--validate']);
    expect(await exitOf(failing)).toBe(1);
    expect(failing.stderr()).toContain('workers.yml:2: consumers[0].consumer: "./worker.js" has no export "Missing"');
    expect(failing.stderr()).toContain('workers.yml:4: consumers[0].prefetch: must be a whole number from 1 to 65535');

    const good = tempProject({ 'workers.yml': workersYaml({ segment }), 'worker.js': WORKER_MODULE });
    cleanups.push(good.cleanup);
    const passing = runCli(['--validate', '-c', good.path('workers.yml')], { MQ_URL: '' });
    expect(await exitOf(passing)).toBe(0);
    expect(passing.logs.map((l) => l.msg).join('\n')).toMatch(/workers\.yml: OK \(1 consumer, url memory:\)/);

    const usage = runCli([]);
    expect(await exitOf(usage)).toBe(2);
    expect(usage.stderr()).toContain('--config <file> is required');
  });

  it('refuses to start with a bad config: problems on stderr, exit 1', async () => {
    const { cli } = spawnDispatcher(
      `consumers:\n  - consumer: ./worker.js#TestWorker\n    task: { kind: "no good", segment: s }\n`,
    );
    expect(await exitOf(cli)).toBe(1);
    expect(cli.stderr()).toContain('workers.yml:3: consumers[0].task.kind');
  });
});
