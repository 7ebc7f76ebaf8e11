import { createServer, connect as netConnect, type Socket } from 'node:net';
import { closedPort, serviceSkipReason, TcpProxy } from '@mq-drivers/conformance/services';
import { afterEach, describe, expect, it, vi } from 'vitest';

// The real-service helpers against local sockets only: a closed port, a listener, an echo server.
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  vi.restoreAllMocks();
});

/** A listening server on 127.0.0.1, closed after the test. */
async function listening(onConnection: (socket: Socket) => void = () => {}): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanup.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

/** Sets `CI` for one test (unset when undefined). */
function withCi(value: string | undefined): void {
  const before = process.env.CI;
  if (value === undefined) delete process.env.CI;
  else process.env.CI = value;
  cleanup.push(() => {
    if (before === undefined) delete process.env.CI;
    else process.env.CI = before;
  });
}

/** Connects through a port, sends `text`, resolves with the first answer or the error code. */
function exchange(port: number, text: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('connect', () => socket.write(text));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString());
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

describe('serviceSkipReason', () => {
  it('with CI=true, an unreachable service throws naming its host: a failure, never a skip', async () => {
    withCi('true');
    const port = await closedPort();
    await expect(serviceSkipReason('unit', [{ name: 'RabbitMQ', url: `amqp://guest:guest@127.0.0.1:${port}` }])).rejects.toThrow(
      `RabbitMQ not reachable at 127.0.0.1:${port} (set MQ_TEST_RABBITMQ_URL / MQ_TEST_S3_ENDPOINT or run scripts/services-up.sh); CI=true, so this is a failure`,
    );
  });

  it('without CI, it returns the reason (every unreachable service) and prints it', async () => {
    withCi(undefined);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const down = await closedPort();
    const up = await listening();
    const reason = await serviceSkipReason('unit', [
      { name: 'RabbitMQ', url: `amqp://127.0.0.1:${up}` },
      { name: 'S3', url: `http://127.0.0.1:${down}` },
    ]);
    expect(reason).toBe(
      `S3 not reachable at 127.0.0.1:${down} (set MQ_TEST_RABBITMQ_URL / MQ_TEST_S3_ENDPOINT or run scripts/services-up.sh)`,
    );
    expect(warn).toHaveBeenCalledWith(`[unit] skipping: ${reason}`);
  });

  it('is undefined when every service is reachable, also with CI=true', async () => {
    withCi('true');
    const port = await listening();
    await expect(
      serviceSkipReason('unit', [
        { name: 'RabbitMQ', url: `amqp://guest:guest@127.0.0.1:${port}` },
        { name: 'S3', url: `http://127.0.0.1:${port}` },
      ]),
    ).resolves.toBeUndefined();
  });
});

describe('TcpProxy', () => {
  it('forwards, refuses (cutting open connections), then forwards again on the same port', async () => {
    const echo = await listening((socket) => socket.on('data', (data) => socket.write(`echo:${data}`)));
    const proxy = await TcpProxy.inFrontOf(`http://127.0.0.1:${echo}`);
    cleanup.push(() => proxy.stop());
    const port = proxy.port;
    expect(proxy.url).toBe(`http://127.0.0.1:${port}`);
    expect(await exchange(port, 'one')).toBe('echo:one');

    const open = netConnect({ host: '127.0.0.1', port });
    const openClosed = new Promise<void>((resolve) => open.once('close', () => resolve()));
    open.on('error', () => {});
    await new Promise<void>((resolve) => open.once('connect', () => resolve()));
    await proxy.refuse();
    await openClosed; // the open connection was cut
    expect(await exchange(port, 'two')).toBe('ECONNREFUSED');

    await proxy.forward();
    expect(proxy.port).toBe(port);
    expect(await exchange(port, 'three')).toBe('echo:three');
  });

  it('hang accepts connections and never answers', async () => {
    const echo = await listening((socket) => socket.on('data', (data) => socket.write(`echo:${data}`)));
    const proxy = await new TcpProxy('127.0.0.1', echo).start();
    cleanup.push(() => proxy.stop());
    await proxy.hang();
    expect(await exchange(proxy.port, 'four', 300)).toBe('timeout');
    await proxy.forward();
    expect(await exchange(proxy.port, 'five')).toBe('echo:five');
  });
});
