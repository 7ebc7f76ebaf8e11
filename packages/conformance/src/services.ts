/**
 * `@mq-drivers/conformance/services`: what every real-service test file needs, for any test
 * runner (nothing here imports vitest).
 *
 * The rule it implements: a suite that needs a real service checks first that the service is
 * reachable. When it is not, a developer's run SKIPS the suite with a printed reason, but a CI
 * run (`CI=true`) FAILS: a CI without its broker must never look green.
 */
import { connect as netConnect } from 'node:net';
import { endpointOf } from './endpoint.js';
import { rabbitMqUrlFrom, s3SettingsFrom, type TestS3Settings } from './service-settings.js';

export { describeIdDiff, type IdDiff, idDiff } from './assert.js';
export { FreezingProxy } from './freezing-proxy.js';
export type { TestS3Settings } from './service-settings.js';
export { closedPort, TcpProxy } from './tcp-proxy.js';

/** The test RabbitMQ: `MQ_TEST_RABBITMQ_URL`, default `amqp://guest:guest@127.0.0.1:5672`. */
export const testRabbitMqUrl: string = rabbitMqUrlFrom(process.env);

/**
 * The test S3 endpoint: `MQ_TEST_S3_ENDPOINT`, `_REGION`, `_ACCESS_KEY_ID`, `_SECRET_ACCESS_KEY`,
 * `_BUCKET`; defaults: the local Ceph gateway `http://127.0.0.1:7480`, `us-east-1`, the test keys,
 * bucket `mq-test`.
 */
export const testS3: Readonly<TestS3Settings> = Object.freeze(s3SettingsFrom(process.env));

/** A service a suite needs: a name for the reason (`RabbitMQ`) and its URL (credentials are never printed). */
export interface ServiceToCheck {
  name: string;
  url: string;
}

const HINT = '(set MQ_TEST_RABBITMQ_URL / MQ_TEST_S3_ENDPOINT or run scripts/services-up.sh)';

/** Whether a TCP connection to `host:port` opens within `timeoutMs` (then closed at once). */
export function tcpReachable(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Why a suite that needs `services` cannot run, or undefined when every one is reachable (a TCP
 * connect per URL, in parallel; the port defaults by scheme: amqp 5672, amqps 5671, http 80,
 * https 443). With `CI=true` an unreachable service THROWS, so the suite fails instead of
 * skipping; otherwise the reason is printed (`[label] skipping: …`) and returned for a visible
 * skip with the reason in its title (`describe.skipIf(reason !== undefined)`).
 */
export async function serviceSkipReason(label: string, services: readonly ServiceToCheck[]): Promise<string | undefined> {
  const checked = await Promise.all(
    services.map(async ({ name, url }) => {
      const { hostname, port, host } = endpointOf(url);
      return (await tcpReachable(hostname, port)) ? undefined : `${name} not reachable at ${host}`;
    }),
  );
  const problems = checked.filter((problem) => problem !== undefined);
  if (problems.length === 0) return undefined;
  const reason = `${problems.join('; ')} ${HINT}`;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI=true, so this is a failure`);
  console.warn(`[${label}] skipping: ${reason}`);
  return reason;
}
