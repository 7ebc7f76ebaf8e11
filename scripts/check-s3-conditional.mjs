#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
// End-to-end check that the S3 endpoint enforces conditional writes, using
// @aws-sdk/client-s3 (the same client the drivers use).
//
//   node scripts/check-s3-conditional.mjs            # uses MQ_TEST_S3_* env (defaults: local Ceph RGW)
//   MQ_AWS_SDK_DIR=/tmp/x node scripts/check-s3-conditional.mjs
//        # resolve @aws-sdk/client-s3 from /tmp/x/node_modules (before `pnpm install`)
//
// Creates a throwaway bucket, checks:
//   - PutObject IfNoneMatch '*' on a missing key succeeds; a second one fails 412
//   - ListObjectsV2 right after PUT sees the key
//   - PutObject IfMatch with the current ETag succeeds (quoted or unquoted), stale ETag -> 412
//   - N concurrent IfNoneMatch '*' PUTs on one key: exactly one winner
//   - N concurrent IfMatch=<current ETag> PUTs on one key: exactly one winner
// and prints observed behaviour (quoted vs unquoted If-Match, If-Match on a
// missing key, loser statuses) as FACT lines / in the PASS lines. Deletes the bucket at the end.
// Exit code 0 = every enforced assertion held.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

async function loadSdk() {
  try {
    return await import('@aws-sdk/client-s3');
  } catch (err) {
    // biome-ignore lint/suspicious/noUndeclaredEnvVars: a standalone probe script, not a turbo task
    const dir = process.env.MQ_AWS_SDK_DIR;
    if (!dir) throw err;
    const req = createRequire(path.join(path.resolve(dir), 'package.json'));
    return import(pathToFileURL(req.resolve('@aws-sdk/client-s3')).href);
  }
}

const sdk = await loadSdk();
const {
  S3Client,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  HeadObjectCommand,
} = sdk;

const env = process.env;
const client = new S3Client({
  endpoint: env.MQ_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480',
  region: env.MQ_TEST_S3_REGION ?? 'us-east-1',
  credentials: {
    accessKeyId: env.MQ_TEST_S3_ACCESS_KEY_ID ?? 'mqtestaccesskey',
    secretAccessKey: env.MQ_TEST_S3_SECRET_ACCESS_KEY ?? 'mqtestsecretkey0123456789',
  },
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  maxAttempts: 1, // no retries: we want to see the raw status of each request
});

const RACERS = Number(env.MQ_CHECK_RACERS ?? 20);
const ROUNDS = Number(env.MQ_CHECK_ROUNDS ?? 5);
const bucket = `mq-cond-check-${randomBytes(4).toString('hex')}`;
let failures = 0;

function ok(cond, msg) {
  console.log(`${cond ? 'PASS' : 'FAIL'} ${msg}`);
  if (!cond) failures++;
}
function fact(msg) {
  console.log(`FACT ${msg}`);
}
/** Run a command; return { status, name, etag } for success or failure. */
async function attempt(cmd) {
  try {
    const out = await client.send(cmd);
    return { status: out.$metadata.httpStatusCode, name: 'OK', etag: out.ETag };
  } catch (err) {
    return { status: err.$metadata?.httpStatusCode, name: err.name ?? err.Code ?? String(err) };
  }
}
const put = (Key, Body, extra = {}) => attempt(new PutObjectCommand({ Bucket: bucket, Key, Body, ...extra }));
const fmt = (r) => `${r.status} ${r.name}`;

