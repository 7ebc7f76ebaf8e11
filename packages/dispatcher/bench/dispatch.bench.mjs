// What the dispatcher costs per message: tasks handled through `runWorkers` (worker class,
// restart bookkeeping, metrics, in-flight tracking) against the raw driver's `taskConsume` with
// the same prefetch, on one in-process memory broker, alternating cases over several rounds.
// Usage: node packages/dispatcher/bench/dispatch.bench.mjs [messages] [rounds]
import { runWorkers } from '@mq-drivers/dispatcher';
import { createMemoryDriver } from '@mq-drivers/memory';
import { pino } from 'pino';

const MESSAGES = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const PREFETCH = 50;
const body = { to: 'ada@example.com', subject: 'Welcome', note: 'x'.repeat(200) }; // ~256 B of JSON
const logger = pino({ level: 'warn' });

/** Publishes MESSAGES tasks once the consumer side is up; resolves when all were handled. */
async function measure(broker, segment, setup) {
  const producer = createMemoryDriver({ broker });
  let handled = 0;
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  const onMessage = () => {
    if (++handled === MESSAGES) done();
  };
  const teardown = await setup(onMessage);
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const publishes = [];
  for (let i = 0; i < MESSAGES; i++) publishes.push(producer.taskPublish(body, { segment }));
  await Promise.all(publishes);
  await finished;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  await teardown();
  await producer.close();
  return { rate: MESSAGES / seconds, cpuUs: (used.user + used.system) / MESSAGES };
}

function dispatcher(round) {
  const broker = `bench-d-${round}`;
  const segment = `bench-d-${round}`;
  return measure(broker, segment, async (onMessage) => {
    class Worker {
      consume() {
        onMessage();
      }
    }
    const running = await runWorkers(
      { url: `memory://${broker}`, consumers: [{ consumer: Worker, task: { kind: 'Work', segment }, prefetch: PREFETCH }] },
      { logger },
    );
    return () => running.stop();
  });
}

function raw(round) {
  const broker = `bench-r-${round}`;
  const segment = `bench-r-${round}`;
  return measure(broker, segment, async (onMessage) => {
    const driver = createMemoryDriver({ broker });
    await driver.taskConsume(async () => onMessage(), { topic: 'Work', segment, prefetch: PREFETCH });
    return () => driver.close();
  });
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = { dispatcher: [], 'raw taskConsume': [] };
const cases = { dispatcher, 'raw taskConsume': raw };
await dispatcher('warm');
await raw('warm');
for (let round = 0; round < ROUNDS; round++) {
  // Alternate which case runs first so drift on a shared machine hits both alike.
  const order = round % 2 === 0 ? Object.keys(cases) : Object.keys(cases).reverse();
  for (const name of order) results[name].push(await cases[name](round));
}
const row = (name) => ({
  case: name,
  'msgs/s (median)': Math.round(median(results[name].map((r) => r.rate))),
  'cpu µs/msg': median(results[name].map((r) => r.cpuUs)).toFixed(2),
});
console.log(`dispatcher on memory: ${MESSAGES} tasks x ${ROUNDS} rounds, prefetch ${PREFETCH}, ~256 B bodies`);
console.table([row('dispatcher'), row('raw taskConsume')]);
const ratio = median(results.dispatcher.map((r) => r.rate)) / median(results['raw taskConsume'].map((r) => r.rate));
console.log(`dispatcher / raw driver throughput: ${ratio.toFixed(2)}x`);
