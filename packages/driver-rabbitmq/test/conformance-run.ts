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
} from '@mq-drivers/conformance/vitest';
import { connect, registerDriver } from '@mq-drivers/core';
import { createRabbitMqDriver, driver as definition } from '@mq-drivers/rabbitmq';

function options(label: string, url: string, reconnect?: () => Promise<void>): ConformanceOptions {
  return {
    name: 'rabbitmq',
    createDriver: () =>
      createRabbitMqDriver({
        url,
        redeliveryBackoff: { baseMs: 20, maxMs: 200 },
        reconnectBackoff: { baseMs: 50, maxMs: 1_000 },
        publishTimeoutMs: 10_000,
        connectionName: `mq-drivers conformance${label}`,
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

/**
 * Every group of the suite on `url`, and the reconnect group on `reconnect.url` — a virtual host
 * of its own, so its hook (`close_all_connections -p`) breaks only that group's connections while
 * the other groups (concurrent, not expecting broken connections) keep theirs. Without
 * `reconnect` that group is a visible skip.
 */
export function runRabbitMqConformance(
  label: string,
  url: string,
  reconnect?: { url: string; breakConnections: () => Promise<void> },
): void {
  const main = options(label, url);
  runTaskTests(main);
  runShareTests(main);
  runOrderingTests(main);
  runAckTests(main);
  runLifecycleTests(main);
  runBadInputTests(main);
  runReplayTests(main);
  runDurableTests(main);
  runUnregisterTests(main);
  runReconnectTests(reconnect ? options(label, reconnect.url, reconnect.breakConnections) : main);
}
