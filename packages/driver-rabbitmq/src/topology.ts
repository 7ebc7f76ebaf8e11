import { createHash } from 'node:crypto';
import type { Options } from 'amqplib';
import type { Declarer, Link } from './link.js';

/**
 * Names and arguments of every exchange and queue the driver declares. TOPOLOGY.md documents
 * the same for clients in other languages; keep the two in step.
 *
 * Segments and subscription names never contain `.`, and the third word (`tasks`, `task`,
 * `task-dead`, ...) says what a resource is, so no two resources can share a name even though
 * kinds are dotted (`mq.s1.task.a.b` is kind `a.b`; its dead letters are `mq.s1.task-dead.a.b`).
 */
export interface Names {
  prefix: string;
}

const MAX_NAME = 255;

/** AMQP short strings are at most 255 bytes: shorten long names, keeping them unique with a hash. */
function fit(name: string): string {
  if (Buffer.byteLength(name) <= MAX_NAME) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 16);
  return `${name.slice(0, MAX_NAME - 18)}~${hash}`;
}

export const taskExchange = (prefix: string, segment: string) => `${prefix}.${segment}.tasks`;
export const shareExchange = (prefix: string, segment: string) => `${prefix}.${segment}.shares`;
export const kindQueue = (prefix: string, segment: string, kind: string) => fit(`${prefix}.${segment}.task.${kind}`);
export const kindDeadQueue = (prefix: string, segment: string, kind: string) => fit(`${prefix}.${segment}.task-dead.${kind}`);
export const shareQueue = (prefix: string, segment: string, name: string) => `${prefix}.${segment}.share.${name}`;
export const shareDeadQueue = (prefix: string, segment: string, name: string) => `${prefix}.${segment}.share-dead.${name}`;
/**
 * Retries wait in a delay queue per delay bucket, reached through a fanout exchange of the same
 * name (a fanout exchange ignores the routing key, which carries the name of the queue the
 * retry returns to). `_` cannot start a segment, so these never clash with segment resources.
 */
export const delayExchange = (prefix: string, ms: number) => `${prefix}._delay.${ms}`;
export const delayQueue = (prefix: string, ms: number) => `${prefix}._delay.${ms}`;

/** Reserved headers of the wire format (see TOPOLOGY.md). */
export const H = {
  attempt: 'x-mq-attempt',
  publishedAt: 'x-mq-published-at',
  topic: 'x-mq-topic',
  error: 'x-mq-error',
  failedAt: 'x-mq-failed-at',
} as const;

export interface QueueSpec {
  name: string;
  options: Options.AssertQueue;
}

export interface TopologyConfig {
  prefix: string;
  queueType: 'classic' | 'quorum';
  deliveryLimit: number;
  ephemeralDeadLetterExpiresMs: number;
  ephemeralQueueExpiresMs: number;
}

function typeArgs(config: TopologyConfig): Record<string, unknown> {
  return config.queueType === 'quorum' ? { 'x-queue-type': 'quorum', 'x-delivery-limit': config.deliveryLimit } : {};
}

/**
 * A durable work queue (a task kind, or a named share subscription). Messages that a consumer
 * rejects without requeue (e.g. a non-JS worker giving up) land in its dead-letter queue.
 */
