import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** The broker under test (env `MQ_TEST_RABBITMQ_URL`). */
export const BROKER_URL = process.env.MQ_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** The same broker on another virtual host. */
export function urlWithVhost(vhost: string): string {
  const url = new URL(BROKER_URL);
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return url.toString();
}

function tcpReachable(url: string, timeoutMs = 2_000): Promise<boolean> {
  const parsed = new URL(url);
  const port = Number(parsed.port || (parsed.protocol === 'amqps:' ? 5671 : 5672));
  return new Promise((resolve) => {
    const socket = netConnect({ host: parsed.hostname, port });
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
 * Why the broker suites cannot run, or undefined when they can. In CI (`CI=true`) an
 * unreachable broker is a failure, never a skip.
 */
export async function brokerSkipReason(): Promise<string | undefined> {
  if (await tcpReachable(BROKER_URL)) return undefined;
  const reason = `RabbitMQ not reachable at ${new URL(BROKER_URL).host} (set MQ_TEST_RABBITMQ_URL or run scripts/services-up.sh)`;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI=true, so this is a failure`);
  console.warn(`[driver-rabbitmq tests] skipping: ${reason}`);
  return reason;
}

/** Runs `rabbitmqctl` (needs root on the broker's machine). */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await exec('rabbitmqctl', args, { timeout: 120_000 });
  return stdout;
}

/** True when `rabbitmqctl` works here (tests that break connections need it). */
export async function haveRabbitmqctl(): Promise<boolean> {
  try {
    await rabbitmqctl('-q', 'list_vhosts');
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates a fresh virtual host for guest, so a test file can break its own connections alone
 * and leaves no queues of earlier runs behind (the old one is deleted first).
 */
export async function freshVhost(vhost: string): Promise<void> {
  await rabbitmqctl('-q', 'delete_vhost', vhost).catch(() => '');
  await rabbitmqctl('-q', 'add_vhost', vhost);
  await rabbitmqctl('-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
}

/** A unique segment name per test. */
export function segment(label: string): string {
  return `${label}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`.slice(0, 64);
}

/** Polls until `condition` holds or the deadline passes (then throws with `describe()`). */
export async function until(condition: () => boolean, describe: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** "missing [...], extra [...]" for id lists. */
export function diffIds(expected: readonly string[], actual: readonly string[]): string {
  const want = new Set(expected);
  const got = new Set(actual);
  const missing = expected.filter((id) => !got.has(id));
  const extra = actual.filter((id) => !want.has(id));
  const counts = new Map<string, number>();
  for (const id of actual) counts.set(id, (counts.get(id) ?? 0) + 1);
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
  return `missing [${missing.join(', ')}], extra [${extra.join(', ')}], duplicated [${duplicated.join(', ')}]`;
}
