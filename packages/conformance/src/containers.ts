/**
 * `@mq-drivers/conformance/containers`: real brokers in throwaway containers, through
 * testcontainers (optional peer dependencies `testcontainers` and `@testcontainers/rabbitmq`,
 * loaded only when a container is asked for).
 *
 * - `startRabbitMq({image})` starts one RabbitMQ and gives its URL, a `rabbitmqctl` inside it and
 *   `stop()`. Works with the public images (`rabbitmq:4.0`, …) and with the local ones that
 *   `scripts/services-up.sh` builds from Debian packages where no image registry is reachable
 *   ({@link LOCAL_IMAGES}).
 * - `startRabbitMqCluster({image, nodes})` starts nodes on a network of their own and joins them.
 * - `rabbitMqForTests()`: a URL from the environment wins, else a container, else localhost.
 * - `containerSkipReason(label)`: the service rule for suites that need an engine: skip with a
 *   printed reason on a laptop, FAIL under `CI=true`.
 */

import { existsSync } from 'node:fs';
import { DEFAULT_RABBITMQ_URL, RABBITMQ_URL_ENV } from './service-settings.js';

/**
 * The images `scripts/services-up.sh` builds locally (debootstrap + `docker import`, then
 * Debian's `rabbitmq-server`). They exist in no registry: never pulled.
 */
export const LOCAL_IMAGES = Object.freeze({
  /** Debian 12 (bookworm) minbase. */
  debian12: 'mq-drivers/debian:12',
  /** Debian 13 (trixie) minbase. */
  debian13: 'mq-drivers/debian:13',
  /** RabbitMQ 3.10 (Debian 12's `rabbitmq-server`) on `mq-drivers/debian:12`. */
  rabbitmq310: 'mq-drivers/rabbitmq:3.10',
  /** RabbitMQ 4.0 (Debian 13's `rabbitmq-server`) on `mq-drivers/debian:13`. */
  rabbitmq40: 'mq-drivers/rabbitmq:4.0',
});

/** Image of `rabbitMqForTests()` / `startRabbitMq()` when none is given: `MQ_TEST_RABBITMQ_IMAGE`. */
export const RABBITMQ_IMAGE_ENV = 'MQ_TEST_RABBITMQ_IMAGE';
/** The public image used when neither an image nor `MQ_TEST_RABBITMQ_IMAGE` is given. */
export const DEFAULT_RABBITMQ_IMAGE = 'rabbitmq:4.0';

/** True for the images of {@link LOCAL_IMAGES} (prefix `mq-drivers/`): built here, never pulled. */
export function isLocalImage(image: string): boolean {
  return image.startsWith('mq-drivers/');
}

export interface RabbitMqService {
  url: string;
  /** `env`, `container` or `default` (localhost). */
  source: 'env' | 'container' | 'default';
  /** Why no container was started, when source is `default`. */
  reason?: string;
  /** The container, when source is `container`. */
  container?: RabbitMqContainer;
  /** Stops the container (a no-op for env and default). */
  stop(): Promise<void>;
}