export function durableQueue(config: TopologyConfig, name: string, deadQueue: string): QueueSpec {
  return {
    name,
    options: {
      durable: true,
      arguments: { ...typeArgs(config), 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': deadQueue },
    },
  };
}

export function durableDeadQueue(config: TopologyConfig, name: string): QueueSpec {
  return { name, options: { durable: true, arguments: typeArgs(config) } };
}

/**
 * An ephemeral subscription's queue. Deleted by the driver when the subscription closes. It is
 * not exclusive, so it outlives a lost connection (what is published while the driver
 * reconnects is kept for it); if the process dies, the broker removes it after
 * `ephemeralQueueExpiresMs` without a consumer (`x-expires`).
 */
export function ephemeralQueue(config: TopologyConfig, name: string, deadQueue: string): QueueSpec {
  return {
    name,
    options: {
      durable: true,
      arguments: {
        'x-expires': config.ephemeralQueueExpiresMs,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': deadQueue,
      },
    },
  };
}

/**
 * An ephemeral subscription's dead letters: declared on the first dead letter, removed by the
 * broker once unused (`x-expires`). Durable, like the ephemeral queue: RabbitMQ 4.x deprecates
 * transient non-exclusive queues (`transient_nonexcl_queues`) and refuses them once denied.
 */
export function ephemeralDeadQueue(config: TopologyConfig, name: string): QueueSpec {
  return { name, options: { durable: true, arguments: { 'x-expires': config.ephemeralDeadLetterExpiresMs } } };
}

/**
 * A delay queue holds retries for `ms` milliseconds (queue TTL, so expiry is strictly FIFO) and
 * then dead-letters them to the default exchange with their routing key, which is the name of
 * the queue they go back to.
 */
export function delayQueueSpec(prefix: string, ms: number): QueueSpec {
  return {
    name: delayQueue(prefix, ms),
    options: { durable: true, arguments: { 'x-message-ttl': ms, 'x-dead-letter-exchange': '' } },
  };
}

/**
 * Retry delays are rounded to quarter-octave buckets (…, 16, 19, 23, 27, 32, 38, …) so a handful
 * of shared delay queues serve every backoff; the rounding error is below 10%.
 */
export function delayBucket(ms: number): number {
  if (ms <= 1) return Math.max(0, Math.round(ms));
  const step = Math.round(Math.log2(ms) * 4);
  return Math.max(1, Math.round(2 ** (step / 4)));
}

/**
 * Declares the topology. Exchanges, delay queues and dead-letter queues are declared once per
 * connection: this is the one "already declared" cache, of the publisher and of every
 * subscription. It is emptied when a connection opens and when the publishing channel fails (an
 * exchange may have been deleted under us); a failed declaration is forgotten, so the next use
 * tries again. A subscription's own queue and bindings are declared on every (re)start of its
 * channel instead (the broker may have restarted, or the queue been deleted).
 */
export class Topology {
  private declared = new Map<string, Promise<void> | true>();

  constructor(
    private readonly link: Link,
    readonly config: TopologyConfig,
  ) {}

  /** True when the exchange is declared on this connection (the publisher asks this for each message). */
  hasExchange(name: string): boolean {
    return this.declared.get(`exchange:${name}`) === true;
  }

  exchange(name: string, type: 'fanout' | 'topic', timeoutMs?: number): Promise<void> {
    return this.once(`exchange:${name}`, (d) => d.exchange(name, type), timeoutMs);
  }

  /** The delay exchange and queue of a retry bucket. */
  delay(bucket: number): Promise<void> {
    const { prefix } = this.config;
    const exchange = delayExchange(prefix, bucket);
    return this.once(`delay:${bucket}`, async (d) => {
      const spec = delayQueueSpec(prefix, bucket);
      await d.exchange(exchange, 'fanout');
      await d.queue(spec);
      await d.bind(spec.name, exchange, '');
    });
  }

  /** The dead-letter queue of a kind or subscription, declared before the first dead letter goes to it. */
  deadQueue(name: string, ephemeral: boolean): Promise<void> {
    const spec = ephemeral ? ephemeralDeadQueue(this.config, name) : durableDeadQueue(this.config, name);
    return this.once(`dead:${name}`, (d) => d.queue(spec));
  }

  /** The dead-letter queue was deleted (unregister): declare it again before the next dead letter. */
  forgetDeadQueue(name: string): void {
    this.declared.delete(`dead:${name}`);
  }

  reset(): void {
    this.declared = new Map();
  }

  /** A task kind: the segment's task exchange, the kind's queue and its dead-letter queue. */
  async declareKind(d: Declarer, segment: string, queue: string, deadQueue: string): Promise<void> {
    const exchange = taskExchange(this.config.prefix, segment);
    await d.exchange(exchange, 'fanout');
    await d.queue(durableDeadQueue(this.config, deadQueue));
    await d.queue(durableQueue(this.config, queue, deadQueue));
    await d.bind(queue, exchange, '');
  }

  /** A share subscription: the segment's share exchange, its queue bound to every pattern. */
  async declareShare(d: Declarer, segment: string, queue: string, deadQueue: string, patterns: string[], ephemeral: boolean) {
    const exchange = shareExchange(this.config.prefix, segment);
    await d.exchange(exchange, 'topic');
    if (ephemeral) {
      await d.queue(ephemeralQueue(this.config, queue, deadQueue));
    } else {
      await d.queue(durableDeadQueue(this.config, deadQueue));
      await d.queue(durableQueue(this.config, queue, deadQueue));
    }
    for (const pattern of patterns) await d.bind(queue, exchange, pattern);
  }

  private once(key: string, work: (declarer: Declarer) => Promise<void>, timeoutMs?: number): Promise<void> {
    const known = this.declared.get(key);
    if (known === true) return Promise.resolve();
    if (known) return known;
    const map = this.declared;
    const promise = this.link.declare(work, timeoutMs);
    map.set(key, promise);
    promise.then(
      () => {
        if (map.get(key) === promise) map.set(key, true);
      },
      () => {
        if (map.get(key) === promise) map.delete(key);
      },
    );
    return promise;
  }
}
