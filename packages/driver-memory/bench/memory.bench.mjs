// End-to-end publish → handler → ack throughput of the memory driver against a naive baseline
// (an array queue drained by an async handler, JSON in and out, no validation, no ids, no acks),
// alternating cases over several rounds in one run. The baseline is the floor of any in-process
// queue; the ratio shows what the contract's guarantees cost.
// Usage: node packages/driver-memory/bench/memory.bench.mjs [messages] [rounds]
import { createMemoryDriver } from '@mq-drivers/memory';

const MESSAGES = Number(process.argv[2] ?? 50_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const body = { order: 42, customer: 'c-1', items: [1, 2, 3], note: 'x'.repeat(180) }; // ~256 B of JSON

async function ours(round) {
  const driver = createMemoryDriver({ broker: `bench-${round}` });
  const segment = `bench-${round}`;
  let handled = 0;
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  await driver.taskConsume(
    async () => {
      if (++handled === MESSAGES) done();
    },
    { topic: 'Work', segment, prefetch: 100 },
  );
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const publishes = [];
  for (let i = 0; i < MESSAGES; i++) publishes.push(driver.taskPublish(body, { segment }));
  await Promise.all(publishes);
  await finished;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  await driver.close();
  return { rate: MESSAGES / seconds, cpuUs: (used.user + used.system) / MESSAGES };
}

async function naive() {
  const queue = [];
  let handled = 0;
  const handler = async (message) => {
    JSON.parse(message);
    handled++;
  };
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const publishes = [];
  for (let i = 0; i < MESSAGES; i++) {
    publishes.push(
      (async () => {
        queue.push(JSON.stringify(body));
      })(),
    );
  }
  await Promise.all(publishes);
  // A head index, not Array#shift (which is O(n) and would make the baseline quadratic).
  for (let head = 0; head < queue.length; head++) await handler(queue[head]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  if (handled !== MESSAGES) throw new Error('baseline lost messages');
  return { rate: MESSAGES / seconds, cpuUs: (used.user + used.system) / MESSAGES };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = { ours: [], naive: [] };
await ours(-1); // warm-up
await naive();
for (let round = 0; round < ROUNDS; round++) {
  // Alternate which case runs first so drift on a shared machine hits both alike.
  const order = round % 2 === 0 ? ['ours', 'naive'] : ['naive', 'ours'];
  for (const name of order) results[name].push(name === 'ours' ? await ours(round) : await naive());
}
const row = (name) => ({
  case: name,
  'msgs/s (median)': Math.round(median(results[name].map((r) => r.rate))),
  'cpu µs/msg': median(results[name].map((r) => r.cpuUs)).toFixed(2),
});
console.log(`memory: ${MESSAGES} messages x ${ROUNDS} rounds, prefetch 100, ~256 B bodies`);
console.table([row('ours'), row('naive')]);
const ratio = median(results.ours.map((r) => r.rate)) / median(results.naive.map((r) => r.rate));
console.log(`ratio ours / naive array queue: ${ratio.toFixed(2)}`);
