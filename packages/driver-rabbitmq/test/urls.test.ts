import { inspect } from 'node:util';
import { closedPort, TcpProxy, testRabbitMqUrl } from '@mq-drivers/conformance/services';
import {
  AuthenticationError,
  ConnectionError,
  connect as coreConnect,
  type Driver,
  InvalidArgumentError,
  type Message,
  registerDriver,
} from '@mq-drivers/core';
import { createRabbitMqDriver, driver as definition, type RabbitMqDriverOptions } from '@mq-drivers/rabbitmq';
import { afterAll, describe, expect, it } from 'vitest';
import { brokerSkipReason, FAST, segment, untilReceived } from './helpers.js';

const skipReason = await brokerSkipReason();
const SECRET = 'S3CRET';

/**
 * Every place an error could show the secret: own properties (enumerable or not, symbols too)
 * of the error and of everything reachable from it (the cause chain included), strings and
 * buffers alike, plus util.inspect with hidden properties, JSON.stringify, the stack and
 * String(). Returns where it was found.
 */
function secretLeaks(error: unknown): string[] {
  const found: string[] = [];
  const seen = new Set<unknown>();
  let budget = 200_000;
  const visit = (value: unknown, path: string): void => {
    if (budget-- <= 0) return;
    if (typeof value === 'string') {
      if (value.includes(SECRET)) found.push(path);
      return;
    }
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return;
    if (seen.has(value)) return;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      if (Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('latin1').includes(SECRET)) found.push(path);
      return;
    }
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Object.getOwnPropertyDescriptor(value, key);
      if (!descriptor || !('value' in descriptor)) continue;
      visit(descriptor.value, `${path}.${String(key)}`);
    }
  };
  visit(error, 'error');
  const views: Array<[string, () => string | undefined]> = [
    ['inspect(showHidden)', () => inspect(error, { showHidden: true, depth: Number.POSITIVE_INFINITY, getters: true })],
    ['JSON.stringify', () => JSON.stringify(error)],
    [
      'JSON.stringify(own names)',
      () => JSON.stringify(error, Object.getOwnPropertyNames(error as object).concat(['message', 'cause', 'value'])),
    ],
    ['stack', () => (error as Error).stack],
    ['String()', () => String(error)],
  ];
  for (let cause = (error as { cause?: unknown }).cause, depth = 0; cause !== undefined && depth < 10; depth++) {
    const current = cause;
    views.push([`cause[${depth}].stack`, () => (current as Error).stack]);
    cause = (current as { cause?: unknown }).cause;
  }
  for (const [name, view] of views) {
    let text: string | undefined;
    try {
      text = view();
    } catch (e) {
      text = `(${name} threw ${String(e)})`;
    }
    if (text?.includes(SECRET)) found.push(name);
  }
  return found;
}

