/**
 * The one environment scheme of the real-service tests: which variables name the test services,
 * and the localhost defaults (what `scripts/services-up.sh` starts) when they are not set.
 * `services.ts` and `containers.ts` both read it, so a name or default changes in one place.
 */

export type Env = Record<string, string | undefined>;

/** Environment variable with the AMQP URL of the test RabbitMQ. */
export const RABBITMQ_URL_ENV = 'MQ_TEST_RABBITMQ_URL';

/** The local RabbitMQ with the default guest user. */
export const DEFAULT_RABBITMQ_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** Settings of the test S3 endpoint. */
export interface TestS3Settings {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

/** Environment variable for each S3 setting. */
export const S3_ENV: Readonly<Record<keyof TestS3Settings, string>> = Object.freeze({
  endpoint: 'MQ_TEST_S3_ENDPOINT',
  region: 'MQ_TEST_S3_REGION',
  accessKeyId: 'MQ_TEST_S3_ACCESS_KEY_ID',
  secretAccessKey: 'MQ_TEST_S3_SECRET_ACCESS_KEY',
  bucket: 'MQ_TEST_S3_BUCKET',
});

/** The local Ceph RGW gateway with the test keys. */
export const DEFAULT_S3: Readonly<TestS3Settings> = Object.freeze({
  endpoint: 'http://127.0.0.1:7480',
  region: 'us-east-1',
  accessKeyId: 'mqtestaccesskey',
  secretAccessKey: 'mqtestsecretkey0123456789',
  bucket: 'mq-test',
});

// An empty variable counts as unset: `MQ_TEST_S3_ENDPOINT= pnpm test` means "use the default".
const read = (env: Env, name: string, fallback: string): string => env[name] || fallback;

/** The test RabbitMQ URL from `env`, else the default. */
export function rabbitMqUrlFrom(env: Env): string {
  return read(env, RABBITMQ_URL_ENV, DEFAULT_RABBITMQ_URL);
}

/** The test S3 settings from `env`, each falling back to its default on its own. */
export function s3SettingsFrom(env: Env): TestS3Settings {
  return {
    endpoint: read(env, S3_ENV.endpoint, DEFAULT_S3.endpoint),
    region: read(env, S3_ENV.region, DEFAULT_S3.region),
    accessKeyId: read(env, S3_ENV.accessKeyId, DEFAULT_S3.accessKeyId),
    secretAccessKey: read(env, S3_ENV.secretAccessKey, DEFAULT_S3.secretAccessKey),
    bucket: read(env, S3_ENV.bucket, DEFAULT_S3.bucket),
  };
}
