import type { ConformanceOptions } from '@mq-drivers/conformance';
import { connect, registerDriver } from '@mq-drivers/core';
import { createRabbitMqDriver, driver as definition } from '@mq-drivers/rabbitmq';

const MAIN_VHOST = 'mq-conformance';
const RECONNECT_VHOST = 'mq-conformance-reconnect';

/** `url` on another virtual host. */
function withVhost(url: string, vhost: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(vhost)}`;
  return parsed.toString();
}

/**
 * The conformance options for the RabbitMQ broker at `url` (the host's, or a container's): every
 * group on a virtual host of its own, and the reconnect group on another one, so its hook
 * (`close_all_connections -p`) breaks only that group's connections while other test files keep
 * theirs. Both vhosts are created afresh with `rabbitmqctl`, so no queues of earlier runs remain.
 * Without `rabbitmqctl` every group runs on `url` and the reconnect group is a visible skip. With
 * `skip` (the broker cannot be reached) every case is a visible skip and the broker is not touched.
 */
export async function rabbitMqConformance({
  name,
  url,
  rabbitmqctl,
  skip,
}: {
  /** The suite title, also in the drivers' connection name. */
  name: string;
  url: string;
  rabbitmqctl: ((...args: string[]) => Promise<unknown>) | undefined;
  skip: string | undefined;
}): Promise<ConformanceOptions> {
  const ctl = skip === undefined ? rabbitmqctl : undefined;
  if (skip === undefined && !ctl) {
    console.warn(
      `[${name} conformance] rabbitmqctl unavailable: every group runs on the URL's vhost; the reconnect group is skipped`,
    );
  }
  for (const vhost of [MAIN_VHOST, RECONNECT_VHOST]) {
    if (!ctl) break;
    await ctl('-q', 'delete_vhost', vhost).catch(() => '');
    await ctl('-q', 'add_vhost', vhost);
    await ctl('-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
  }
  const createDriver = (vhostUrl: string) => () =>
    createRabbitMqDriver({
      url: vhostUrl,
      redeliveryBackoff: { baseMs: 20, maxMs: 200 },
      reconnectBackoff: { baseMs: 50, maxMs: 1_000 },
      publishTimeoutMs: 10_000,
      connectionName: `mq-drivers conformance: ${name}`,
      onError: process.env.MQ_DEBUG ? (error) => console.error('onError', error.message) : () => {},
    });
  const mainUrl = ctl ? withVhost(url, MAIN_VHOST) : url;
  return {
    name,
    skip,
    createDriver: createDriver(mainUrl),
    // The bad-input group opens drivers from URLs derived from this one (with a secret in them).
    url: mainUrl,
    connect: (value) => {
      registerDriver(definition);
      return connect(value);
    },
    groups: ctl
      ? {
          reconnect: {
            createDriver: createDriver(withVhost(url, RECONNECT_VHOST)),
            reconnect: async () => {
              await ctl('-q', 'close_all_connections', '-p', RECONNECT_VHOST, 'conformance: reconnect group');
            },
          },
        }
      : {},
  };
}
