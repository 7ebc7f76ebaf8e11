/**
 * Real brokers for a test run, with no set-up on a laptop that has Docker:
 * - a URL given through the environment (MQ_TEST_RABBITMQ_URL, MQ_TEST_S3_ENDPOINT) always wins;
 * - else, when a Docker engine answers, a throwaway container is started with testcontainers
 *   (`@testcontainers/rabbitmq`, `@testcontainers/minio`: optional peer dependencies, loaded only
 *   then);
 * - else the localhost defaults (what `scripts/services-up.sh` starts), with `reason` saying why.
 */

import { DEFAULT_RABBITMQ_URL, DEFAULT_S3, RABBITMQ_URL_ENV, S3_ENV, s3SettingsFrom } from './service-settings.js';

export interface RabbitMqService {
  url: string;
  /** `env`, `container` or `default` (localhost). */
  source: 'env' | 'container' | 'default';
  /** Why no container was started, when source is `default`. */
  reason?: string;
  /** Stops the container (a no-op for env and default). */
  stop(): Promise<void>;
}

export interface S3Service {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  source: 'env' | 'container' | 'default';
  reason?: string;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  /** Environment to read (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Container image; defaults to the testcontainers module's own. */
  image?: string;
}

const noop = async () => {};

/** Loads an optional module by a name TypeScript and bundlers do not resolve at build time. */
async function optional<T>(name: string): Promise<T | undefined> {
  try {
    return (await import(/* @vite-ignore */ name)) as T;
  } catch {
    return undefined;
  }
}

interface Testcontainers {
  getContainerRuntimeClient(): Promise<unknown>;
}

/** Whether testcontainers is installed and finds a container engine. */
export async function dockerAvailable(): Promise<{ available: boolean; reason?: string }> {
  const testcontainers = await optional<Testcontainers>('testcontainers');
  if (!testcontainers) return { available: false, reason: 'testcontainers is not installed' };
  try {
    await testcontainers.getContainerRuntimeClient();
    return { available: true };
  } catch (error) {
    return { available: false, reason: `no container engine reachable (${(error as Error).message})` };
  }
}

interface StartedRabbit {
  getAmqpUrl(): string;
  stop(): Promise<unknown>;
}

/** A RabbitMQ to test against: env URL, else a container, else amqp://guest:guest@127.0.0.1:5672. */
export async function rabbitMqForTests(options: ServiceOptions = {}): Promise<RabbitMqService> {
  const env = options.env ?? process.env;
  const given = env[RABBITMQ_URL_ENV];
  if (given) return { url: given, source: 'env', stop: noop };
  const fallback = (reason: string): RabbitMqService => ({
    url: DEFAULT_RABBITMQ_URL,
    source: 'default',
    reason,
    stop: noop,
  });
  const docker = await dockerAvailable();
  if (!docker.available) return fallback(docker.reason as string);
  const module = await optional<{ RabbitMQContainer: new (image?: string) => { start(): Promise<StartedRabbit> } }>(
    '@testcontainers/rabbitmq',
  );
  if (!module) return fallback('@testcontainers/rabbitmq is not installed');
  const started = await new module.RabbitMQContainer(options.image ?? 'rabbitmq:4-management-alpine').start();
  return { url: started.getAmqpUrl(), source: 'container', stop: async () => void (await started.stop()) };
}

interface StartedMinio {
  getConnectionUrl(): string;
  getUsername(): string;
  getPassword(): string;
  stop(): Promise<unknown>;
}

/** An S3 to test against: env endpoint, else a MinIO container, else the local Ceph gateway defaults. */
export async function s3ForTests(options: ServiceOptions = {}): Promise<S3Service> {
  const env = options.env ?? process.env;
  const settings = s3SettingsFrom(env);
  const region = settings.region;
  if (env[S3_ENV.endpoint]) {
    const { endpoint, accessKeyId, secretAccessKey } = settings;
    return { endpoint, accessKeyId, secretAccessKey, region, source: 'env', stop: noop };
  }
  // Keys from the env go with an endpoint from the env; the local gateway has its own.
  const fallback = (reason: string): S3Service => ({
    endpoint: DEFAULT_S3.endpoint,
    accessKeyId: DEFAULT_S3.accessKeyId,
    secretAccessKey: DEFAULT_S3.secretAccessKey,
    region,
    source: 'default',
    reason,
    stop: noop,
  });
  const docker = await dockerAvailable();
  if (!docker.available) return fallback(docker.reason as string);
  const module = await optional<{ MinioContainer: new (image?: string) => { start(): Promise<StartedMinio> } }>(
    '@testcontainers/minio',
  );
  if (!module) return fallback('@testcontainers/minio is not installed');
  const started = await new module.MinioContainer(options.image ?? 'minio/minio:latest').start();
  return {
    endpoint: started.getConnectionUrl(),
    accessKeyId: started.getUsername(),
    secretAccessKey: started.getPassword(),
    region,
    source: 'container',
    stop: async () => void (await started.stop()),
  };
}
