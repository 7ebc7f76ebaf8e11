import {
  type ConformanceOptions,
  runAckTests,
  runBadInputTests,
  runDurableTests,
  runLifecycleTests,
  runOrderingTests,
  runReconnectTests,
  runReplayTests,
  runShareTests,
  runTaskTests,
  runUnregisterTests,
} from '@mq-drivers/conformance';
import { testRabbitMqUrl } from '@mq-drivers/conformance/services';
import { connect, registerDriver } from '@mq-drivers/core';
import { createRabbitMqDriver, driver as definition } from '@mq-drivers/rabbitmq';
import { describe } from 'vitest';
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

function options(url: string, reconnect?: () => Promise<void>): ConformanceOptions {
  return {
    name: 'rabbitmq',
    createDriver: () =>
      createRabbitMqDriver({
        url,
        redeliveryBackoff: { baseMs: 20, maxMs: 200 },
        reconnectBackoff: { baseMs: 50, maxMs: 1_000 },
        publishTimeoutMs: 10_000,
        connectionName: 'mq-drivers conformance',
        onError: process.env.MQ_DEBUG ? (error) => console.error('onError', error.message) : () => {},
      }),
    // The bad-input group opens drivers from URLs derived from this one (with a secret in them).
    url,
    connect: (value) => {
      registerDriver(definition);
      return connect(value);
    },
    ...(reconnect ? { reconnect } : {}),
  };
}

describe.skipIf(skipReason !== undefined)(`rabbitmq conformance${skipReason ? ` [skipped: ${skipReason}]` : ''}`, () => {
  const main = options(ctl ? urlWithVhost(MAIN_VHOST) : testRabbitMqUrl);
  runTaskTests(main);
  runShareTests(main);
  runOrderingTests(main);
  runAckTests(main);
  runLifecycleTests(main);
  runBadInputTests(main);
  runReplayTests(main);
  runDurableTests(main);
  runUnregisterTests(main);
  runReconnectTests(
    ctl
      ? options(urlWithVhost(RECONNECT_VHOST), async () => {
          await rabbitmqctl('-q', 'close_all_connections', '-p', RECONNECT_VHOST, 'conformance: reconnect group');
        })
      : main,
  );
});
