import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testRabbitMqUrl } from '@mq-drivers/conformance/services';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cli, exitOf, packageDir, rabbitSkipReason, runCli, tempProject, unique, until } from './helpers.js';

const reason = await rabbitSkipReason();

const cleanups: (() => void)[] = [];
const children: Cli[] = [];
afterEach(() => {
  for (const cli of children.splice(0)) if (cli.exitCode() === undefined) cli.child.kill('SIGKILL');
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/**
 * Runs examples/workers.yml + examples/workers.js exactly as shipped, except for a unique segment
 * (tests share one broker) and a free HTTP port, as `mq-dispatch --config workers.yml` would.
 */
async function runExample(url: string) {
  const segment = unique('shop');
  const read = (name: string) => readFileSync(join(packageDir, 'examples', name), 'utf8');
  const project = tempProject({
    'workers.yml': read('workers.yml').replaceAll('segment: shop', `segment: ${segment}`).replace('port: 9464', 'port: 0'),
    'workers.mjs': read('workers.mjs').replaceAll("segment: 'shop'", `segment: '${segment}'`),
  });
  cleanups.push(project.cleanup);
  const cli = runCli(['--config', project.path('workers.yml')], { MQ_URL: url, MQ_LOG_LEVEL: 'info' });
  children.push(cli);
  const sent = () => cli.logs.filter((l) => l.msg === 'email sent');
  await until(
    () => sent().length === 3 && cli.hasLog(/^order event recorded/),
    () => `3 emails and 1 order event; logs: ${cli.logs.map((l) => l.msg).join(' | ')}; stderr: ${cli.stderr()}`,
    20_000,
  );
  const port = cli.logs.find((l) => typeof l.port === 'number')?.port as number;
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  cli.child.kill('SIGINT');
  expect(await exitOf(cli)).toBe(0);
  expect(
    sent()
      .map((l) => l.to)
      .sort(),
  ).toEqual(['ada@example.com', 'grace@example.com', 'linus@example.com']);
  expect(sent().find((l) => l.to === 'grace@example.com')).toMatchObject({ attempt: 2 }); // the simulated SMTP timeout
  expect(cli.hasLog(/^restarting worker instance after consume\(\) threw: SMTP timeout/)).toBe(true);
  expect(cli.logs.filter((l) => l.msg === 'email worker shut down')).toHaveLength(3); // 1 crashed + 2 at exit
  expect(metrics).toContain('mq_dispatch_messages_handled_total{consumer="EmailWorker"} 3');
  expect(metrics).toContain('mq_dispatch_worker_restarts_total{consumer="EmailWorker"} 1');
  expect(metrics).toContain('mq_dispatch_messages_handled_total{consumer="OrderAudit"} 1');
}

describe('examples/workers.yml', () => {
  it('runs as shipped against memory:', () => runExample(''));
  it.skipIf(reason !== undefined)(`runs as shipped against RabbitMQ${reason ? ` — skipped: ${reason}` : ''}`, () =>
    runExample(testRabbitMqUrl),
  );
});

describe('README', () => {
  it('shows examples/workers.yml and examples/workers.mjs exactly as shipped', () => {
    const readme = readFileSync(join(packageDir, 'README.md'), 'utf8');
    for (const [file, fence] of [
      ['workers.yml', 'yaml'],
      ['workers.mjs', 'js'],
    ] as const) {
      const text = readFileSync(join(packageDir, 'examples', file), 'utf8');
      expect(readme, `README block for examples/${file}`).toContain(`\`\`\`${fence}\n${text}\`\`\``);
    }
  });
});
