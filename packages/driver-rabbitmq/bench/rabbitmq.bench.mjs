// RabbitMQ driver benchmark: our driver vs raw amqplib on the same broker, in one run.
//
//   pnpm --filter @mq-drivers/rabbitmq... build && node packages/driver-rabbitmq/bench/rabbitmq.bench.mjs
//
// Env: MQ_TEST_RABBITMQ_URL (default amqp://guest:guest@127.0.0.1:5672), BENCH_ROUNDS (default 5),
// BENCH_N (messages per throughput run, default 20000), BENCH_LATENCY_SECONDS (default 3).
//
// Cases, each alternated ours/raw round by round; the table shows medians over the rounds:
//   (a) publish with confirms (256 B JSON bodies into a durable queue): taskPublish in batches of
//       1000 (Promise.all) vs a raw ConfirmChannel publishing batches of 1000 + waitForConfirms.
//       Raw sends the leanest message (default exchange, no headers, short message-id); a third
//       run, "raw, our wire shape", sends what the driver sends (fanout exchange bound to a queue
//       with the same arguments, a 36-character id, the `x-mq-published-at` header), so the table
//       separates what our code costs from what the documented wire format costs the broker.
//   (b) end-to-end tasks through one kind, prefetch 100 (raw: ack every message = naive usage)
//   (b+) end-to-end with prefetch 1000: ours (multi-ack of finished runs) vs raw tuned
//        (prefetch 1000, ack(multiple) every 500) and vs raw naive from (b)
//   (c) fan-out: 3 kinds x 2 workers, prefetch 100
//   (d) delivery latency p50/p99 at a steady 5k msg/s (ours; raw with noDelay; raw with amqplib's default Nagle)
// Client CPU is process.cpuUsage() (user+system) of this process (producer and consumers) per message.
import { randomBytes, randomUUID } from 'node:crypto';
import { createRabbitMqDriver } from '@mq-drivers/rabbitmq';
import amqplib from 'amqplib';

const URL_ = process.env.MQ_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const N = Number(process.env.BENCH_N ?? 20_000);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 3);
const WINDOW = 1_000;
const PAYLOAD = randomBytes(90).toString('hex'); // the JSON body {"n":…,"p":"…"} is ~256 bytes
const body = (n) => ({ n, p: PAYLOAD.slice(0, 256 - 20) });

