import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { testRabbitMqUrl } from '@mq-drivers/conformance/services';
import type { Driver, JsonValue, Message } from '@mq-drivers/core';
import { createRabbitMqDriver } from '@mq-drivers/rabbitmq';
import { afterEach, describe, expect, it } from 'vitest';
import { WORKER_MODULE, workersYaml } from './fixtures.js';
import {
  type Cli,
  diffIds,
  duplicates,
  exitOf,
  rabbitSkipReason,
  readEvents,
  runCli,
  tempProject,
  unique,
  until,
} from './helpers.js';

const reason = await rabbitSkipReason();
const execFileAsync = promisify(execFile);
const rabbitmqctl = (...args: string[]) => execFileAsync('rabbitmqctl', args, { timeout: 60_000 });
/** Breaking connections needs rabbitmqctl on this machine (CI has it: scripts/services-up.sh). */
const ctlReason =
  reason ??
  (await rabbitmqctl('-q', 'list_vhosts').then(
    () => undefined,
    () => {
      const why = 'rabbitmqctl is not usable here (needed to break connections)';
      if (process.env.CI === 'true') throw new Error(`${why}; CI=true, so this is a failure`);
      console.warn(`[dispatcher tests] skipping the reconnect case: ${why}`);
      return why;
    },
  ));

