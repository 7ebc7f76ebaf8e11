import {
  containerSkipReason,
  LOCAL_IMAGES,
  RABBITMQ_IMAGE_ENV,
  type RabbitMqContainer,
  startRabbitMq,
} from '@mq-drivers/conformance/containers';
import { afterAll, describe } from 'vitest';
import { runRabbitMqConformance } from './conformance-run.js';

// The whole conformance suite (every group, reconnect included) against RabbitMQ 4.0 in a
// throwaway container, in addition to conformance.test.ts on the host's broker (3.10 in CI).
// Image: MQ_TEST_RABBITMQ_IMAGE (e.g. the public `rabbitmq:4.0`), else the local
// `mq-drivers/rabbitmq:4.0` that scripts/services-up.sh builds from Debian 13's rabbitmq-server.
// No engine (or no image): a visible skip on a laptop, a FAILURE under CI=true.
// MQ_TEST_RABBITMQ_CONFIG adds rabbitmq.conf lines (local images), e.g.
// `deprecated_features.permit.transient_nonexcl_queues = false` to try what later 4.x denies.
const IMAGE = process.env[RABBITMQ_IMAGE_ENV] ?? LOCAL_IMAGES.rabbitmq40;
// By default the local image runs as a later 4.x will: the deprecated features we could touch denied.
const LATER_4X = IMAGE.startsWith('mq-drivers/')
  ? 'deprecated_features.permit.transient_nonexcl_queues = false\ndeprecated_features.permit.global_qos = false'
  : undefined;
const MAIN_VHOST = 'mq-conformance';
const RECONNECT_VHOST = 'mq-conformance-reconnect';

const skipReason = await containerSkipReason('driver-rabbitmq 4.0 conformance', IMAGE);
let broker: RabbitMqContainer | undefined;
let version = '';
if (skipReason === undefined) {
  broker = await startRabbitMq({ image: IMAGE, config: process.env.MQ_TEST_RABBITMQ_CONFIG ?? LATER_4X });
  for (const vhost of [MAIN_VHOST, RECONNECT_VHOST]) {
    await broker.rabbitmqctl('-q', 'add_vhost', vhost);
    await broker.rabbitmqctl('-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
  }
  version = (await broker.rabbitmqctl('-q', 'version')).trim();
  console.info(`[driver-rabbitmq 4.0 conformance] RabbitMQ ${version} in ${IMAGE} at ${broker.host}:${broker.port}`);
}
afterAll(async () => {
  await broker?.stop(0);
});

function urlOf(vhost: string): string {
  const url = new URL(broker?.url ?? 'amqp://guest:guest@127.0.0.1:1');
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return url.toString();
}

const title = skipReason ? `rabbitmq 4.0 conformance [skipped: ${skipReason}]` : `rabbitmq 4.0 conformance (${IMAGE})`;
describe.skipIf(skipReason !== undefined)(title, () => {
  runRabbitMqConformance(' (4.0)', urlOf(MAIN_VHOST), {
    url: urlOf(RECONNECT_VHOST),
    breakConnections: async () => {
      await broker?.rabbitmqctl('-q', 'close_all_connections', '-p', RECONNECT_VHOST, 'conformance: reconnect group');
    },
  });
});
