import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { endpointOf } from './endpoint.js';

interface Link {
  client: Socket;
  upstream: Socket | undefined;
  frozen: boolean;
}

/**
 * A TCP proxy that can play a network black hole behind a middlebox that never closes anything:
 * `freeze()` silences every open connection (what either side sends is swallowed, nothing is
 * closed or reset) and accepts new connections without ever relaying them. `heal()` relays new
 * connections again, while the frozen ones stay frozen for good (the middlebox lost their state
 * and keeps dropping their packets). Unlike the shared TcpProxy's `hang()`, nothing is cut: a
 * client only notices through its own timeouts.
 */
export class FreezingProxy {
  private server: Server | undefined;
  private readonly links = new Set<Link>();
  private frozen = false;
  /** Connections accepted so far. */
  accepted = 0;
  /** Bytes sent by clients into frozen connections (requests lost in the black hole). */
  swallowedBytes = 0;

  private constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  /** A started proxy, relaying to the host and port of `url`. */
  static async inFrontOf(url: string): Promise<FreezingProxy> {
    const { hostname, port } = endpointOf(url);
    const proxy = new FreezingProxy(hostname, port);
    await proxy.listen();
    return proxy;
  }

  /** `http://127.0.0.1:<port>` of the proxy. */
  get url(): string {
    const address = this.server?.address();
    if (!address || typeof address !== 'object') throw new Error('the freezing proxy is not listening');
    return `http://127.0.0.1:${address.port}`;
  }

  /** Connections that are open and frozen (they never carry anything again). */
  get frozenConnections(): number {
    return [...this.links].filter((link) => link.frozen && !link.client.destroyed).length;
  }

  /** Every open connection goes silent, and new ones are accepted but never relayed. */
  freeze(): void {
    this.frozen = true;
    for (const link of this.links) this.silence(link);
  }

  /** New connections are relayed again; the frozen ones stay silent. */
  heal(): void {
    this.frozen = false;
  }

  async stop(): Promise<void> {
    for (const link of this.links) {
      link.client.destroy();
      link.upstream?.destroy();
    }
    this.links.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private silence(link: Link): void {
    if (link.frozen) return;
    link.frozen = true;
    link.client.unpipe();
    link.upstream?.unpipe();
    link.client.removeAllListeners('data');
    link.client.on('data', (chunk: Buffer) => {
      this.swallowedBytes += chunk.length;
    });
    link.client.resume();
    link.upstream?.removeAllListeners('data');
    link.upstream?.on('data', () => undefined);
    link.upstream?.resume();
  }

  private listen(): Promise<void> {
    const server = createServer((client) => {
      this.accepted++;
      const link: Link = { client, upstream: undefined, frozen: false };
      this.links.add(link);
      client.on('error', () => undefined);
      client.on('close', () => {
        this.links.delete(link);
        link.upstream?.destroy();
      });
      if (this.frozen) {
        this.silence(link);
        return;
      }
      const upstream = netConnect({ host: this.host, port: this.port });
      link.upstream = upstream;
      upstream.on('error', () => undefined);
      // The server closing its side reaches the client, unless the link is frozen: then nothing does.
      upstream.on('close', () => {
        if (!link.frozen) client.destroy();
      });
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
  }
}
