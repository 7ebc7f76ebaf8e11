import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { serviceSkipReason, testRabbitMqUrl } from '@mq-drivers/conformance/services';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

// Each package README's "## Example" runs as a new user would run it: the ```ts block, types
// stripped, as a script in this folder (which depends on every package, as a user's app would).
// scripts/check-readme-examples.mjs type-checks the same blocks; this checks that they work.
const here = fileURLToPath(new URL('..', import.meta.url));
const root = join(here, '..', '..');
const workDir = join(here, '.tmp');
const run = promisify(execFile);

function exampleOf(packageDir: string): string {
  const readme = readFileSync(join(root, 'packages', packageDir, 'README.md'), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('\n## Example')));
  if (!block?.[1]) throw new Error(`packages/${packageDir}/README.md has no \`\`\`ts block under "## Example"`);
  return block[1];
}

async function runExample(packageDir: string, env: Record<string, string> = {}): Promise<string> {
  const js = ts.transpileModule(exampleOf(packageDir), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  mkdirSync(workDir, { recursive: true });
  const file = join(workDir, `${packageDir}.mjs`);
  writeFileSync(file, js);
  const { stdout } = await run(process.execPath, [file], { cwd: here, timeout: 30_000, env: { ...process.env, ...env } });
  return stdout;
}

const rabbitSkip = await serviceSkipReason('README examples', [{ name: 'RabbitMQ', url: testRabbitMqUrl }]);
// The S3 example names the local test gateway of scripts/services-up.sh, as a reader would copy it.
const s3Skip = await serviceSkipReason('README examples', [{ name: 'S3', url: 'http://127.0.0.1:7480' }]);

describe('package README examples run as written', () => {
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it('@mq-drivers/core (memory: by default): the bad body is refused, naming body.when', async () => {
    const stdout = await runExample('core');
    expect(stdout).toMatch(/^body\.when$/m);
  });

  it('@mq-drivers/memory: inspection prints queue and dead-letter counts', async () => {
    const stdout = await runExample('driver-memory');
    expect(stdout).toMatch(/^0$/m);
  });

  it.skipIf(rabbitSkip !== undefined)(`@mq-drivers/rabbitmq${rabbitSkip ? ` [skipped: ${rabbitSkip}]` : ''}`, async () => {
    const stdout = await runExample('driver-rabbitmq', { RABBITMQ_URL: testRabbitMqUrl });
    expect(stdout).toMatch(/^\d+ dead letters$/m);
  });

  it.skipIf(s3Skip !== undefined)(`@mq-drivers/s3${s3Skip ? ` [skipped: ${s3Skip}]` : ''}`, async () => {
    await runExample('driver-s3');
  });
});
