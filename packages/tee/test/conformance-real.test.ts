import { testRabbitMqUrl } from '@mq-drivers/conformance/services';
import { runConformance, runReconnectTests } from '@mq-drivers/conformance/vitest';
import { tee } from '@mq-drivers/tee';
import { describe } from 'vitest';
import { rabbit, rabbitmqctl, s3, servicesSkipReason } from './services.js';

// The full suite on tee(rabbitmq, s3) against the real services, once per failure mode:
// publishes go to both, the suite consumes from RabbitMQ (the primary). Each createDriver() call
// is a fresh tee over fresh drivers on the same broker and bucket.
//
// vitest runs the suite's groups concurrently, and the reconnect group's hook breaks every
// connection of a virtual host; so the reconnect group runs on a virtual host of its own (when
// rabbitmqctl is available here), and the other groups on another one, per mode.
const skipReason = await servicesSkipReason();

/** A fresh vhost for guest; undefined when rabbitmqctl is not available. */
async function vhostUrl(vhost: string): Promise<string | undefined> {
  if (skipReason !== undefined) return undefined;
  await rabbitmqctl('-q', 'delete_vhost', vhost);
  const ok =
    (await rabbitmqctl('-q', 'add_vhost', vhost)) !== undefined &&
    (await rabbitmqctl('-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*')) !== undefined;
  if (!ok) return undefined;
  const url = new URL(testRabbitMqUrl);
  url.pathname = `/${vhost}`;
  return url.toString();
}

const modes = ['all', 'primary'] as const;
const vhosts = Object.fromEntries(
  await Promise.all(
    modes.map(async (mode) => [
      mode,
      { main: await vhostUrl(`mq-tee-conf-${mode}`), reconnect: await vhostUrl(`mq-tee-reconnect-${mode}`) },
    ]),
  ),
) as Record<(typeof modes)[number], { main: string | undefined; reconnect: string | undefined }>;
if (skipReason === undefined && vhosts.all.reconnect === undefined) {
  console.warn('[tee tests] rabbitmqctl unavailable: the reconnect group of tee(rabbitmq,s3) is skipped');
}

describe.skipIf(skipReason !== undefined)(`tee(rabbitmq,s3) conformance${skipReason ? ` [skipped: ${skipReason}]` : ''}`, () => {
  for (const mode of modes) {
    const createDriver = (url: string) => () =>
      tee({ rabbitmq: rabbit({ url }), s3: s3({ prefix: 'tee-conformance' }) }, { mode });
    runConformance({
      name: `tee(rabbitmq,s3) mode ${mode}`,
      createDriver: createDriver(vhosts[mode].main ?? testRabbitMqUrl),
      timeoutMs: 20_000,
      // No reconnect hook here: breaking connections would disturb the concurrent groups.
    });
    const reconnectUrl = vhosts[mode].reconnect;
    if (reconnectUrl !== undefined) {
      runReconnectTests({
        name: `tee(rabbitmq,s3) mode ${mode}`,
        createDriver: createDriver(reconnectUrl),
        timeoutMs: 20_000,
        reconnect: async () => {
          await rabbitmqctl(
            '-q',
            'close_all_connections',
            '-p',
            `mq-tee-reconnect-${mode}`,
            `tee conformance (${mode}): reconnect`,
          );
        },
      });
    }
  }
});