function thrown(work: () => unknown): unknown {
  try {
    work();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('URLs and options (no broker needed)', () => {
  const badUrls: Array<{ url: string; names: RegExp }> = [
    { url: `amqp://guest:${SECRET}@bad host:5672`, names: /"bad host"/ },
    { url: `amqp://guest:${SECRET}@/`, names: /no host/ },
    { url: `amqp://guest:${SECRET}@127.0.0.1:99999`, names: /"99999"/ },
    { url: `amqp://guest:${SECRET}@127.0.0.1:0/`, names: /"0"/ },
    { url: `amqp://guest:${SECRET}@127.0.0.1:5672/?bogus=1`, names: /"bogus"/ },
    { url: `amqp://guest:${SECRET}@127.0.0.1:5672,,127.0.0.1:5673/`, names: /empty host/ },
    { url: `amqp://guest:${SECRET}@127.0.0.1:5672,127.0.0.1:x/`, names: /"x"/ },
    { url: `http://guest:${SECRET}@127.0.0.1:5672`, names: /http:/ },
    { url: `amqp://guest:${SECRET}/x@127.0.0.1:5672`, names: /percent-encode/ },
    { url: `guest:${SECRET}@127.0.0.1`, names: /amqp:\/\/user:pass@host/ },
  ];

  it('a bad URL is refused with InvalidArgumentError naming what is wrong, the password redacted everywhere', () => {
    const problems: string[] = [];
    for (const { url, names } of badUrls) {
      const attempts: Array<[string, string, () => unknown]> = [
        ['url', 'options.url', () => createRabbitMqDriver({ url })],
        ['url array', 'options.url[1]', () => createRabbitMqDriver({ url: ['amqp://guest:guest@127.0.0.1:5672', url] })],
        ['definition.create', 'options.url', () => definition.create(url)],
      ];
      for (const [how, argument, attempt] of attempts) {
        const error = thrown(attempt);
        const label = `${url} (${how})`;
        if (!InvalidArgumentError.isInstance(error)) {
          problems.push(`${label}: no InvalidArgumentError but ${String(error)}`);
          continue;
        }
        if (error.argument !== argument) problems.push(`${label}: argument ${error.argument}, expected ${argument}`);
        if (!error.message.startsWith('rabbitmq: ')) problems.push(`${label}: message ${error.message}`);
        if (!names.test(error.message)) problems.push(`${label}: message does not name the problem ${names}: ${error.message}`);
        if (url.includes('@') && !error.message.includes(':***@'))
          problems.push(`${label}: message does not show the redacted URL: ${error.message}`);
        const leaks = secretLeaks(error);
        if (leaks.length > 0) problems.push(`${label}: the password shows in ${leaks.join(', ')}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('unknown option keys are refused naming the key; a secret in their value is redacted', () => {
    const error = thrown(() =>
      createRabbitMqDriver({
        url: 'amqp://guest:guest@127.0.0.1:5672',
        uri: `amqp://guest:${SECRET}@127.0.0.1:5672`,
      } as RabbitMqDriverOptions),
    );
    expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
    expect((error as InvalidArgumentError).argument).toBe('options.uri');
    expect((error as Error).message).toMatch(
      /^rabbitmq: invalid options\.uri: "uri" is not a known option \(known: .*\); did you mean url\?/,
    );
    expect(secretLeaks(error)).toEqual([]);
    // An object given where a URL string belongs (amqplib's object form) is not echoed with its password.
    const objectForm = thrown(() =>
      createRabbitMqDriver({ url: { hostname: 'h', username: 'guest', password: SECRET } as unknown as string }),
    );
    expect(InvalidArgumentError.isInstance(objectForm), String(objectForm)).toBe(true);
    expect(secretLeaks(objectForm)).toEqual([]);
  });

  it('accepts several hosts in one URL and a url array, and keeps their order', async () => {
    for (const url of [
      'amqp://guest:guest@host1:5672,host2:5673/vhost?heartbeat=5',
      ['amqp://guest:guest@host1:5672', 'amqp://guest:guest@host2:5673/vhost'],
      'amqps://u:p@[::1]:5671,h2/v',
    ]) {
      const driver = createRabbitMqDriver({ url });
      await driver.close();
    }
  });
});

describe.skipIf(skipReason !== undefined)(
  `rabbitmq URLs on a real broker${skipReason ? ` [skipped: ${skipReason}]` : ''}`,
  () => {
    const drivers: Driver[] = [];
    const proxies: TcpProxy[] = [];
    afterAll(async () => {
      await Promise.all(drivers.map((d) => d.close().catch(() => {})));
      await Promise.all(proxies.map((p) => p.stop()));
    });
    const real = new URL(testRabbitMqUrl);
    /** The test broker's URL with another port (and password). */
    const viaPort = (port: number, password = decodeURIComponent(real.password)): string => {
      const url = new URL(testRabbitMqUrl);
      url.port = String(port);
      url.password = password;
      return url.toString();
    };
    /** `amqp://user:pass@127.0.0.1:p1,127.0.0.1:p2/vhost`. */
    const multi = (ports: number[], password = real.password): string =>
      `${real.protocol}//${real.username}:${password}@${ports.map((p) => `127.0.0.1:${p}`).join(',')}${real.pathname}`;
    const make = (options: RabbitMqDriverOptions): Driver => {
      const driver = createRabbitMqDriver({ ...FAST, connectTimeoutMs: 3_000, onError: () => {}, ...options });
      drivers.push(driver);
      return driver;
    };
    const proxy = async (): Promise<TcpProxy> => {
      const p = await TcpProxy.inFrontOf(testRabbitMqUrl);
      proxies.push(p);
      return p;
    };

    it('wrong password: AuthenticationError without the password anywhere (single and multi-host URL)', async () => {
      const dead = await closedPort();
      for (const url of [viaPort(Number(real.port || 5672), SECRET), multi([dead, Number(real.port || 5672)], SECRET)]) {
        const driver = make({ url });
        const error = await driver.taskPublish({}, { segment: 'x' }).catch((e: unknown) => e);
        expect(AuthenticationError.isInstance(error), String(error)).toBe(true);
        expect((error as Error).message).toMatch(/^rabbitmq: broker at 127\.0\.0\.1:\d+ refused the credentials/);
        expect(secretLeaks(error), `${String(error)}`).toEqual([]);
      }
    });

    it('unreachable hosts: ConnectionError naming them, without the password anywhere', async () => {
      const [a, b] = [await closedPort(), await closedPort()];
      for (const url of [viaPort(a, SECRET), multi([a, b], SECRET)]) {
        const driver = make({ url });
        const error = await driver.taskPublish({}, { segment: 'x' }).catch((e: unknown) => e);
        expect(ConnectionError.isInstance(error), String(error)).toBe(true);
        expect((error as Error).message).toContain(`127.0.0.1:${a}`);
        expect(secretLeaks(error), `${String(error)}`).toEqual([]);
      }
    });

    it('a URL naming two hosts, the first one dead: works through the second', async () => {
      const live = await proxy();
      const driver = make({ url: multi([await closedPort(), live.port]) });
      const seg = segment('multihost');
      const got: Message[] = [];
      await driver.taskConsume((m) => void got.push(m), { segment: seg, topic: 'k' });
      const { id } = await driver.taskPublish({}, { segment: seg });
      await untilReceived(got, id);
    });

    it('connect() and the dispatcher: a `url` array in options adds hosts to the URL given to connect', async () => {
      registerDriver(definition);
      const live = await proxy();
      const dead = viaPort(await closedPort());
      // As the dispatcher YAML does: `url: <dead>` plus `driverOptions: { url: [<live>] }`.
      const viaConnect = await coreConnect(dead, {
        url: [viaPort(live.port)],
        ...FAST,
        connectTimeoutMs: 3_000,
        onError: () => {},
      });
      drivers.push(viaConnect);
      await viaConnect.taskPublish({}, { segment: segment('connect-array') });
      // And several hosts in the URL string given to connect.
      const multiConnect = await coreConnect(multi([await closedPort(), live.port]), { ...FAST, onError: () => {} });
      drivers.push(multiConnect);
      await multiConnect.taskPublish({}, { segment: segment('connect-multi') });
    });

    it('fails over between two hosts: the live one dies, the other comes back, and back again', async () => {
      const first = await proxy();
      const second = await proxy();
      await first.refuse();
      const driver = make({ url: multi([first.port, second.port]) });
      const seg = segment('failover');
      const got: Message[] = [];
      await driver.taskConsume((m) => void got.push(m), { segment: seg, topic: 'k' });
      const deliver = async (step: string) => {
        const { id } = await driver.taskPublish({ step }, { segment: seg });
        await untilReceived(got, id, step, 20_000);
      };
      await deliver('through the second host, the first refusing');
      await first.forward();
      await second.refuse(); // cuts the connection
      await deliver('through the first host, the second refusing');
      await second.forward();
      await first.refuse();
      await deliver('through the second host again');
    });
  },
);
