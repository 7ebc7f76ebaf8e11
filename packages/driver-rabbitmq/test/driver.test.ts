import { describeIdDiff, testRabbitMqUrl } from '@mq-drivers/conformance/services';
import {
  AuthenticationError,
  ConnectionError,
  connect as coreConnect,
  DEFAULT_BACKOFF,
  type Driver,
  DriverClosedError,
  InvalidArgumentError,
  type Message,
  type MqError,
  registerDriver,
  TopologyError,
} from '@mq-drivers/core';
import {
  createRabbitMqDriver,
  DEFAULT_MAX_MESSAGE_BYTES,
  DRIVER_NAME,
  driver as definition,
  delayBucket,
  kindDeadQueue,
  kindQueue,
  type RabbitMqDriverOptions,
  shareDeadQueue,
  shareExchange,
  shareQueue,
  taskExchange,
} from '@mq-drivers/rabbitmq';
import amqplib from 'amqplib';
import { describe, expect, it } from 'vitest';
import { brokerBench, brokerSkipReason, FAST, segment, until, untilReceived } from './helpers.js';

const skipReason = await brokerSkipReason();

describe('options (no broker needed)', () => {
  it('validates at construction and names the bad option', () => {
    const cases: Array<[unknown, string]> = [
      [undefined, 'options'],
      [{}, 'options.url'],
      [{ url: 'http://localhost' }, 'options.url'],
      [{ url: 'not a url' }, 'options.url'],
      [{ url: ['amqp://a', 5] }, 'options.url[1]'],
      [{ url: testRabbitMqUrl, prefetch: 0 }, 'options.prefetch'],
      [{ url: testRabbitMqUrl, queueType: 'stream' }, 'options.queueType'],
      [{ url: testRabbitMqUrl, publishTimeoutMs: -1 }, 'options.publishTimeoutMs'],
      [{ url: testRabbitMqUrl, reconnectBackoff: { baseMs: 10, maxMs: 1 } }, 'options.reconnectBackoff'],
      [{ url: testRabbitMqUrl, prefix: 'a..b' }, 'options.prefix'],
      [{ url: testRabbitMqUrl, noDelay: 'yes' }, 'options.noDelay'],
      [{ url: testRabbitMqUrl, heartbeat: 5 }, 'options.heartbeat'],
      [{ url: testRabbitMqUrl, connection: {} }, 'options.connection'],
    ];
    for (const [options, argument] of cases) {
      let caught: unknown;
      try {
        createRabbitMqDriver(options as RabbitMqDriverOptions);
      } catch (error) {
        caught = error;
      }
      expect(InvalidArgumentError.isInstance(caught), `${JSON.stringify(options)} should throw`).toBe(true);
      expect((caught as InvalidArgumentError).argument).toBe(argument);
      expect((caught as Error).message.startsWith('rabbitmq: ')).toBe(true);
    }
  });

  it('never shows the password of a bad URL', () => {
    let caught: unknown;
    try {
      createRabbitMqDriver({ url: 'http://user:secret@host' });
    } catch (error) {
      caught = error;
    }
    expect((caught as InvalidArgumentError).value).toBe('http://user:***@host');
    expect((caught as Error).message).not.toMatch(/secret/);
  });

  it('does not connect at construction; reports capabilities', async () => {
    const driver = createRabbitMqDriver({ url: 'amqp://guest:guest@127.0.0.1:1' });
    expect(driver.name).toBe(DRIVER_NAME);
    expect(driver.capabilities).toEqual({
      durable: true,
      replay: false,
      ordering: 'per-publisher',
      deadLetter: true,
      maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
      unregister: true,
      refusedHeaders: ['x-death', 'x-delivery-count', 'x-acquired-count', 'x-first-death-*', 'x-last-death-*', 'CC', 'BCC'],
    });
    expect(createRabbitMqDriver({ url: testRabbitMqUrl, maxMessageBytes: 1000 }).capabilities.maxMessageBytes).toBe(1000);
    await driver.close();
  });

  it('the definition declares both schemes and passes the URL', async () => {
    expect(definition.name).toBe('rabbitmq');
    expect([...definition.schemes]).toEqual(['amqp', 'amqps']);
    const driver = await definition.create('amqps://guest:guest@127.0.0.1:1');
    expect(driver.name).toBe('rabbitmq');
    await driver.close();
  });

  it('delay buckets stay within 10% of the asked delay', () => {
    for (let ms = 2; ms < 200_000; ms = Math.ceil(ms * 1.07)) {
      const bucket = delayBucket(ms);
      expect(Math.abs(bucket - ms) / ms).toBeLessThan(0.1 + 1 / ms);
    }
    expect(delayBucket(0)).toBe(0);
    expect(delayBucket(DEFAULT_BACKOFF.baseMs)).toBe(1024);
  });
});

