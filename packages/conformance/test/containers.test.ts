import { dockerAvailable, rabbitMqForTests, s3ForTests } from '@mq-drivers/conformance/containers';
import { describe, expect, it } from 'vitest';

// No Docker engine runs on our CI machines: these check the env and fallback paths, which are
// what CI uses. The container path itself needs a Docker engine (see README).
describe('container helpers', () => {
  it('prefer the URL given in the environment', async () => {
    const rabbit = await rabbitMqForTests({ env: { MQ_TEST_RABBITMQ_URL: 'amqp://u:p@broker:5672' } });
    expect(rabbit).toMatchObject({ url: 'amqp://u:p@broker:5672', source: 'env' });
    const s3 = await s3ForTests({
      env: { MQ_TEST_S3_ENDPOINT: 'http://s3:9000', MQ_TEST_S3_ACCESS_KEY_ID: 'k', MQ_TEST_S3_SECRET_ACCESS_KEY: 's' },
    });
    expect(s3).toMatchObject({ endpoint: 'http://s3:9000', accessKeyId: 'k', secretAccessKey: 's', source: 'env' });
    await rabbit.stop();
    await s3.stop();
  });

  it('fall back to the localhost services with a reason when no container can be started', async () => {
    const docker = await dockerAvailable();
    if (docker.available) return; // a developer machine with Docker takes the container path
    expect(docker.reason).toMatch(/not installed|no container engine/);
    const rabbit = await rabbitMqForTests({ env: {} });
    expect(rabbit).toMatchObject({ url: 'amqp://guest:guest@127.0.0.1:5672', source: 'default' });
    expect(rabbit.reason).toBe(docker.reason);
    const s3 = await s3ForTests({ env: {} });
    expect(s3).toMatchObject({ endpoint: 'http://127.0.0.1:7480', source: 'default' });
  });
});
