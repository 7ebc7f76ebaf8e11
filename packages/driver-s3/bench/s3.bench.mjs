// Benchmark of @mq-drivers/s3 against a real S3 endpoint (build first: pnpm --filter @mq-drivers/s3... build).
//   node packages/driver-s3/bench/s3.bench.mjs
// Env: MQ_TEST_S3_ENDPOINT (default http://127.0.0.1:7480), MQ_TEST_S3_ACCESS_KEY_ID, MQ_TEST_S3_SECRET_ACCESS_KEY,
//      MQ_TEST_S3_REGION, MQ_TEST_S3_BUCKET (default mq-test), BENCH_ROUNDS (default 5), BENCH_CONCURRENCY (default 256).
// Cases alternate within each round; figures are medians over the rounds.
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createS3Driver } from '@mq-drivers/s3';

const env = process.env;
const endpoint = env.MQ_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480';
const credentials = {
  accessKeyId: env.MQ_TEST_S3_ACCESS_KEY_ID ?? 'mqtestaccesskey',
  secretAccessKey: env.MQ_TEST_S3_SECRET_ACCESS_KEY ?? 'mqtestsecretkey0123456789',
};
const region = env.MQ_TEST_S3_REGION ?? 'us-east-1';
const bucket = env.MQ_TEST_S3_BUCKET ?? 'mq-test';
const ROUNDS = Number(env.BENCH_ROUNDS ?? 5);
const CONCURRENCY = Number(env.BENCH_CONCURRENCY ?? 256);
const PUBLISH_N = CONCURRENCY * 10;
const E2E_N = 2000;

const options = { bucket, prefix: 'bench', endpoint, region, credentials, createBucket: true };
const raw = new S3Client({
  endpoint,
  region,
  credentials,
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  requestHandler: { httpAgent: { keepAlive: true, maxSockets: 256 } },
});

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
};
const seg = (label) => `${label}-${Date.now().toString(36)}-${randomUUID().slice(0, 6)}`;

/** Runs `n` operations with `concurrency` in flight; returns ops per second. */
async function pool(n, concurrency, op) {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await op(next++);
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

async function rawPutPerMessage() {
  const prefix = `bench/raw-${seg('put')}`;
  return pool(PUBLISH_N, CONCURRENCY, (i) =>
    raw.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `${prefix}/${String(Date.now()).padStart(13, '0')}-${i}.json`,
        Body: JSON.stringify({ i, payload: 'x'.repeat(100) }),
        IfNoneMatch: '*',
      }),
    ),
  );
}

async function driverPublish() {
  const driver = createS3Driver(options);
  const segment = seg('pub');
  await driver.sharePublish('warm-up', { segment, topic: 't' });
  const rate = await pool(PUBLISH_N, CONCURRENCY, (i) =>
    driver.sharePublish({ i, payload: 'x'.repeat(100) }, { segment, topic: 't' }),
  );
  await driver.close();
  return rate;
}

async function endToEnd(kind) {
  const consumer = createS3Driver(options);
  const producer = createS3Driver(options);
  const segment = seg(kind);
  let received = 0;
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  const handler = () => {
    if (++received === E2E_N) done();
  };
  if (kind === 'share') await consumer.shareConsume(handler, { segment, topics: ['#'], prefetch: 100 });
  else await consumer.taskConsume(handler, { segment, topic: 'bench', prefetch: 100 });
  const started = performance.now();
  await pool(E2E_N, 200, (i) =>
    kind === 'share' ? producer.sharePublish({ i }, { segment, topic: 'a.b' }) : producer.taskPublish({ i }, { segment }),
  );
  await finished;
  const rate = E2E_N / ((performance.now() - started) / 1000);
  await Promise.all([consumer.close(), producer.close()]);
  return rate;
}

/** Publish one message every 20 ms and measure publish-to-handler latency (default poll settings). */
async function latency(kind) {
  const consumer = createS3Driver(options);
  const producer = createS3Driver(options);
  const segment = seg(`lat-${kind}`);
  const sent = new Map();
  const delays = [];
  const handler = (m) => {
    delays.push(performance.now() - sent.get(m.body.i));
  };
  if (kind === 'share') await consumer.shareConsume(handler, { segment, topics: ['#'], prefetch: 10 });
  else await consumer.taskConsume(handler, { segment, topic: 'bench', prefetch: 10 });
  const n = 100;
  for (let i = 0; i < n; i++) {
    sent.set(i, performance.now());
    void (kind === 'share' ? producer.sharePublish({ i }, { segment, topic: 't' }) : producer.taskPublish({ i }, { segment }));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const deadline = Date.now() + 30_000;
  while (delays.length < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  await Promise.all([consumer.close(), producer.close()]);
  return delays;
}

const results = { raw: [], ours: [], share: [], task: [] };
for (let round = 1; round <= ROUNDS; round++) {
  // Alternate the order of the compared cases from round to round.
  const pair = round % 2 ? [rawPutPerMessage, driverPublish] : [driverPublish, rawPutPerMessage];
  for (const run of pair) (run === rawPutPerMessage ? results.raw : results.ours).push(await run());
  results.share.push(await endToEnd('share'));
  results.task.push(await endToEnd('task'));
  process.stderr.write(`round ${round}/${ROUNDS} done\n`);
}
const shareLatency = await latency('share');
const taskLatency = await latency('task');

const fmt = (n) => Math.round(n).toLocaleString('en-US');
console.log(`\n@mq-drivers/s3 benchmark — ${endpoint}, ${ROUNDS} rounds, medians, publish concurrency ${CONCURRENCY}\n`);
console.log('| case | msg/s | vs raw PutObject per message |');
console.log('| --- | ---: | ---: |');
console.log(`| raw PutObject per message (IfNoneMatch) | ${fmt(median(results.raw))} | 1.0× |`);
console.log(
  `| driver sharePublish (default batching) | ${fmt(median(results.ours))} | ${(median(results.ours) / median(results.raw)).toFixed(1)}× |`,
);
console.log(`| end-to-end share (publish → handler, ${E2E_N} msgs) | ${fmt(median(results.share))} | |`);
console.log(`| end-to-end task (publish → handler, ${E2E_N} msgs) | ${fmt(median(results.task))} | |`);
console.log('\n| latency (publish → handler, 1 msg / 20 ms, default polling) | p50 ms | p99 ms |');
console.log('| --- | ---: | ---: |');
console.log(`| share | ${fmt(percentile(shareLatency, 50))} | ${fmt(percentile(shareLatency, 99))} |`);
console.log(`| task | ${fmt(percentile(taskLatency, 50))} | ${fmt(percentile(taskLatency, 99))} |`);
raw.destroy();
