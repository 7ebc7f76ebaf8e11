import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The dispatcher's Prometheus metrics, all labelled by `consumer`. One registry per dispatcher. */
export class DispatcherMetrics {
  readonly registry = new Registry();
  readonly handled: Counter<'consumer'>;
  readonly failed: Counter<'consumer'>;
  readonly deadLettered: Counter<'consumer'>;
  readonly inFlight: Gauge<'consumer'>;
  readonly restarts: Counter<'consumer'>;
  readonly duration: Histogram<'consumer' | 'outcome'>;

  constructor(consumers: readonly string[], options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.handled = new Counter({
      name: 'mq_dispatch_messages_handled_total',
      help: 'Messages whose consume() returned (acknowledged).',
      labelNames: ['consumer'],
      registers,
    });
    this.failed = new Counter({
      name: 'mq_dispatch_messages_failed_total',
      help: 'consume() calls that threw (the message is redelivered or dead-lettered).',
      labelNames: ['consumer'],
      registers,
    });
    this.deadLettered = new Counter({
      name: 'mq_dispatch_messages_dead_lettered_total',
      help: 'Messages that failed on their last attempt (attempt >= maxAttempts) and went to the dead-letter store.',
      labelNames: ['consumer'],
      registers,
    });
    this.inFlight = new Gauge({
      name: 'mq_dispatch_messages_in_flight',
      help: 'consume() calls running now.',
      labelNames: ['consumer'],
      registers,
    });
    this.restarts = new Counter({
      name: 'mq_dispatch_worker_restarts_total',
      help: 'Worker instances replaced after consume() threw or a constructor failed.',
      labelNames: ['consumer'],
      registers,
    });
    this.duration = new Histogram({
      name: 'mq_dispatch_consume_duration_seconds',
      help: 'Time spent in consume(), by outcome (handled or failed).',
      labelNames: ['consumer', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    for (const consumer of consumers) {
      this.handled.inc({ consumer }, 0);
      this.failed.inc({ consumer }, 0);
      this.deadLettered.inc({ consumer }, 0);
      this.inFlight.set({ consumer }, 0);
      this.restarts.inc({ consumer }, 0);
    }
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'mq_dispatch_process_' });
  }

  /** Metrics bound to one consumer's label. */
  forConsumer(consumer: string): ConsumerMetrics {
    return {
      handled: this.handled.labels(consumer),
      failed: this.failed.labels(consumer),
      deadLettered: this.deadLettered.labels(consumer),
      inFlight: this.inFlight.labels(consumer),
      restarts: this.restarts.labels(consumer),
      handledSeconds: this.duration.labels(consumer, 'handled'),
      failedSeconds: this.duration.labels(consumer, 'failed'),
    };
  }
}

/** The metrics of one consumer, with the label bound once (the per-message path does no label hashing). */
export interface ConsumerMetrics {
  handled: { inc(value?: number): void };
  failed: { inc(value?: number): void };
  deadLettered: { inc(value?: number): void };
  inFlight: { inc(value?: number): void; dec(value?: number): void };
  restarts: { inc(value?: number): void };
  handledSeconds: { observe(value: number): void };
  failedSeconds: { observe(value: number): void };
}

export interface Health {
  status: 'starting' | 'running' | 'degraded' | 'stopping' | 'stopped';
  [detail: string]: unknown;
}

/** Serves `GET /healthz` (200 when running, 503 otherwise) and `GET /metrics` (Prometheus text). */
export async function startHttp(
  options: { port: number; host?: string },
  metrics: DispatcherMetrics,
  health: () => Health,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      const state = health();
      response
        .writeHead(state.status === 'running' ? 200 : 503, { 'content-type': 'application/json' })
        .end(`${JSON.stringify(state)}\n`);
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(String(error)),
      );
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
