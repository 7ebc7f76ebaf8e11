import { testRabbitMqUrl } from '@mq-drivers/conformance/services';
import { runConformance } from '@mq-drivers/conformance/vitest';
import { tee } from '@mq-drivers/tee';
import { freshVhostUrl, rabbit, rabbitmqctl, s3, servicesSkipReason } from './services.js';

// The full suite on tee(rabbitmq, s3) against the real services, once per failure mode: publishes go to both, the suite
// consumes from RabbitMQ (the primary). Each createDriver() call is a fresh tee over fresh drivers on the same broker and
// bucket. Per mode, the reconnect group runs on a virtual host of its own, whose every connection its hook breaks, and the
// other groups on another one (without rabbitmqctl: all on the default vhost, and the reconnect group is a visible skip).
const skip = await servicesSkipReason();
for (const mode of ['all', 'primary'] as const) {
  const vhosts = [`mq-tee-conf-${mode}`, `mq-tee-reconnect-${mode}`] as const;
  const [main, reconnect] = skip ? [] : [await freshVhostUrl(vhosts[0]), await freshVhostUrl(vhosts[1])];
  if (!skip && !reconnect) console.warn(`[tee tests] rabbitmqctl unavailable: the reconnect group of mode ${mode} is skipped`);
  const teeOn = (url = testRabbitMqUrl) => tee({ rabbitmq: rabbit({ url }), s3: s3({ prefix: 'tee-conformance' }) }, { mode });
  const breakConnections = async () =>
    void (await rabbitmqctl('-q', 'close_all_connections', '-p', vhosts[1], `tee conformance (${mode}): reconnect`));
  runConformance({
    name: `tee(rabbitmq,s3) mode ${mode}`,
    skip,
    createDriver: () => teeOn(main),
    timeoutMs: 20_000,
    groups: reconnect ? { reconnect: { createDriver: () => teeOn(reconnect), reconnect: breakConnections } } : {},
  });
}
