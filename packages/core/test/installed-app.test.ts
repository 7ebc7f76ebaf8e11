import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

// An application installed the way users install it — packed tarballs of core and the memory
// driver, installed with npm (flat node_modules) and with pnpm (strict, symlinked layout) — and
// started as `node /path/to/app/index.mjs` from an unrelated working directory, as systemd, cron,
// a process manager or a container would. `connect('memory:')` must find the driver.

const run = promisify(execFile);
const packages = resolve(import.meta.dirname, '../..');
const root = realpathSync(mkdtempSync(join(tmpdir(), 'mq-installed-app-')));
const elsewhere = join(root, 'elsewhere');
const apps = { npm: join(root, 'npm-app'), pnpm: join(root, 'pnpm-app') };

// The application: connects to the URL given, publishes and consumes one task, prints the result.
const program = (importCore: string) => `${importCore}
const url = process.argv[2];
try {
  const mq = await connect(url);
  const seen = new Promise((done) => {
    mq.taskConsume((message) => done(message.body), { topic: 'Job', segment: 'app' });
  });
  await new Promise((r) => setTimeout(r, 10));
  await mq.taskPublish({ hello: 'world' }, { segment: 'app' });
  console.log(JSON.stringify({ ok: true, driver: mq.name, body: await seen }));
  await mq.close();
} catch (error) {
  console.log(JSON.stringify({ ok: false, name: error.name, message: error.message, searched: error.searched }));
}
`;

async function start(script: string, args: string[], cwd = elsewhere) {
  const { stdout } = await run(process.execPath, [script, ...args], { cwd, timeout: 20_000 });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
}

beforeAll(async () => {
  mkdirSync(elsewhere);
  const tarballs = join(root, 'tarballs');
  // pnpm pack turns the `workspace:` ranges into real versions, as publishing does.
  await Promise.all(
    ['core', 'driver-memory'].map((dir) =>
      run('pnpm', ['pack', '--pack-destination', tarballs], { cwd: join(packages, dir), timeout: 60_000 }),
    ),
  );
  const core = join(tarballs, 'mq-drivers-core-0.0.0.tgz');
  const memory = join(tarballs, 'mq-drivers-memory-0.0.0.tgz');
  for (const app of Object.values(apps)) {
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    writeFileSync(join(app, 'index.mjs'), program("import { connect } from '@mq-drivers/core';"));
    writeFileSync(join(app, 'index.cjs'), `(async () => {${program("const { connect } = require('@mq-drivers/core');")}})();`);
  }
  // No registry is needed: the tarballs depend on nothing else.
  const quiet = { timeout: 90_000 };
  await Promise.all([
    run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', core, memory], {
      ...quiet,
      cwd: apps.npm,
    }),
    run('pnpm', ['add', '--offline', '--ignore-scripts', '--reporter=silent', core, memory], { ...quiet, cwd: apps.pnpm }),
  ]);
}, 180_000);

describe('connect() in an installed application started from another directory', () => {
  it.each(['npm', 'pnpm'] as const)('finds the memory driver (%s layout, ES module entry)', async (layout) => {
    expect(await start(join(apps[layout], 'index.mjs'), ['memory:'])).toEqual({
      ok: true,
      driver: 'memory',
      body: { hello: 'world' },
    });
  });

  it.each(['npm', 'pnpm'] as const)('finds the memory driver (%s layout, CommonJS entry)', async (layout) => {
    expect(await start(join(apps[layout], 'index.cjs'), ['memory:'])).toMatchObject({ ok: true, driver: 'memory' });
  });

  it('finds it from core’s own location when the entry script lives elsewhere', async () => {
    // A launcher outside the application that imports the application's core by path.
    const launcher = join(elsewhere, 'launcher.mjs');
    const coreEntry = join(apps.npm, 'node_modules/@mq-drivers/core/dist/index.js');
    writeFileSync(launcher, program(`const { connect } = await import(${JSON.stringify(coreEntry)});`));
    expect(await start(launcher, ['memory:'], root)).toMatchObject({ ok: true, driver: 'memory' });
  });

  it('names the folders it searched when no driver handles the scheme', async () => {
    const answer = await start(join(apps.npm, 'index.mjs'), ['nothing-here://host']);
    expect(answer).toMatchObject({ ok: false, name: 'NoSuchDriverError' });
    const message = answer.message as string;
    expect(message).toContain('available: memory (memory:)');
    expect(message).toContain(`${apps.npm} (application)`);
    expect(message).toContain(`${join(apps.npm, 'node_modules/@mq-drivers/core/dist')} (core)`);
    expect(message).toContain(`${elsewhere} (working directory)`);
    expect(answer.searched).toEqual([
      `${apps.npm} (application)`,
      `${join(apps.npm, 'node_modules/@mq-drivers/core/dist')} (core)`,
      `${elsewhere} (working directory)`,
    ]);
  });
});