describe.skipIf(skipReason !== undefined)(
  `rabbitmq driver on a real broker${skipReason ? ` [skipped: ${skipReason}]` : ''}`,
  () => {
    const { make, rawChannel, track } = brokerBench();

    it('declares the documented topology (same arguments as TOPOLOGY.md, so redeclaring matches)', async () => {
      const seg = segment('topo');
      const driver = make();
      await driver.taskConsume(() => {}, { segment: seg, topic: 'orders.created' });
      await driver.shareConsume(() => {}, { segment: seg, topics: ['orders.#'], name: 'audit' });
      const ephemeral = await driver.shareConsume(() => {}, { segment: seg, topics: ['orders.*'] });
      expect(ephemeral.name).toMatch(/^eph-[A-Za-z0-9]+$/);
      const ch = await rawChannel();
      // Redeclaring with the documented type and arguments must succeed (406 otherwise).
      await ch.assertExchange(`mq.${seg}.tasks`, 'fanout', { durable: true });
      await ch.assertExchange(`mq.${seg}.shares`, 'topic', { durable: true });
      const kind = `mq.${seg}.task.orders.created`;
      expect(kindQueue('mq', seg, 'orders.created')).toBe(kind);
      expect(kindDeadQueue('mq', seg, 'orders.created')).toBe(`mq.${seg}.task-dead.orders.created`);
      await ch.assertQueue(kind, {
        durable: true,
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': `mq.${seg}.task-dead.orders.created` },
      });
      await ch.assertQueue(`mq.${seg}.task-dead.orders.created`, { durable: true });
      await ch.assertQueue(`mq.${seg}.share.audit`, {
        durable: true,
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': `mq.${seg}.share-dead.audit` },
      });
      await ch.assertQueue(`mq.${seg}.share-dead.audit`, { durable: true });
      await ch.assertQueue(`mq.${seg}.share.${ephemeral.name}`, {
        durable: true,
        arguments: {
          'x-expires': 300_000,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': `mq.${seg}.share-dead.${ephemeral.name}`,
        },
      });
      expect(taskExchange('mq', seg)).toBe(`mq.${seg}.tasks`);
      expect(shareExchange('mq', seg)).toBe(`mq.${seg}.shares`);
      expect(shareQueue('mq', seg, 'audit')).toBe(`mq.${seg}.share.audit`);
      expect(shareDeadQueue('mq', seg, 'audit')).toBe(`mq.${seg}.share-dead.audit`);
      // An ephemeral subscription leaves nothing behind once closed.
      await ephemeral.close();
      const check = await rawChannel();
      await expect(check.checkQueue(`mq.${seg}.share.${ephemeral.name}`)).rejects.toMatchObject({ code: 404 });
      await ch.close();
    });

    it('quorum queueType declares quorum queues with x-delivery-limit', async () => {
      const seg = segment('quorum');
      const driver = make({ queueType: 'quorum', deliveryLimit: 7 });
      const got: Message[] = [];
      await driver.taskConsume((m) => void got.push(m), { segment: seg, topic: 'q' });
      const receipt = await driver.taskPublish({ q: 1 }, { segment: seg });
      await until(
        () => got.length === 1,
        () =>
          describeIdDiff(
            [receipt.id],
            got.map((m) => m.id),
          ),
      );
      const ch = await rawChannel();
      await ch.assertQueue(`mq.${seg}.task.q`, {
        durable: true,
        arguments: {
          'x-queue-type': 'quorum',
          'x-delivery-limit': 7,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': `mq.${seg}.task-dead.q`,
        },
      });
      await ch.close();
    });

    it('writes the documented wire format', async () => {
      const seg = segment('wire');
      const driver = make();
      const ch = await rawChannel();
      // Our own queue on the share exchange, to read exactly what the driver sent.
      await ch.assertExchange(`mq.${seg}.shares`, 'topic', { durable: true });
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(queue, `mq.${seg}.shares`, 'orders.#');
      const before = Date.now();
      const receipt = await driver.sharePublish(
        { a: [1, 'x', null], é: true },
        { segment: seg, topic: 'orders.eu.created', headers: { tenant: 't-1' } },
      );
      let got: false | amqplib.GetMessage = false;
      for (let i = 0; i < 200 && got === false; i++) {
        got = await ch.get(queue, { noAck: true });
        if (got === false) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const msg = got as unknown as amqplib.GetMessage;
      expect(msg.fields.routingKey).toBe('orders.eu.created');
      expect(msg.properties.contentType).toBe('application/json');
      expect(msg.properties.deliveryMode).toBe(2);
      expect(msg.properties.messageId).toBe(receipt.id);
      expect(Math.abs(msg.properties.timestamp - Math.floor(before / 1000))).toBeLessThanOrEqual(1);
      expect(msg.properties.headers?.tenant).toBe('t-1');
      expect(Number(msg.properties.headers?.['x-mq-published-at'])).toBeGreaterThanOrEqual(before);
      expect(msg.properties.headers?.['x-mq-attempt']).toBeUndefined();
      expect(JSON.parse(msg.content.toString('utf8'))).toEqual({ a: [1, 'x', null], é: true });
      await ch.close();
    });

    it('reads messages from other clients: no message-id, no x-mq headers, non-string headers', async () => {
      const seg = segment('foreign');
      const driver = make();
      const got: Message[] = [];
      await driver.taskConsume((m) => void got.push(m), { segment: seg, topic: 'k' });
      await driver.shareConsume((m) => void got.push(m), { segment: seg, topics: ['a.*'] });
      const ch = await rawChannel();
      ch.publish(`mq.${seg}.tasks`, '', Buffer.from('{"plain":true}'), {
        messageId: 'foreign-1',
        timestamp: 1_700_000_000,
        headers: { n: 5, b: true, s: 'x' },
      });
      ch.publish(`mq.${seg}.shares`, 'a.b', Buffer.from('[1,2]'));
      await until(
        () => got.length === 2,
        () => `${got.length} deliveries`,
      );
      const task = got.find((m) => m.topic === 'k')!;
      expect(task.id).toBe('foreign-1');
      expect(task.body).toEqual({ plain: true });
      expect(task.attempt).toBe(1);
      expect(task.publishedAt.getTime()).toBe(1_700_000_000_000);
      expect(task.headers).toEqual({ n: '5', b: 'true', s: 'x' });
      const share = got.find((m) => m.topic === 'a.b')!;
      expect(share.body).toEqual([1, 2]);
      expect(share.id.length).toBeGreaterThan(0);
      await ch.close();
    });

    it('a body that is not JSON goes straight to the dead letters with the reason', async () => {
      const seg = segment('badjson');
      const driver = make();
      const got: Message[] = [];
      await driver.taskConsume((m) => void got.push(m), { segment: seg, topic: 'k' });
      const ch = await rawChannel();
      ch.publish(`mq.${seg}.tasks`, '', Buffer.from('not json{'), { messageId: 'bad-1' });
      let letters: Awaited<ReturnType<Driver['listDeadLetters']>> = [];
      const deadline = Date.now() + 10_000;
      while (letters.length === 0 && Date.now() < deadline) {
        letters = await driver.listDeadLetters({ segment: seg, kind: 'k' });
        if (letters.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(letters.map((l) => l.message.id)).toEqual(['bad-1']);
      expect(letters[0]!.error).toMatch(/not valid JSON/);
      expect(letters[0]!.message.body).toBe('not json{');
      expect(got).toEqual([]);
      await ch.close();
    });

    it('a message rejected by a foreign worker lands in the dead-letter queue, listed with the broker reason', async () => {
      const seg = segment('reject');
      const driver = make();
      const sub = await driver.taskConsume(() => {}, { segment: seg, topic: 'k' });
      await sub.close();
      const receipt = await driver.taskPublish({ x: 1 }, { segment: seg });
      const ch = await rawChannel();
      let msg: false | amqplib.GetMessage = false;
      for (let i = 0; i < 200 && msg === false; i++) {
        msg = await ch.get(`mq.${seg}.task.k`);
        if (msg === false) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(msg).not.toBe(false);
      ch.reject(msg as amqplib.GetMessage, false);
      let letters: Awaited<ReturnType<Driver['listDeadLetters']>> = [];
      for (let i = 0; i < 100 && letters.length === 0; i++) {
        letters = await driver.listDeadLetters({ segment: seg, kind: 'k' });
        if (letters.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(letters.map((l) => l.message.id)).toEqual([receipt.id]);
      expect(letters[0]!.error).toMatch(/rejected/);
      expect(await driver.redriveDeadLetters({ segment: seg, kind: 'k' })).toBe(1);
      await ch.close();
    });

    it('acknowledges only finished handlers: handlers finishing out of order, then close with running ones', async () => {
      const seg = segment('multiack');
      const producer = make();
      const workerDriver = make();
      const gates = new Map<number, () => void>();
      const started: number[] = [];
      const finished: number[] = [];
      const worker = await workerDriver.taskConsume<{ n: number }>(
        (m) =>
          new Promise<void>((resolve) => {
            started.push(m.body.n);
            gates.set(m.body.n, () => {
              finished.push(m.body.n);
              resolve();
            });
          }),
        { segment: seg, topic: 'k', prefetch: 10 },
      );
      const ids: string[] = [];
      for (let n = 0; n < 10; n++) ids.push((await producer.taskPublish({ n }, { segment: seg })).id);
      await until(
        () => started.length === 10,
        () => `started ${started.join(',')}`,
      );
      // Finish the odd ones (out of order: never the head of the run), then close with the even ones running.
      for (const n of [9, 7, 5, 3, 1]) gates.get(n)!();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await worker.close({ timeoutMs: 50 });
      // The running (even) ones were handed back; a new worker gets exactly those, attempt 1.
      const again: Message<{ n: number }>[] = [];
      await workerDriver.taskConsume<{ n: number }>((m) => void again.push(m), { segment: seg, topic: 'k' });
      const expected = ids.filter((_, n) => n % 2 === 0);
      await until(
        () => again.length >= 5,
        () =>
          describeIdDiff(
            expected,
            again.map((m) => m.id),
          ),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(
        again.map((m) => m.id).sort(),
        describeIdDiff(
          expected,
          again.map((m) => m.id),
        ),
      ).toEqual([...expected].sort());
      expect(again.every((m) => m.attempt === 1)).toBe(true);
      // Late completions of handed-back messages have no effect.
      for (const n of [0, 2, 4, 6, 8]) gates.get(n)!();
    });

    it('a consumer cancelled by the broker (queue deleted) is reported and resumes on a re-declared queue', async () => {
      const seg = segment('cancel');
      const errors: MqError[] = [];
      const driver = make({ onError: (e) => errors.push(e) });
      const producer = make();
      const got: Message[] = [];
      await driver.taskConsume((m) => void got.push(m), { segment: seg, topic: 'k' });
      const ch = await rawChannel();
      await ch.deleteQueue(`mq.${seg}.task.k`);
      await until(
        () => errors.some((e) => TopologyError.isInstance(e)),
        () => `errors: ${errors.map((e) => e.message).join('; ')}`,
      );
      expect(errors.find((e) => TopologyError.isInstance(e))!.message).toMatch(/cancelled the consumer.*mq\..*task\.k/);
      // Re-declared and consuming again: a new task arrives.
      const deadline = Date.now() + 10_000;
      let id = '';
      while (Date.now() < deadline) {
        const probe = await rawChannel(); // a 404 closes the channel it was asked on
        const ok = await probe.checkQueue(`mq.${seg}.task.k`).then(
          (r) => r.consumerCount > 0,
          () => false,
        );
        await probe.close().catch(() => {});
        if (ok) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      id = (await producer.taskPublish({ after: true }, { segment: seg })).id;
      await untilReceived(got, id);
      await ch.close().catch(() => {});
    });

    it('works on an injected connection and leaves it open on close; no reconnect once it closes', async () => {
      const seg = segment('inject');
      const connection = await amqplib.connect(testRabbitMqUrl);
      connection.on('error', () => {});
      const driver = createRabbitMqDriver({ connection, ...FAST, onError: () => {} });
      const got: Message[] = [];
      await driver.taskConsume((m) => void got.push(m), { segment: seg, topic: 'k' });
      const { id } = await driver.taskPublish({ x: 1 }, { segment: seg });
      await until(
        () => got.length === 1,
        () =>
          describeIdDiff(
            [id],
            got.map((m) => m.id),
          ),
      );
      expect(got[0]!.id).toBe(id);
      await driver.close();
      const ch = await connection.createChannel(); // still usable
      await ch.close();
      const second = createRabbitMqDriver({ connection, onError: () => {} });
      await second.taskPublish({ y: 1 }, { segment: seg });
      await connection.close();
      await expect(second.taskPublish({ z: 1 }, { segment: seg })).rejects.toSatisfy((e) => ConnectionError.isInstance(e));
      await second.close();
    });

    it('core connect() opens it by URL once registered', async () => {
      registerDriver(definition);
      const driver = track(await coreConnect(testRabbitMqUrl, { publishTimeoutMs: 5_000 }));
      expect(driver.name).toBe('rabbitmq');
      const seg = segment('connect');
      await driver.taskPublish({}, { segment: seg });
    });

    it('rejects after close with DriverClosedError', async () => {
      const driver = make();
      await driver.close();
      await expect(driver.taskPublish({}, { segment: 'x' })).rejects.toSatisfy((e) => DriverClosedError.isInstance(e));
    });

    describe('bad input', () => {
      it('unreachable broker: ConnectionError naming the host, quickly (refused port)', async () => {
        const driver = make({ url: 'amqp://guest:guest@127.0.0.1:1', connectTimeoutMs: 2_000 });
        const started = Date.now();
        const error = await driver.taskPublish({}, { segment: 'x' }).catch((e: unknown) => e);
        expect(ConnectionError.isInstance(error), String(error)).toBe(true);
        expect((error as ConnectionError).host).toBe('127.0.0.1:1');
        expect((error as Error).message).toMatch(/127\.0\.0\.1:1/);
        expect(Date.now() - started).toBeLessThan(5_000);
        // consume fails the same way
        await expect(driver.taskConsume(() => {}, { segment: 'x', topic: 'k' })).rejects.toSatisfy((e) =>
          ConnectionError.isInstance(e),
        );
      });

      it('unreachable broker: ConnectionError within connectTimeoutMs (blackholed address)', async () => {
        const driver = make({ url: 'amqp://guest:guest@10.255.255.1:5672', connectTimeoutMs: 500 });
        const started = Date.now();
        const error = await driver.taskPublish({}, { segment: 'x' }).catch((e: unknown) => e);
        expect(ConnectionError.isInstance(error), String(error)).toBe(true);
        expect((error as Error).message).toMatch(/10\.255\.255\.1:5672/);
        expect(Date.now() - started).toBeLessThan(3_000);
      });

      it('several URLs: tries each in turn and uses the one that works', async () => {
        const driver = make({ url: ['amqp://guest:guest@127.0.0.1:1', testRabbitMqUrl] });
        const seg = segment('multi');
        await driver.taskPublish({}, { segment: seg });
      });

      it('wrong credentials: AuthenticationError', async () => {
        const url = new URL(testRabbitMqUrl);
        url.password = 'definitely-wrong';
        const driver = make({ url: url.toString() });
        const error = await driver.taskPublish({}, { segment: 'x' }).catch((e: unknown) => e);
        expect(AuthenticationError.isInstance(error), String(error)).toBe(true);
        expect((error as Error).message).toMatch(/^rabbitmq: .*refused the credentials/);
        expect((error as Error).message).not.toContain('definitely-wrong');
      });

      it('an exchange declared earlier with another type: TopologyError naming it and why', async () => {
        const seg = segment('clash');
        const ch = await rawChannel();
        await ch.assertExchange(`mq.${seg}.tasks`, 'topic', { durable: true });
        const driver = make();
        const error = await driver.taskPublish({}, { segment: seg }).catch((e: unknown) => e);
        expect(TopologyError.isInstance(error), String(error)).toBe(true);
        expect((error as TopologyError).resource).toBe(`mq.${seg}.tasks`);
        expect((error as Error).message).toMatch(/exchange "mq\..*\.tasks".*inequivalent arg 'type'/);
        const consumeError = await driver.taskConsume(() => {}, { segment: seg, topic: 'k' }).catch((e: unknown) => e);
        expect(TopologyError.isInstance(consumeError), String(consumeError)).toBe(true);
        // The driver still works on other segments.
        await driver.taskPublish({}, { segment: segment('ok') });
        await ch.close();
      });

      it('a queue declared earlier with other arguments (classic vs quorum): TopologyError naming it', async () => {
        const seg = segment('qclash');
        const classic = make();
        await (await classic.taskConsume(() => {}, { segment: seg, topic: 'k' })).close();
        const quorum = make({ queueType: 'quorum' });
        const error = await quorum.taskConsume(() => {}, { segment: seg, topic: 'k' }).catch((e: unknown) => e);
        expect(TopologyError.isInstance(error), String(error)).toBe(true);
        expect((error as TopologyError).resource).toMatch(new RegExp(`mq\\.${seg}\\.task(-dead)?\\.k`));
        expect((error as Error).message).toMatch(/exists with different settings.*inequivalent arg/);
      });

      it('headers too large for an AMQP header table: InvalidArgumentError(headers)', async () => {
        const driver = make();
        const error = await driver
          .taskPublish({}, { segment: 'x', headers: { big: 'x'.repeat(70_000) } })
          .catch((e: unknown) => e);
        expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
        expect((error as InvalidArgumentError).argument).toBe('headers');
      });
    });
  },
);