const ours = (options = {}) => createRabbitMqDriver({ url: URL_, onError: () => {}, ...options });
const rawConnect = (noDelay = true) => amqplib.connect(URL_, { noDelay });
const uid = () => `bench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

function measure() {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  return (messages) => {
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.cpuUsage(cpu);
    return { rate: messages / seconds, cpuUs: (used.user + used.system) / messages };
  };
}

function waitUntil(condition, what, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const tick = () => {
      if (condition()) resolve();
      else if (Date.now() > deadline) reject(new Error(`bench: timed out waiting for ${what}`));
      else setTimeout(tick, 1);
    };
    tick();
  });
}

async function cleanup(queues, exchanges = []) {
  const connection = await rawConnect();
  const channel = await connection.createChannel();
  for (const queue of queues) await channel.deleteQueue(queue).catch(() => {});
  for (const exchange of exchanges) await channel.deleteExchange(exchange).catch(() => {});
  await connection.close();
}

/** Publishes in batches of `WINDOW` and waits for each batch's confirms, like the raw case does. */
async function publishWindowed(count, publishOne) {
  for (let i = 0; i < count; i += WINDOW) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + WINDOW); j++) batch.push(publishOne(j));
    await Promise.all(batch);
  }
}

async function rawPublishBatched(channel, exchange, routingKey, count) {
  for (let i = 0; i < count; i += WINDOW) {
    for (let j = i; j < Math.min(count, i + WINDOW); j++) {
      const ok = channel.publish(exchange, routingKey, Buffer.from(JSON.stringify(body(j))), {
        persistent: true,
        contentType: 'application/json',
        messageId: String(j),
        timestamp: Math.floor(Date.now() / 1000),
      });
      if (!ok) await new Promise((resolve) => channel.once('drain', resolve));
    }
    await channel.waitForConfirms();
  }
}

// ---------------------------------------------------------------- (a) publish --
async function publishOurs() {
  const segment = uid();
  const driver = ours();
  await (await driver.taskConsume(() => {}, { segment, topic: 'sink' })).close(); // register the kind: messages are stored
  await driver.taskPublish(body(-1), { segment });
  const done = measure();
  await publishWindowed(N, (n) => driver.taskPublish(body(n), { segment }));
  const result = done(N);
  await driver.close();
  await cleanup([`mq.${segment}.task.sink`, `mq.${segment}.task-dead.sink`], [`mq.${segment}.tasks`]);
  return result;
}

async function publishRaw() {
  const name = uid();
  const connection = await rawConnect();
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(name, { durable: true });
  const done = measure();
  await rawPublishBatched(channel, '', name, N);
  const result = done(N);
  await channel.deleteQueue(name);
  await connection.close();
  return result;
}

/** Raw amqplib sending our wire shape (TOPOLOGY.md), written the way a raw user would (a headers object per message). */
async function publishRawShaped() {
  const name = uid();
  const exchange = `${name}.tasks`;
  const connection = await rawConnect();
  const channel = await connection.createConfirmChannel();
  await channel.assertExchange(exchange, 'fanout', { durable: true });
  await channel.assertQueue(name, {
    durable: true,
    arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': `${name}.dead` },
  });
  await channel.bindQueue(name, exchange, '');
  const done = measure();
  for (let i = 0; i < N; i += WINDOW) {
    for (let j = i; j < Math.min(N, i + WINDOW); j++) {
      const now = Date.now();
      const ok = channel.publish(exchange, '', Buffer.from(JSON.stringify(body(j))), {
        persistent: true,
        contentType: 'application/json',
        messageId: randomUUID(),
        timestamp: Math.floor(now / 1000),
        headers: { 'x-mq-published-at': now },
      });
      if (!ok) await new Promise((resolve) => channel.once('drain', resolve));
    }
    await channel.waitForConfirms();
  }
  const result = done(N);
  await channel.deleteQueue(name);
  await channel.deleteExchange(exchange);
  await connection.close();
  return result;
}

// ------------------------------------------------------------ (b) end to end --
async function endToEndOurs(prefetch = 100, kinds = 1, workersPerKind = 1) {
  const segment = uid();
  const producer = ours();
  const workers = [];
  let received = 0;
  for (let k = 0; k < kinds; k++) {
    for (let w = 0; w < workersPerKind; w++) {
      const driver = ours();
      workers.push(driver);
      await driver.taskConsume(
        () => {
          received++;
        },
        { segment, topic: `kind${k}`, prefetch },
      );
    }
  }
  await producer.taskPublish(body(-1), { segment });
  await waitUntil(() => received >= kinds, 'warm-up');
  received = 0;
  const count = kinds === 1 ? N : Math.floor(N / kinds);
  const done = measure();
  await publishWindowed(count, (n) => producer.taskPublish(body(n), { segment }));
  await waitUntil(() => received >= count * kinds, 'deliveries');
  const result = done(count * kinds);
  await Promise.all([producer.close(), ...workers.map((driver) => driver.close())]);
  const queues = [];
  for (let k = 0; k < kinds; k++) queues.push(`mq.${segment}.task.kind${k}`, `mq.${segment}.task-dead.kind${k}`);
  await cleanup(queues, [`mq.${segment}.tasks`]);
  return result;
}

async function endToEndRaw({ prefetch = 100, ackEvery = 1, kinds = 1, workersPerKind = 1 } = {}) {
  const exchange = uid();
  const producerConnection = await rawConnect();
  const publisher = await producerConnection.createConfirmChannel();
  await publisher.assertExchange(exchange, 'fanout', { durable: true });
  const consumers = [];
  const queues = [];
  let received = 0;
  for (let k = 0; k < kinds; k++) {
    const queue = `${exchange}.kind${k}`;
    queues.push(queue);
    await publisher.assertQueue(queue, { durable: true });
    await publisher.bindQueue(queue, exchange, '');
    for (let w = 0; w < workersPerKind; w++) {
      const connection = await rawConnect();
      consumers.push(connection);
      const channel = await connection.createChannel();
      await channel.prefetch(prefetch);
      let unacked = 0;
      let latest;
      await channel.consume(queue, (msg) => {
        if (!msg) return; // cancelled when the queue is deleted
        JSON.parse(msg.content.toString('utf8'));
        received++;
        if (ackEvery === 1) {
          channel.ack(msg);
          return;
        }
        latest = msg;
        if (++unacked >= ackEvery) {
          channel.ack(msg, true);
          unacked = 0;
        } else {
          // acknowledge a partial run on the next turn so the tail is acknowledged too
          setImmediate(() => {
            if (latest === msg && unacked > 0) {
              unacked = 0;
              try {
                channel.ack(msg, true);
              } catch {} // closing at the end of the run
            }
          });
        }
      });
    }
  }
  const count = kinds === 1 ? N : Math.floor(N / kinds);
  const done = measure();
  await rawPublishBatched(publisher, exchange, '', count);
  await waitUntil(() => received >= count * kinds, 'deliveries');
  const result = done(count * kinds);
  await Promise.all(consumers.map((connection) => connection.close()));
  for (const queue of queues) await publisher.deleteQueue(queue);
  await publisher.deleteExchange(exchange);
  await producerConnection.close();
  return result;
}

// ---------------------------------------------------------------- (d) latency --
const RATE = 5_000;

async function steadyLatency(publish, startConsumer) {
  const latencies = [];
  const sentAt = new Map();
  await startConsumer((n) => {
    const t = sentAt.get(n);
    if (t !== undefined) latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
  });
  const total = RATE * LATENCY_SECONDS;
  let n = 0;
  const start = process.hrtime.bigint();
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor((Number(process.hrtime.bigint() - start) / 1e9) * RATE));
      while (n < due) {
        sentAt.set(n, process.hrtime.bigint());
        publish(n++);
      }
      if (n >= total) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await waitUntil(() => latencies.length >= total * 0.999, 'latency deliveries', 30_000).catch(() => {});
  latencies.sort((a, b) => a - b);
  return { p50: latencies[Math.floor(latencies.length * 0.5)], p99: latencies[Math.floor(latencies.length * 0.99)] };
}

async function latencyOurs() {
  const segment = uid();
  const producer = ours();
  const worker = ours();
  const result = await steadyLatency(
    (n) => {
      producer.taskPublish({ n }, { segment }).catch(() => {});
    },
    (onReceive) => worker.taskConsume((m) => onReceive(m.body.n), { segment, topic: 'lat', prefetch: 100 }),
  );
  await Promise.all([producer.close(), worker.close()]);
  await cleanup([`mq.${segment}.task.lat`, `mq.${segment}.task-dead.lat`], [`mq.${segment}.tasks`]);
  return result;
}

async function latencyRaw(noDelay) {
  const queue = uid();
  const producerConnection = await rawConnect(noDelay);
  const consumerConnection = await rawConnect(noDelay);
  const publisher = await producerConnection.createConfirmChannel();
  await publisher.assertQueue(queue, { durable: true });
  const consumer = await consumerConnection.createChannel();
  await consumer.prefetch(100);
  const result = await steadyLatency(
    (n) => {
      publisher.publish(
        '',
        queue,
        Buffer.from(JSON.stringify({ n })),
        { persistent: true, contentType: 'application/json' },
        () => {},
      );
    },
    async (onReceive) => {
      await consumer.consume(queue, (msg) => {
        if (!msg) return;
        onReceive(JSON.parse(msg.content.toString('utf8')).n);
        consumer.ack(msg);
      });
    },
  );
  await consumerConnection.close();
  await publisher.deleteQueue(queue);
  await producerConnection.close();
  return result;
}

// ------------------------------------------------------------------- runner --
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const throughputCases = [
  { name: '(a) publish, confirms', ours: publishOurs, raw: publishRaw, shaped: publishRawShaped },
  { name: '(b) e2e 1 kind, prefetch 100', ours: () => endToEndOurs(100), raw: () => endToEndRaw({ prefetch: 100 }) },
  {
    name: '(b+) e2e prefetch 1000 vs raw tuned',
    ours: () => endToEndOurs(1000),
    raw: () => endToEndRaw({ prefetch: 1000, ackEvery: 500 }),
  },
  {
    name: '(c) fan-out 3 kinds x 2 workers',
    ours: () => endToEndOurs(100, 3, 2),
    raw: () => endToEndRaw({ prefetch: 100, kinds: 3, workersPerKind: 2 }),
  },
];

async function main() {
  console.log(
    `RabbitMQ benchmark: ${URL_.replace(/\/\/[^@]*@/, '//')}, ${ROUNDS} rounds, ${N} messages per run, node ${process.version}`,
  );
  const results = new Map();
  const add = (key, value) => results.set(key, [...(results.get(key) ?? []), value]);
  const only = process.env.BENCH_CASES; // e.g. "a,b" to run some cases only
  const selected = throughputCases.filter((c) => !only || only.split(',').some((k) => c.name.startsWith(`(${k})`)));
  for (let round = 0; round < ROUNDS; round++) {
    for (const testCase of selected) {
      // alternate who goes first, round by round
      const order = round % 2 === 0 ? ['ours', 'raw'] : ['raw', 'ours'];
      if (testCase.shaped) order.splice(round % 3, 0, 'shaped');
      for (const who of order) add(`${testCase.name}|${who}`, await testCase[who]());
    }
    if (!only || only.includes('d')) {
      add('(d)|ours', await latencyOurs());
      add('(d)|raw', await latencyRaw(true));
      add('(d)|raw-nagle', await latencyRaw(false));
    }
    process.stdout.write(`round ${round + 1}/${ROUNDS} done\n`);
  }
  const rows = [];
  let naive;
  for (const testCase of selected) {
    const o = results.get(`${testCase.name}|ours`);
    const r = results.get(`${testCase.name}|raw`);
    const oRate = median(o.map((x) => x.rate));
    const rRate = median(r.map((x) => x.rate));
    const oCpu = median(o.map((x) => x.cpuUs));
    const rCpu = median(r.map((x) => x.cpuUs));
    if (testCase.name.startsWith('(b)')) naive = rRate;
    rows.push({
      case: testCase.name,
      'ours msg/s': Math.round(oRate),
      'raw msg/s': Math.round(rRate),
      'ratio msg/s': (oRate / rRate).toFixed(2),
      'ours CPU µs/msg': oCpu.toFixed(1),
      'raw CPU µs/msg': rCpu.toFixed(1),
      'CPU ratio': (oCpu / rCpu).toFixed(2),
    });
    const shaped = results.get(`${testCase.name}|shaped`);
    if (shaped) {
      const sRate = median(shaped.map((x) => x.rate));
      const sCpu = median(shaped.map((x) => x.cpuUs));
      rows.push({
        case: '(a) ours vs raw with our wire shape',
        'ours msg/s': Math.round(oRate),
        'raw msg/s': Math.round(sRate),
        'ratio msg/s': (oRate / sRate).toFixed(2),
        'ours CPU µs/msg': oCpu.toFixed(1),
        'raw CPU µs/msg': sCpu.toFixed(1),
        'CPU ratio': (oCpu / sCpu).toFixed(2),
      });
    }
    if (testCase.name.startsWith('(b+)')) {
      rows.push({
        case: '(b+) ours prefetch 1000 vs raw naive (b)',
        'ours msg/s': Math.round(oRate),
        'raw msg/s': Math.round(naive),
        'ratio msg/s': (oRate / naive).toFixed(2),
        'ours CPU µs/msg': '',
        'raw CPU µs/msg': '',
        'CPU ratio': '',
      });
    }
  }
  console.table(rows);
  if (!results.has('(d)|ours')) return;
  const lat = (key) => {
    const list = results.get(key);
    return { p50: median(list.map((x) => x.p50)).toFixed(2), p99: median(list.map((x) => x.p99)).toFixed(2) };
  };
  console.log(`(d) delivery latency at ${RATE} msg/s for ${LATENCY_SECONDS} s, ms (median over rounds):`);
  console.table({
    ours: lat('(d)|ours'),
    'raw amqplib, noDelay': lat('(d)|raw'),
    'raw amqplib, default (Nagle)': lat('(d)|raw-nagle'),
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
