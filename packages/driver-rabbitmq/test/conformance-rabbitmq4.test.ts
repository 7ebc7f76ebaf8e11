import { containerSkipReason, LOCAL_IMAGES, RABBITMQ_IMAGE_ENV, startRabbitMq } from '@mq-drivers/conformance/containers';
import { runConformance } from '@mq-drivers/conformance/vitest';
import { afterAll } from 'vitest';
import { rabbitMqConformance } from './conformance-options.js';

// The whole suite (every group, reconnect included; conformance-options.ts) against RabbitMQ 4.0 in a throwaway container,
// besides conformance.test.ts on the host's broker. Image: MQ_TEST_RABBITMQ_IMAGE (e.g. `rabbitmq:4.0`), else the local
// `mq-drivers/rabbitmq:4.0` of scripts/services-up.sh, run as a later 4.x will (deprecated features we could touch denied;
// MQ_TEST_RABBITMQ_CONFIG: other rabbitmq.conf lines). No engine or image: a visible skip, a FAILURE under CI=true.
const IMAGE = process.env[RABBITMQ_IMAGE_ENV] ?? LOCAL_IMAGES.rabbitmq40;
const DENIED = ['transient_nonexcl_queues', 'global_qos'].map((feature) => `deprecated_features.permit.${feature} = false`);
const config = process.env.MQ_TEST_RABBITMQ_CONFIG ?? (IMAGE.startsWith('mq-drivers/') ? DENIED.join('\n') : undefined);
const skip = await containerSkipReason('driver-rabbitmq 4.0 conformance', IMAGE);
const broker = skip === undefined ? await startRabbitMq({ image: IMAGE, config }) : undefined;
afterAll(() => broker?.stop(0));
if (broker) {
  const version = (await broker.rabbitmqctl('-q', 'version')).trim();
  console.info(`[driver-rabbitmq 4.0 conformance] RabbitMQ ${version} in ${IMAGE} at ${broker.host}:${broker.port}`);
}
const url = broker?.url ?? 'amqp://guest:guest@127.0.0.1:1';
runConformance(await rabbitMqConformance({ name: `rabbitmq 4.0 (${IMAGE})`, url, rabbitmqctl: broker?.rabbitmqctl, skip }));
