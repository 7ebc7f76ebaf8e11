import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { endpointOf } from './endpoint.js';

/**
 * A tiny TCP proxy in front of a real endpoint, to make it unreachable on purpose (a broken
 * connection is the thing a reconnect test needs, and a real broker cannot be asked to misbehave):
 * `refuse()` closes the port (connection refused), `hang()` accepts connections and never
 * answers, `forward()` relays again. Existing connections are cut on every switch. The proxy
 * keeps its port across switches, so clients pointed at `url` reach it again after `forward()`.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private mode: 'forward' | 'hang' = 'forward';
  /** The local port (chosen by the system on the first `start()`). */
  port = 0;

  constructor(
    private readonly host: string,
    private readonly targetPort: number,
  ) {}

  /** A started proxy in front of the host and port of `url` (default ports by scheme). */
  static async inFrontOf(url: string): Promise<TcpProxy> {
    const { hostname, port } = endpointOf(url);
    return new TcpProxy(hostname, port).start();
  }

  /** `http://127.0.0.1:<port>`: the proxy as an HTTP endpoint (S3). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Listens (forwarding) on 127.0.0.1. */
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

  /** Cuts every connection and closes the port. */
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

/** A port on 127.0.0.1 on which nothing listens (bound, then released): connections are refused. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 1;
}