export interface ServiceOptions {
  /** Environment to read (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Container image; default `MQ_TEST_RABBITMQ_IMAGE`, else {@link DEFAULT_RABBITMQ_IMAGE}. */
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

/**
 * Settings testcontainers reads from the environment, set here only when unset:
 * - `TESTCONTAINERS_HOST_OVERRIDE=localhost` when this process runs inside a container
 *   (`/.dockerenv`) next to an engine of its own (a local `docker0` bridge, the Unix socket):
 *   published ports are on localhost, and testcontainers would otherwise look for the
 *   gateway, possibly by running an `alpine` container that cannot be pulled offline;
 * - `TESTCONTAINERS_RYUK_DISABLED=true` when a local image is used: its reaper image cannot be
 *   pulled where no registry is reachable (containers are stopped by `stop()` instead).
 */
function engineDefaults(image?: string): void {
  const env = process.env;
  const unixSocket = !env.DOCKER_HOST || env.DOCKER_HOST.startsWith('unix:');
  if (
    env.TESTCONTAINERS_HOST_OVERRIDE === undefined &&
    unixSocket &&
    existsSync('/.dockerenv') &&
    existsSync('/sys/class/net/docker0')
  ) {
    env.TESTCONTAINERS_HOST_OVERRIDE = 'localhost';
  }
  if (image !== undefined && isLocalImage(image) && env.TESTCONTAINERS_RYUK_DISABLED === undefined) {
    env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  }
}

interface ExecResult {
  output: string;
  stdout?: string;
  stderr?: string;
  exitCode: number;
}

interface StartedContainer {
  getHost(): string;
  getMappedPort(port: number): number;
  getId(): string;
  getName(): string;
  getHostname(): string;
  exec(command: string[]): Promise<ExecResult>;
  stop(options?: { timeout?: number; remove?: boolean }): Promise<unknown>;
}

interface Container {
  withNetwork(network: unknown): Container;
  withNetworkAliases(...aliases: string[]): Container;
  withHostname(hostname: string): Container;
  withEnvironment(env: Record<string, string>): Container;
  withStartupTimeout(ms: number): Container;
  withExposedPorts(...ports: number[]): Container;
  withWaitStrategy(strategy: unknown): Container;
  withPullPolicy(policy: unknown): Container;
  start(): Promise<StartedContainer>;
}

interface Testcontainers {
  getContainerRuntimeClient(): Promise<{
    image: { exists(name: unknown): Promise<boolean> };
  }>;
  ImageName: { fromString(name: string): unknown };
  GenericContainer: new (image: string) => Container;
  Network: new () => { start(): Promise<{ getName(): string; stop(): Promise<unknown> }> };
  Wait: { forLogMessage(message: string | RegExp, times?: number): unknown };
}

async function loadTestcontainers(image?: string): Promise<Testcontainers> {
  engineDefaults(image);
  const testcontainers = await optional<Testcontainers>('testcontainers');
  if (!testcontainers) throw new Error('testcontainers is not installed (pnpm add -D testcontainers)');
  return testcontainers;
}

/** Whether testcontainers is installed and finds a container engine. */
export async function dockerAvailable(): Promise<{ available: boolean; reason?: string }> {
  engineDefaults();
  const testcontainers = await optional<Testcontainers>('testcontainers');
  if (!testcontainers) return { available: false, reason: 'testcontainers is not installed' };
  try {
    await testcontainers.getContainerRuntimeClient();
    return { available: true };
  } catch (error) {
    return { available: false, reason: `no container engine reachable (${(error as Error).message})` };
  }
}

/**
 * Why a suite that needs containers (of `image`, when given) cannot run, or undefined when it
 * can. The rule of `serviceSkipReason`: with `CI=true` a missing engine or image THROWS, so the
 * suite fails; otherwise the reason is printed and returned for a visible skip.
 */
export async function containerSkipReason(label: string, image?: string): Promise<string | undefined> {
  let reason: string | undefined;
  const docker = await dockerAvailable();
  if (!docker.available) {
    reason = `${docker.reason} (start a Docker engine, or run scripts/services-up.sh as root)`;
  } else if (image !== undefined && isLocalImage(image)) {
    const testcontainers = await loadTestcontainers(image);
    const client = await testcontainers.getContainerRuntimeClient();
    if (!(await client.image.exists(testcontainers.ImageName.fromString(image)))) {
      reason = `image ${image} is not built here (scripts/services-up.sh builds it)`;
    }
  }
  if (reason === undefined) return undefined;
  if (process.env.CI === 'true') throw new Error(`[${label}] ${reason}; CI=true, so this is a failure`);
  console.warn(`[${label}] skipping: ${reason}`);
  return reason;
}

export interface RabbitMqContainerOptions {
  /** Image; default `MQ_TEST_RABBITMQ_IMAGE`, else {@link DEFAULT_RABBITMQ_IMAGE}. */
  image?: string;
  /** Extra `rabbitmq.conf` lines (local images only), e.g. `deprecated_features.permit.global_qos = false`. */
  config?: string;
  /** Environment of the container. */
  environment?: Record<string, string>;
  /** Default 120 s (a 2-core machine shared with other test runs can be slow). */
  startupTimeoutMs?: number;
  /** @internal used by startRabbitMqCluster */
  network?: unknown;
  /** @internal used by startRabbitMqCluster */
  hostname?: string;
  /** @internal used by startRabbitMqCluster */
  erlangCookie?: string;
}

export interface RabbitMqContainer {
  /** `amqp://guest:guest@<host>:<mapped port>` */
  url: string;
  host: string;
  /** The host port mapped to the container's 5672. */
  port: number;
  image: string;
  /** The node's host name inside its network (`rabbit@<hostname>` is the node name). */
  hostname: string;
  /** Runs `rabbitmqctl <args>` in the container; rejects on a non-zero exit with its output. */
  rabbitmqctl(...args: string[]): Promise<string>;
  /** Runs a command in the container; rejects on a non-zero exit. */
  exec(command: string[]): Promise<string>;
  /** Stops and removes the container (`timeoutMs` before SIGKILL; 0 kills at once). */
  stop(timeoutMs?: number): Promise<void>;
}

function imageOf(options: { image?: string }): string {
  return options.image ?? process.env[RABBITMQ_IMAGE_ENV] ?? DEFAULT_RABBITMQ_IMAGE;
}

/** Starts one RabbitMQ container (see the module comment). Throws when it cannot. */
export async function startRabbitMq(options: RabbitMqContainerOptions = {}): Promise<RabbitMqContainer> {
  const image = imageOf(options);
  const testcontainers = await loadTestcontainers(image);
  const local = isLocalImage(image);
  if (local) {
    const client = await testcontainers.getContainerRuntimeClient();
    if (!(await client.image.exists(testcontainers.ImageName.fromString(image)))) {
      throw new Error(`image ${image} is not built here: run scripts/services-up.sh (as root) first`);
    }
  }
  // The module's RabbitMQContainer when installed (same settings), else a GenericContainer.
  const module = await optional<{ RabbitMQContainer: new (image: string) => Container }>('@testcontainers/rabbitmq');
  let container = module
    ? new module.RabbitMQContainer(image)
    : new testcontainers.GenericContainer(image)
        .withExposedPorts(5672)
        .withEnvironment({ RABBITMQ_DEFAULT_USER: 'guest', RABBITMQ_DEFAULT_PASS: 'guest' });
  const environment: Record<string, string> = { ...options.environment };
  if (options.config) environment.MQ_RABBITMQ_CONFIG = options.config;
  if (options.erlangCookie) {
    // the local images' entry point writes the cookie file; the public ones read the variable
    if (local) environment.MQ_ERLANG_COOKIE = options.erlangCookie;
    else environment.RABBITMQ_ERLANG_COOKIE = options.erlangCookie;
  }
  container = container
    .withEnvironment(environment)
    .withWaitStrategy(testcontainers.Wait.forLogMessage('Server startup complete'))
    .withStartupTimeout(options.startupTimeoutMs ?? 120_000);
  if (options.network !== undefined) container = container.withNetwork(options.network);
  if (options.hostname !== undefined) {
    container = container.withHostname(options.hostname).withNetworkAliases(options.hostname);
  }
  const started = await container.start();
  const exec = async (command: string[]) => {
    const result = await started.exec(command);
    if (result.exitCode !== 0) {
      throw new Error(`${command.join(' ')} exited ${result.exitCode}: ${result.output.trim()}`);
    }
    return result.output;
  };
  const host = started.getHost();
  const port = started.getMappedPort(5672);
  return {
    url: `amqp://guest:guest@${host}:${port}`,
    host,
    port,
    image,
    hostname: options.hostname ?? started.getHostname(),
    exec,
    rabbitmqctl: (...args) => exec(['rabbitmqctl', ...args]),
    stop: async (timeoutMs = 10_000) => {
      await started.stop({ timeout: timeoutMs, remove: true });
    },
  };
}

export interface RabbitMqCluster {
  nodes: RabbitMqContainer[];
  /** One URL per node (`amqp://guest:guest@host:port`), in node order. */
  urls: string[];
  /** Every node's `host:port` in one multi-host URL: `amqp://guest:guest@h1:p1,h2:p2,h3:p3`. */
  url: string;
  /** Stops every node and removes the network. */
  stop(): Promise<void>;
}

/**
 * Starts `nodes` RabbitMQ containers (default 3) on a user-defined network of their own with one
 * Erlang cookie and joins nodes 2… to node 1 (`stop_app`, `join_cluster`, `start_app`).
 */
export async function startRabbitMqCluster(
  options: Omit<RabbitMqContainerOptions, 'network' | 'hostname' | 'erlangCookie'> & { nodes?: number } = {},
): Promise<RabbitMqCluster> {
  const image = imageOf(options);
  const testcontainers = await loadTestcontainers(image);
  const network = await new testcontainers.Network().start();
  const cookie = `mqcookie${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`.toUpperCase();
  const count = options.nodes ?? 3;
  const nodes: RabbitMqContainer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop(0).catch(() => {})));
    await network.stop().catch(() => {});
  };
  try {
    // One at a time: a 2-core machine starts three Erlang VMs at once badly.
    for (let i = 1; i <= count; i++) {
      nodes.push(await startRabbitMq({ ...options, image, network, hostname: `rabbit${i}`, erlangCookie: cookie }));
    }
    const first = nodes[0] as RabbitMqContainer;
    for (const node of nodes.slice(1)) {
      await node.rabbitmqctl('stop_app');
      await node.rabbitmqctl('join_cluster', `rabbit@${first.hostname}`);
      await node.rabbitmqctl('start_app');
    }
    await first.rabbitmqctl('await_online_nodes', String(count));
  } catch (error) {
    await stop();
    throw error;
  }
  const hosts = nodes.map((node) => `${node.host}:${node.port}`).join(',');
  return { nodes, urls: nodes.map((node) => node.url), url: `amqp://guest:guest@${hosts}`, stop };
}

/**
 * A RabbitMQ to test against: `MQ_TEST_RABBITMQ_URL`, else a container of `image` when an engine
 * answers, else amqp://guest:guest@127.0.0.1:5672 with `reason` saying why.
 */
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
  const container = await startRabbitMq({ image: options.image ?? env[RABBITMQ_IMAGE_ENV] ?? DEFAULT_RABBITMQ_IMAGE });
  return { url: container.url, source: 'container', container, stop: () => container.stop() };
}
