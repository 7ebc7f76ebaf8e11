import { execFile } from 'node:child_process';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { createRabbitMqDriver, type RabbitMqDriverOptions } from '@mq-drivers/rabbitmq';
import { createS3Driver, type S3DriverOptions } from '@mq-drivers/s3';

export const RABBITMQ_URL = process.env.MQ_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const S3 = {
  endpoint: process.env.MQ_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:7480',
  region: process.env.MQ_TEST_S3_REGION ?? 'us-east-1',
  accessKeyId: process.env.MQ_TEST_S3_ACCESS_KEY_ID ?? 'mqtestaccesskey',
  secretAccessKey: process.env.MQ_TEST_S3_SECRET_ACCESS_KEY ?? 'mqtestsecretkey0123456789',
  bucket: process.env.MQ_TEST_S3_BUCKET ?? 'mq-test',
};

function tcpReachable(host: string, port: number, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Why the real-service suites cannot run (undefined when they can). With `CI=true` an
 * unreachable service is a failure, never a skip.
 */
export async function servicesSkipReason(): Promise<string | undefined> {
  const rabbit = new URL(RABBITMQ_URL);
  const s3 = new URL(S3.endpoint);
  const problems: string[] = [];
  if (!(await tcpReachable(rabbit.hostname, Number(rabbit.port || 5672))))
    problems.push(`RabbitMQ not reachable at ${rabbit.host}`);
  if (!(await tcpReachable(s3.hostname, Number(s3.port || (s3.protocol === 'https:' ? 443 : 80))))) {
    problems.push(`S3 not reachable at ${S3.endpoint}`);
  }
  if (problems.length === 0) return undefined;
  const reason = `${problems.join('; ')} (set MQ_TEST_RABBITMQ_URL / MQ_TEST_S3_ENDPOINT or run scripts/services-up.sh)`;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI=true, so this is a failure`);
  console.warn(`[tee tests] skipping: ${reason}`);
  return reason;
}

export function rabbit(extra: Partial<RabbitMqDriverOptions> = {}) {
  return createRabbitMqDriver({
    url: RABBITMQ_URL,
    redeliveryBackoff: { baseMs: 20, maxMs: 200 },
    reconnectBackoff: { baseMs: 50, maxMs: 1_000 },
    publishTimeoutMs: 10_000,
    connectionName: 'mq-drivers tee tests',
    onError: () => {},
    ...extra,
  });
}

export function s3(extra: Partial<S3DriverOptions> = {}) {
  return createS3Driver({
    bucket: S3.bucket,
    prefix: 'tee-tests',
    endpoint: S3.endpoint,
    region: S3.region,
    credentials: { accessKeyId: S3.accessKeyId, secretAccessKey: S3.secretAccessKey },
    createBucket: true,
    minPollIntervalMs: 20,
    maxPollIntervalMs: 200,
    leaseMs: 2_000,
    redeliveryBackoff: { baseMs: 20, maxMs: 200 },
    cursorSaveIntervalMs: 100,
    ...extra,
  });
}

const exec = promisify(execFile);

/** Runs `rabbitmqctl`; undefined when it is not available here. */
export async function rabbitmqctl(...args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await exec('rabbitmqctl', args, { timeout: 120_000 });
    return stdout;
  } catch {
    return undefined;
  }
}

/**
 * A tiny TCP proxy in front of a real endpoint, to make it unreachable on purpose:
 * `refuse()` closes the port (connection refused), `hang()` accepts connections and never
 * answers, `forward()` relays again. Existing connections are cut on every switch.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private mode: 'forward' | 'hang' = 'forward';
  port = 0;

  constructor(
    private readonly host: string,
    private readonly targetPort: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await this.listen();
    return this;
  }

  /** Relays to the real endpoint. */
  async forward(): Promise<void> {
    this.cut();
    this.mode = 'forward';
    if (!this.server) await this.listen();
  }

  /** Accepts connections and never answers (a black hole). */
  async hang(): Promise<void> {
    this.cut();
    this.mode = 'hang';
    if (!this.server) await this.listen();
  }

  /** Closes the port: connections are refused. */
  async refuse(): Promise<void> {
    this.cut();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async stop(): Promise<void> {
    await this.refuse();
  }

  private cut(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private listen(): Promise<void> {
    const server = createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => {});
      if (this.mode === 'hang') return;
      const upstream = netConnect({ host: this.host, port: this.targetPort });
      this.sockets.add(upstream);
      upstream.on('close', () => {
        this.sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        const address = server.address();
        if (address && typeof address === 'object') this.port = address.port;
        resolve();
      });
    });
  }
}

/** A proxy in front of the S3 endpoint. */
export function s3Proxy(): Promise<TcpProxy> {
  const url = new URL(S3.endpoint);
  return new TcpProxy(url.hostname, Number(url.port || 80)).start();
}

/** A port on which nothing listens (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 1;
}
