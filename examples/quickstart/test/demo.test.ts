import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { serviceSkipReason, testRabbitMqUrl, testS3 } from '@mq-drivers/conformance/services';
import { describe, expect, it } from 'vitest';

// `pnpm demo` as a user runs it: the quickstart script as a child process, once per broker URL.
const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));
const script = join(exampleDir, 'index.mjs');

async function demo(url: string): Promise<string> {
  const { stdout } = await run(process.execPath, [script], {
    // Drivers are found from the application's folder, as with `pnpm demo`.
    cwd: exampleDir,
    env: { ...process.env, MQ_URL: url },
    timeout: 30_000,
  });
  return stdout;
}

/** Every task reached one Email and one Audit worker; each share reached each matching subscriber. */
function expectComplete(stdout: string): void {
  expect(stdout).toContain('done: 8 task deliveries, 3 share deliveries');
  for (let order = 1; order <= 4; order++) {
    expect(stdout).toMatch(new RegExp(`task  \\{"order":${order}\\} -> Email worker`));
    expect(stdout).toMatch(new RegExp(`task  \\{"order":${order}\\} -> Audit worker`));
  }
  expect(stdout).toContain('share Frontend.Customer.Signup {"customer":"ada"} -> subscriber "Frontend.Customer.*"');
  expect(stdout).toContain('share Frontend.Customer.Signup {"customer":"ada"} -> subscriber "Frontend.#"');
  expect(stdout).toContain('share Frontend.Page.View {"page":"/pricing"} -> subscriber "Frontend.#"');
  // No extra deliveries: a page view does not match `Frontend.Customer.*`.
  expect(stdout.match(/^task {2}/gm), stdout).toHaveLength(8);
  expect(stdout.match(/^share /gm), stdout).toHaveLength(3);
}

const rabbitSkip = await serviceSkipReason('quickstart demo', [{ name: 'RabbitMQ', url: testRabbitMqUrl }]);
const s3Skip = await serviceSkipReason('quickstart demo', [{ name: 'S3', url: testS3.endpoint }]);

describe('quickstart demo', () => {
  it('runs on memory: (the default)', async () => {
    expectComplete(await demo('memory:'));
  });

  it.skipIf(rabbitSkip !== undefined)(
    `runs on RabbitMQ by changing MQ_URL${rabbitSkip ? ` [skipped: ${rabbitSkip}]` : ''}`,
    async () => {
      expectComplete(await demo(testRabbitMqUrl));
    },
  );

  it.skipIf(s3Skip !== undefined)(`runs on S3 by changing MQ_URL${s3Skip ? ` [skipped: ${s3Skip}]` : ''}`, async () => {
    const url = new URL(`s3://${testS3.bucket}/quickstart`);
    url.username = testS3.accessKeyId;
    url.password = testS3.secretAccessKey;
    url.searchParams.set('endpoint', testS3.endpoint);
    url.searchParams.set('region', testS3.region);
    url.searchParams.set('forcePathStyle', 'true');
    url.searchParams.set('createBucket', 'true');
    expectComplete(await demo(url.toString()));
  });
});