const created = [];
try {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  console.log(`bucket ${bucket} created`);

  // --- If-None-Match: *
  const first = await put('inm', 'one', { IfNoneMatch: '*' });
  created.push('inm');
  ok(first.status === 200, `PutObject IfNoneMatch=* on missing key -> ${fmt(first)}`);
  const second = await put('inm', 'two', { IfNoneMatch: '*' });
  ok(second.status === 412, `PutObject IfNoneMatch=* on existing key -> ${fmt(second)} (want 412)`);

  // --- ListObjectsV2 right after PUT
  const fresh = await put('listed', 'x');
  created.push('listed');
  const list = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  const keys = (list.Contents ?? []).map((o) => o.Key);
  ok(keys.includes('listed') && keys.includes('inm'), `ListObjectsV2 right after PUT sees keys: [${keys.join(', ')}]`);
  ok(fresh.etag?.startsWith('"'), `PutObject returns a quoted ETag: ${fresh.etag}`);

  // --- If-Match (RGW 16 compares against the UNquoted ETag, AWS accepts the quoted form)
  const etagOf = async (Key) => (await client.send(new HeadObjectCommand({ Bucket: bucket, Key }))).ETag;
  const strip = (e) => e.replace(/^"|"$/g, '');
  const e0 = await etagOf('inm');
  const mQuoted = await put('inm', 'three', { IfMatch: e0 });
  fact(`PutObject IfMatch=<quoted current ETag> -> ${fmt(mQuoted)}`);
  const e1 = await etagOf('inm');
  const mUnquoted = await put('inm', 'four', { IfMatch: strip(e1) });
  fact(`PutObject IfMatch=<unquoted current ETag> -> ${fmt(mUnquoted)}`);
  ok(mQuoted.status === 200 || mUnquoted.status === 200, 'PutObject IfMatch=<current ETag> succeeds (quoted or unquoted form)');
  const e2 = await etagOf('inm');
  const mStaleQ = await put('inm', 'five', { IfMatch: e0 === e2 ? '"0000"' : e0 });
  const mStaleU = await put('inm', 'five', { IfMatch: strip(e0 === e2 ? '"0000"' : e0) });
  ok(
    mStaleQ.status === 412 && mStaleU.status === 412,
    `PutObject IfMatch=<stale ETag> -> quoted ${fmt(mStaleQ)}, unquoted ${fmt(mStaleU)} (want 412)`,
  );
  const mMissing = await put('missing-key', 'x', { IfMatch: strip(e2) });
  fact(`PutObject IfMatch=<some ETag> on missing key -> ${fmt(mMissing)}`);
  if (mMissing.status === 200) created.push('missing-key');
  const mStarMissing = await put('missing-key-2', 'x', { IfMatch: '*' });
  fact(`PutObject IfMatch=* on missing key -> ${fmt(mStarMissing)}`);
  if (mStarMissing.status === 200) created.push('missing-key-2');
  const mStar = await put('inm', 'six', { IfMatch: '*' });
  fact(`PutObject IfMatch=* on existing key -> ${fmt(mStar)}`);
  const ifMatchForm = mUnquoted.status === 200 ? strip : (e) => e;

  // --- CAS race: concurrent If-Match on the same current ETag
  for (let round = 0; round < ROUNDS; round++) {
    const key = `cas-${round}`;
    created.push(key);
    await put(key, 'base');
    const base = ifMatchForm(await etagOf(key));
    const results = await Promise.all(Array.from({ length: RACERS }, (_, i) => put(key, `cas-racer-${i}`, { IfMatch: base })));
    const tally = {};
    for (const r of results) tally[fmt(r)] = (tally[fmt(r)] ?? 0) + 1;
    const winners = results.filter((r) => r.status === 200).length;
    ok(winners === 1, `CAS round ${round}: ${RACERS} concurrent IfMatch=<current ETag> PUTs -> ${JSON.stringify(tally)}`);
  }

  // --- race: concurrent If-None-Match: * on one key
  for (let round = 0; round < ROUNDS; round++) {
    const key = `race-${round}`;
    created.push(key);
    const results = await Promise.all(Array.from({ length: RACERS }, (_, i) => put(key, `racer-${i}`, { IfNoneMatch: '*' })));
    const tally = {};
    for (const r of results) tally[fmt(r)] = (tally[fmt(r)] ?? 0) + 1;
    const winners = results.filter((r) => r.status === 200).length;
    ok(winners === 1, `race round ${round}: ${RACERS} concurrent IfNoneMatch=* PUTs -> ${JSON.stringify(tally)}`);
  }
} finally {
  for (const Key of created) await attempt(new DeleteObjectCommand({ Bucket: bucket, Key }));
  const del = await attempt(new DeleteBucketCommand({ Bucket: bucket }));
  console.log(`bucket ${bucket} deleted -> ${fmt(del)}`);
}

console.log(failures ? `${failures} check(s) FAILED` : 'all conditional-write checks passed');
process.exit(failures ? 1 : 0);
