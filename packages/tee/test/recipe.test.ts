import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { serviceSkipReason, testRabbitMqUrl, testS3 } from '@mq-drivers/conformance/services';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

// The README's RabbitMQ + S3 recipe, run as written: the ```ts block under "## Recipe" is
// compiled (types stripped) and run as a child process inside this package, where
// `@mq-drivers/*` resolve as they do for a user who installed them.
const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const workDir = join(packageDir, '.tmp');
const run = promisify(execFile);

function recipeSource(): string {
  const readme = readFileSync(join(packageDir, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Recipe'));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  if (!block?.[1]) throw new Error('README.md has no ```ts block under "## Recipe"');
  return block[1];
}

const skipReason = await serviceSkipReason('tee recipe', [
  { name: 'RabbitMQ', url: testRabbitMqUrl },
  { name: 'S3', url: testS3.endpoint },
]);

describe.skipIf(skipReason !== undefined)(`README recipe${skipReason ? ` [skipped: ${skipReason}]` : ''}`, () => {
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it('publishes to RabbitMQ and S3, consumes live and replays the same ids from S3', async () => {
    const js = ts.transpileModule(recipeSource(), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    mkdirSync(workDir, { recursive: true });
    const file = join(workDir, 'recipe.mjs');
    writeFileSync(file, js);
    const { stdout } = await run(process.execPath, [file], {
      cwd: packageDir,
      timeout: 60_000,
      env: {
        ...process.env,
        RABBITMQ_URL: testRabbitMqUrl,
        S3_ENDPOINT: testS3.endpoint,
        S3_ACCESS_KEY_ID: testS3.accessKeyId,
        S3_SECRET_ACCESS_KEY: testS3.secretAccessKey,
      },
    });
    expect(stdout).toContain('tee(rabbitmq,s3)');
    expect(stdout.match(/^published \S+$/gm), stdout).toHaveLength(3);
    expect(stdout).toContain('same ids live and replayed: true');
    expect(stdout).toContain('undelivered S3 copies: 0');
  });
});
