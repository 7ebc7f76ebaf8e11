import { testRabbitMqUrl } from '@mq-drivers/conformance/services';
import { describe } from 'vitest';
import { runRabbitMqConformance } from './conformance-run.js';
import { brokerSkipReason, freshVhost, haveRabbitmqctl, rabbitmqctl, urlWithVhost } from './helpers.js';

// Every group of the suite, on the real broker. The reconnect group runs on a virtual host of
// its own: its hook (`close_all_connections -p`) then breaks only that group's connections,
// while the other groups (which run concurrently and do not expect broken connections) and
// other test files keep theirs. Both vhosts are created afresh, so no queues of earlier runs remain.
const MAIN_VHOST = 'mq-conformance';
const RECONNECT_VHOST = 'mq-conformance-reconnect';
const skipReason = await brokerSkipReason();
const ctl = skipReason === undefined && (await haveRabbitmqctl());
if (ctl) {
  await freshVhost(MAIN_VHOST);
  await freshVhost(RECONNECT_VHOST);
} else if (skipReason === undefined) {
  console.warn(
    '[driver-rabbitmq tests] rabbitmqctl unavailable: conformance runs on the default vhost; the reconnect group is skipped',
  );
}

describe.skipIf(skipReason !== undefined)(`rabbitmq conformance${skipReason ? ` [skipped: ${skipReason}]` : ''}`, () => {
  runRabbitMqConformance(
    '',
    ctl ? urlWithVhost(MAIN_VHOST) : testRabbitMqUrl,
    ctl
      ? {
          url: urlWithVhost(RECONNECT_VHOST),
          breakConnections: async () => {
            await rabbitmqctl('-q', 'close_all_connections', '-p', RECONNECT_VHOST, 'conformance: reconnect group');
          },
        }
      : undefined,
  );
});