const cleanups: (() => unknown)[] = [];
const children: Cli[] = [];
afterEach(async () => {
  for (const cli of children.splice(0)) if (cli.exitCode() === undefined) cli.child.kill('SIGKILL');
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function producer(url = testRabbitMqUrl): Driver {
  const driver = createRabbitMqDriver({ url, redeliveryBackoff: { baseMs: 10, maxMs: 50 } });
  cleanups.push(() => driver.close());
  return driver;
}

/** Registers the kind (a task published before any worker of its kind subscribed reaches no one), then publishes. */
async function publishTasks(driver: Driver, segment: string, bodies: JsonValue[]): Promise<string[]> {
  const registration = await driver.taskConsume(() => {}, { topic: 'Job', segment, prefetch: 1 });
  await registration.close();
  const ids: string[] = [];
  for (const body of bodies) ids.push((await driver.taskPublish(body, { segment })).id);
  return ids;
}

function spawnDispatcher(yaml: string, url = testRabbitMqUrl) {
  const project = tempProject({ 'workers.yml': yaml, 'worker.js': WORKER_MODULE });
  cleanups.push(project.cleanup);
  const results = project.path('results.jsonl');
  const cli = runCli(['--config', project.path('workers.yml')], { RESULTS_FILE: results, MQ_URL: url });
  children.push(cli);
  const events = (kind: string) => readEvents(results).filter((e) => e.event === kind);
  return { cli, events };
}

/** Everything left on the kind's queue, collected by a fresh consumer until `expected` arrived, then a quiet window for extras. */
async function drain(driver: Driver, segment: string, expected: number): Promise<Message[]> {
  const received: Message[] = [];
  const subscription = await driver.taskConsume((m) => void received.push(m), { topic: 'Job', segment, prefetch: 50 });
  await until(
    () => received.length >= expected,
    () => `${expected} left on the queue, got ${received.length}`,
    15_000,
  );
  const quietUntil = Date.now() + 500;
  await until(() => Date.now() >= quietUntil, 'the quiet window');
  await subscription.close();
  return received;
}

const ids = (events: Record<string, unknown>[]) => events.map((e) => e.id as string);

describe.skipIf(reason !== undefined)(`mq-dispatch (child process, RabbitMQ)${reason ? ` — skipped: ${reason}` : ''}`, () => {
  it('SIGTERM mid-work: exit 0; every handled task acknowledged once; the rest stays queued; the crashed worker was replaced', async () => {
    const segment = unique('disp');
    const driver = producer();
    const bodies = Array.from({ length: 30 }, (_, n) => ({ n, ms: 150, crash: n === 1 }));
    const published = await publishTasks(driver, segment, bodies);
    const { cli, events } = spawnDispatcher(workersYaml({ segment, ready: false, instances: 2, prefetch: 2 }));
    await until(
      () => events('handled').length >= 8,
      () => `8 handled; stderr: ${cli.stderr()}`,
      15_000,
    );
    cli.child.kill('SIGTERM');
    expect(await exitOf(cli)).toBe(0);

    const handled = ids(events('handled'));
    expect(duplicates(handled)).toEqual([]);
    expect(diffIds(published, handled).extra).toEqual([]);
    expect(handled.length).toBeLessThan(published.length);
    // What was not handled is still on the broker; nothing handled comes back (it was acknowledged).
    const rest = await drain(driver, segment, published.length - handled.length);
    const restIds = rest.map((m) => m.id);
    expect(duplicates(restIds)).toEqual([]);
    expect(diffIds(published, [...handled, ...restIds])).toEqual({ missing: [], extra: [] });
    expect(restIds.filter((id) => handled.includes(id))).toEqual([]);

    // The task with crash: true threw once; that instance got shutdown(error) and was replaced.
    const [thrown] = events('throw');
    expect(thrown).toMatchObject({ id: published[1], attempt: 1 });
    expect(events('shutdown')).toContainEqual(
      expect.objectContaining({ instance: thrown?.instance, generation: 1, error: 'crash on purpose' }),
    );
    expect(events('construct')).toContainEqual(expect.objectContaining({ instance: thrown?.instance, generation: 2 }));
    expect(cli.hasLog(/^restarting worker instance after consume\(\) threw/)).toBe(true);
    expect(cli.logs.find((l) => l.msg === 'stopped cleanly')).toMatchObject({ clean: true, unfinished: 0, reason: 'SIGTERM' });
  });

  it('past shutdownGraceMs: exit 1; unfinished tasks are handed back unacknowledged, no attempt counted', async () => {
    const segment = unique('disp');
    const driver = producer();
    const published = await publishTasks(
      driver,
      segment,
      [0, 1, 2].map((n) => ({ n, ms: 60_000 })),
    );
    const { cli, events } = spawnDispatcher(workersYaml({ segment, ready: false, prefetch: 2, graceMs: 300 }));
    await until(
      () => events('consume').length === 2,
      () => `2 in flight; stderr: ${cli.stderr()}`,
      15_000,
    );
    cli.child.kill('SIGTERM');
    expect(await exitOf(cli)).toBe(1);
    expect(cli.hasLog(/^shutdown deadline passed: 2 unfinished message\(s\) handed back/)).toBe(true);
    const rest = await drain(driver, segment, 3);
    expect(
      diffIds(
        published,
        rest.map((m) => m.id),
      ),
    ).toEqual({ missing: [], extra: [] });
    expect(rest.map((m) => m.attempt)).toEqual([1, 1, 1]);
    expect(events('handled')).toEqual([]);
  });

  it('a second signal: exit 143 at once; in-flight tasks are redelivered, none acknowledged', async () => {
    const segment = unique('disp');
    const driver = producer();
    const published = await publishTasks(
      driver,
      segment,
      [0, 1, 2].map((n) => ({ n, ms: 60_000 })),
    );
    const { cli, events } = spawnDispatcher(workersYaml({ segment, ready: false, prefetch: 2 }));
    await until(
      () => events('consume').length === 2,
      () => `2 in flight; stderr: ${cli.stderr()}`,
      15_000,
    );
    cli.child.kill('SIGTERM');
    await until(() => cli.hasLog(/^stopping/), 'the stopping log');
    cli.child.kill('SIGTERM');
    expect(await exitOf(cli)).toBe(143);
    const rest = await drain(driver, segment, 3);
    expect(
      diffIds(
        published,
        rest.map((m) => m.id),
      ),
    ).toEqual({ missing: [], extra: [] });
    expect(events('handled')).toEqual([]);
  });

  it.skipIf(ctlReason !== undefined)(
    `keeps consuming after the broker drops every connection${ctlReason ? ` — skipped: ${ctlReason}` : ''}`,
    async () => {
      // A vhost of its own: closing its connections disturbs no other suite on the broker.
      const vhost = 'mq-dispatch-reconnect';
      await rabbitmqctl('-q', 'delete_vhost', vhost).catch(() => undefined);
      await rabbitmqctl('-q', 'add_vhost', vhost);
      await rabbitmqctl('-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
      const url = new URL(testRabbitMqUrl);
      url.pathname = `/${vhost}`;
      const segment = unique('disp');
      const driver = producer(url.toString());
      const first = await publishTasks(
        driver,
        segment,
        [0, 1, 2, 3, 4].map((n) => ({ n })),
      );
      const { cli, events } = spawnDispatcher(workersYaml({ segment, ready: false, instances: 2 }), url.toString());
      await until(
        () => events('handled').length >= 5,
        () => `5 handled; stderr: ${cli.stderr()}`,
        15_000,
      );

      await rabbitmqctl('-q', 'close_all_connections', '-p', vhost, 'dispatcher reconnect test');
      const second: string[] = [];
      for (const n of [5, 6, 7, 8, 9]) second.push((await driver.taskPublish({ n }, { segment })).id);
      await until(
        () => events('handled').length >= 10,
        () => `10 handled after the reconnect, got ${events('handled').length}; logs: ${cli.logs.map((l) => l.msg).join(' | ')}`,
        30_000,
      );
      cli.child.kill('SIGTERM');
      expect(await exitOf(cli)).toBe(0);
      const handled = ids(events('handled'));
      expect(diffIds([...first, ...second], handled)).toEqual({ missing: [], extra: [] });
      expect(duplicates(handled)).toEqual([]);
      expect(events('construct')).toHaveLength(2); // no instance was replaced: a reconnect is not a worker crash
      expect(cli.hasLog(/^warning: rabbitmq: connection to .* lost/)).toBe(true); // the driver's report, in the JSON log
    },
  );
});
