// Tee benchmark: tee(rabbitmq, s3) publish throughput vs RabbitMQ alone and S3 alone, in one run.
//
//   pnpm --filter @mq-drivers/tee... build && node packages/tee/bench/tee.bench.mjs
//
// Env: MQ_TEST_RABBITMQ_URL, MQ_TEST_S3_ENDPOINT / _ACCESS_KEY_ID / _SECRET_ACCESS_KEY / _REGION / _BUCKET
// (the test defaults), BENCH_ROUNDS (default 5), BENCH_N (messages per throughput run, default 3000),
// BENCH_WINDOWS (publishes in flight, comma-separated, default 32,200), BENCH_SEQUENTIAL (publishes in the latency case, default 100).
//
// Cases, alternated round by round (order rotated each round); the tables show medians over the rounds:
//   (a) throughput: N share publishes (~256 B JSON) with W in flight (each of WINDOWS), until every publish is
//       confirmed. W=32 is latency-bound (S3 round trips dominate); W=200 is CPU-bound on a small machine
//       (both drivers' client work shares one Node thread, so the tee costs their SUM of CPU per message):
//       rabbitmq alone, s3 alone, both written side by side by hand (Promise.all of the two publishes with
//       one id: the raw baseline for a tee), tee(rabbitmq,s3) mode 'all', tee mode 'primary' (+ flush()).
//   (b) latency: publishes one after another (each awaited), median per publish: a tee costs about the
//       slower target (targets are written concurrently), not the sum.
// Each case uses its own long-lived drivers (connected in a warm-up round) and a fresh segment per round.
// Client CPU is process.cpuUsage() (user+system) of this process per message.
import { randomBytes, randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { createRabbitMqDriver } from '@mq-drivers/rabbitmq';
import { createS3Driver } from '@mq-drivers/s3';
import { tee } from '@mq-drivers/tee';

const RABBITMQ_URL = process.env.MQ_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const S3 = {
  endpoint: process.env.MQ_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480',
  region: process.env.MQ_TEST_S3_REGION ?? 'us-east-1',
  accessKeyId: process.env.MQ_TEST_S3_ACCESS_KEY_ID ?? 'mqtestaccesskey',
  secretAccessKey: process.env.MQ_TEST_S3_SECRET_ACCESS_KEY ?? 'mqtestsecretkey0123456789',
  bucket: process.env.MQ_TEST_S3_BUCKET ?? 'mq-test',
};
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const N = Number(process.env.BENCH_N ?? 3_000);
const WINDOWS = (process.env.BENCH_WINDOWS ?? '32,200').split(',').map(Number);
const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 100);
const PAYLOAD = randomBytes(128).toString('hex');
const body = (n) => ({ n, p: PAYLOAD.slice(0, 236) }); // ~256 bytes of JSON

const rabbit = () => createRabbitMqDriver({ url: RABBITMQ_URL, onError: () => {} });
const s3 = () =>
  createS3Driver({
    bucket: S3.bucket,
    prefix: 'tee-bench',
    endpoint: S3.endpoint,
    region: S3.region,
    credentials: { accessKeyId: S3.accessKeyId, secretAccessKey: S3.secretAccessKey },
    createBucket: true,
  });
const uid = () => `bench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

/** The same two drivers written side by side by hand (no tee): what a tee can at best reach in one process. */
function sideBySide() {
  const a = rabbit();
  const b = s3();
  return {
    async sharePublish(value, options) {
      const id = randomUUID();
      await Promise.all([a.sharePublish(value, { ...options, id }), b.sharePublish(value, { ...options, id })]);
      return { id };
    },
    close: () => Promise.all([a.close(), b.close()]),
  };
}

const cases = {
  'rabbitmq alone': { driver: rabbit() },
  's3 alone': { driver: s3() },
  'rabbitmq + s3 by hand (no tee)': { driver: sideBySide() },
  "tee(rabbitmq,s3) mode 'all'": { driver: tee({ rabbitmq: rabbit(), s3: s3() }) },
  "tee(rabbitmq,s3) mode 'primary'": { driver: tee({ rabbitmq: rabbit(), s3: s3() }, { mode: 'primary' }) },
};

/** N publishes with WINDOW in flight; resolves once all are confirmed (and a primary-mode tee flushed). */
async function throughput(driver, count, window) {
  const segment = uid();
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const n = next++;
      await driver.sharePublish(body(n), { segment, topic: 'Bench.Event' });
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
  if (typeof driver.flush === 'function') {
    const flushed = await driver.flush({ timeoutMs: 120_000 });
    if (!flushed.caughtUp) throw new Error('bench: the tee did not catch up');
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { rate: count / seconds, cpuUs: (used.user + used.system) / count };
}

/** Publishes one after another; median milliseconds per publish. */
async function latency(driver, count) {
  const segment = uid();
  const times = [];
  for (let n = 0; n < count; n++) {
    const start = process.hrtime.bigint();
    await driver.sharePublish(body(n), { segment, topic: 'Bench.Event' });
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  if (typeof driver.flush === 'function') await driver.flush({ timeoutMs: 60_000 });
  return median(times);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const names = Object.keys(cases);
// Warm-up: connect, declare, verify conditional writes, fill connection pools.
for (const name of names) await throughput(cases[name].driver, Math.min(200, N), 50);

const results = Object.fromEntries(
  names.map((name) => [name, { latencyMs: [], ...Object.fromEntries(WINDOWS.map((w) => [w, { rate: [], cpuUs: [] }])) }]),
);
for (let round = 0; round < ROUNDS; round++) {
  const order = names.map((_, i) => names[(i + round) % names.length]);
  for (const window of WINDOWS) {
    for (const name of order) {
      const { rate, cpuUs } = await throughput(cases[name].driver, N, window);
      results[name][window].rate.push(rate);
      results[name][window].cpuUs.push(cpuUs);
    }
  }
  for (const name of order) results[name].latencyMs.push(await latency(cases[name].driver, SEQUENTIAL));
  process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
}
await Promise.all(names.map((name) => cases[name].driver.close()));

console.log(
  `tee benchmark: ${N} share publishes of ~256 B with ${WINDOWS.join(' / ')} in flight; ${SEQUENTIAL} sequential for latency; median of ${ROUNDS} rounds`,
);
console.log(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${new Date().toISOString()}\n`);
console.log('| in flight | case | publishes/s | vs slower alone | vs by hand | client CPU µs/msg |');
console.log('|---|---|---|---|---|---|');
const verdicts = [];
for (const window of WINDOWS) {
  const rate = (name) => median(results[name][window].rate);
  const slower = Math.min(rate('rabbitmq alone'), rate('s3 alone'));
  const byHand = rate('rabbitmq + s3 by hand (no tee)');
  for (const name of names) {
    const cpuUs = median(results[name][window].cpuUs);
    console.log(
      `| ${window} | ${name} | ${Math.round(rate(name)).toLocaleString('en-US')} | ${(rate(name) / slower).toFixed(2)} | ${(rate(name) / byHand).toFixed(2)} | ${cpuUs.toFixed(1)} |`,
    );
  }
  const ratio = rate("tee(rabbitmq,s3) mode 'all'") / slower;
  verdicts.push(
    `${window} in flight: tee mode 'all' / slower target alone = ${ratio.toFixed(2)} (target >= 0.80): ${ratio >= 0.8 ? 'OK' : 'BELOW TARGET'}`,
  );
}
console.log('\n| case | sequential publish p50 ms |');
console.log('|---|---|');
for (const name of names) console.log(`| ${name} | ${median(results[name].latencyMs).toFixed(2)} |`);
console.log(`\n${verdicts.join('\n')}`);
