import { connect } from 'node:net';
import {
  containerSkipReason,
  dockerAvailable,
  LOCAL_IMAGES,
  RABBITMQ_IMAGE_ENV,
  type RabbitMqContainer,
  rabbitMqForTests,
} from '@mq-drivers/conformance/containers';
import { describe, expect, it } from 'vitest';

/** Sends the AMQP 0-9-1 protocol header and returns the broker's first frame (Connection.Start). */
function amqpGreeting(host: string, port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no AMQP greeting from ${host}:${port} within 10 s`));
    }, 10_000);
    socket.once('connect', () => socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])));
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      if (data.length >= 7 && data.length >= 7 + data.readUInt32BE(3) + 1) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data);
      }
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

// The container path for real: a RabbitMQ container starts and answers AMQP. Image:
// MQ_TEST_RABBITMQ_IMAGE, else the local mq-drivers/rabbitmq:4.0 (scripts/services-up.sh builds
// it). Without an engine or the image this is a visible skip with the reason, and a FAILURE
// under CI=true (CI runs services-up.sh, which starts dockerd and builds the images).
const IMAGE = process.env[RABBITMQ_IMAGE_ENV] ?? LOCAL_IMAGES.rabbitmq40;
const skipReason = await containerSkipReason('conformance containers', IMAGE);

describe('container helpers', () => {
  it('prefer the URL given in the environment', async () => {
    const rabbit = await rabbitMqForTests({ env: { MQ_TEST_RABBITMQ_URL: 'amqp://u:p@broker:5672' } });
    expect(rabbit).toMatchObject({ url: 'amqp://u:p@broker:5672', source: 'env' });
    await rabbit.stop();
  });

  it.skipIf(skipReason !== undefined)(
    `start RabbitMQ from ${IMAGE} when no URL is given, and speak AMQP to it${skipReason ? ` [skipped: ${skipReason}]` : ''}`,
    async () => {
      const rabbit = await rabbitMqForTests({ env: {}, image: IMAGE });
      try {
        expect(rabbit.source).toBe('container');
        const broker = rabbit.container as RabbitMqContainer;
        expect(broker.image).toBe(IMAGE);
        expect(rabbit.url).toBe(`amqp://guest:guest@${broker.host}:${broker.port}`);
        const greeting = await amqpGreeting(broker.host, broker.port);
        // method frame on channel 0: connection.start (class 10, method 10) from RabbitMQ
        expect([greeting[0], greeting.readUInt16BE(1), greeting.readUInt16BE(7), greeting.readUInt16BE(9)]).toEqual([
          1, 0, 10, 10,
        ]);
        expect(greeting.toString('latin1')).toContain('RabbitMQ');
        await broker.rabbitmqctl('-q', 'authenticate_user', 'guest', 'guest');
        expect(await broker.rabbitmqctl('-q', 'list_vhosts')).toContain('/');
      } finally {
        await rabbit.stop();
      }
    },
  );

  it('fall back to the localhost broker with a reason when no engine answers', async (context) => {
    const docker = await dockerAvailable();
    if (docker.available) {
      context.skip('a container engine answers here: the fallback path is not taken');
      return;
    }
    expect(docker.reason).toMatch(/not installed|no container engine/);
    const rabbit = await rabbitMqForTests({ env: {} });
    expect(rabbit).toMatchObject({ url: 'amqp://guest:guest@127.0.0.1:5672', source: 'default' });
    expect(rabbit.reason).toBe(docker.reason);
  });
});
