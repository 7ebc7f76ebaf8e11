import { randomBytes } from 'node:crypto';
import {
  containerSkipReason,
  LOCAL_IMAGES,
  RABBITMQ_IMAGE_ENV,
  type RabbitMqCluster,
  type RabbitMqContainer,
  startRabbitMqCluster,
} from '@mq-drivers/conformance/containers';
import type { Driver, Message } from '@mq-drivers/core';
import { createRabbitMqDriver, type RabbitMqDriverOptions } from '@mq-drivers/rabbitmq';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * Failover on a three-node RabbitMQ 4.0 cluster (containers on a network of their own, one Erlang
 * cookie, `join_cluster`), quorum queues (`queueType: 'quorum'`). A producer publishes
 * MQ_CLUSTER_TASKS (default 20,000) confirmed tasks, and a share every 10th, while two kinds × two
 * workers and two subscribers of one named subscription consume, each driver given every node.
 * A quarter of the way in, the node the producer is connected to is stopped (`docker stop`:
 * SIGTERM, a clean shutdown), in the second case killed (SIGKILL). Counted: confirmed ids never
 * delivered (must be 0), duplicates (allowed: at-least-once), and the time until publishing and
 * delivery resume on the other nodes; the figures are printed.
 *
 * Each driver gets every node in one multi-host URL (`amqp://guest:guest@h:p1,h:p2,h:p3`),
 * the hosts rotated so that the workers start on other nodes than the producer;
 * MQ_CLUSTER_URL_ARRAY=1 gives them as `url: [...]` (one URL per node) instead.
 *
 * Isolated (runs alone after the main run): three brokers and ~20,000 messages load the machine.
 * Needs a container engine and the image: a visible skip without them, a failure under CI=true.
 */
const IMAGE = process.env[RABBITMQ_IMAGE_ENV] ?? LOCAL_IMAGES.rabbitmq40;
const TASKS = Number(process.env.MQ_CLUSTER_TASKS ?? 20_000);
const LANES = 32;
// CI (.ci/run) runs the suites once per Node.js line (MQ_NODE_LINES, newest first); this test
// measures the broker cluster, not Node, so it runs on the first line only.
const firstLine = process.env.MQ_NODE_LINES?.split(' ')[0];
const otherLine =
  firstLine !== undefined && process.versions.node.split('.')[0] !== firstLine
    ? `runs on Node ${firstLine} only (MQ_NODE_LINES)`
    : undefined;
if (otherLine) console.warn(`[driver-rabbitmq cluster failover] skipping: ${otherLine}`);
const skipReason = otherLine ?? (await containerSkipReason('driver-rabbitmq cluster failover', IMAGE));

interface Stream {
  confirmed: Map<string, number>; // id -> confirm time
  delivered: Map<string, number[]>; // consumer group -> … (per id: delivery times)
}

function stream(): Stream {
  return { confirmed: new Map(), delivered: new Map() };
}

/**
 * The longest pause between consecutive events (confirms, or deliveries) that ends after `from`
 * (the stop), and how long after `from` it ended: when publishing or delivery had resumed.
 */
function outage(times: number[], from: number): { gapMs: number; resumedAfterMs: number } {
  const sorted = times.filter((t) => t >= from - 1_000).sort((a, b) => a - b);
  let gapMs = 0;
  let end = from;
  for (let i = 1; i < sorted.length; i++) {
    const gap = (sorted[i] as number) - (sorted[i - 1] as number);
    if (gap > gapMs && (sorted[i] as number) >= from) {
      gapMs = gap;
      end = sorted[i] as number;
    }
  }
  return { gapMs, resumedAfterMs: Math.max(0, end - from) };
}

/** The node (container) a connection named `name` is on, from the connection's Erlang pid. */
async function nodeOf(cluster: RabbitMqCluster, name: string): Promise<RabbitMqContainer> {
  const survivor = cluster.nodes[cluster.nodes.length - 1] as RabbitMqContainer;
  const out = await survivor.rabbitmqctl('-q', 'list_connections', 'pid', 'client_properties');
  const line = out.split('\n').find((l) => l.includes(name));
  const host = /<rabbit@([^.>]+)\./.exec(line ?? '')?.[1];
  const node = cluster.nodes.find((n) => n.hostname === host);
  if (!node) throw new Error(`no connection named ${name} found: ${out.slice(0, 500)}`);
  return node;
}

async function failover(mode: 'stop' | 'kill'): Promise<void> {
  const cluster = await startRabbitMqCluster({ image: IMAGE, nodes: 3 });
  clusters.push(cluster);
  const n = cluster.urls.length;
  const rotate = (k: number) => cluster.urls.slice(k).concat(cluster.urls.slice(0, k));
  const hosts = (urls: string[]) => urls.map((url) => new URL(url).host).join(',');
  const multiHost = (k: number) => `amqp://guest:guest@${hosts(rotate(k))}`;
  const make = (k: number, name: string, extra: Partial<RabbitMqDriverOptions> = {}) => {
    const driver = createRabbitMqDriver({
      url: process.env.MQ_CLUSTER_URL_ARRAY === '1' ? rotate(k % n) : multiHost(k % n),
      queueType: 'quorum',
      connectionName: name,
      reconnectBackoff: { baseMs: 100, maxMs: 1_000 },
      redeliveryBackoff: { baseMs: 20, maxMs: 200 },
      publishTimeoutMs: 30_000,
      connectTimeoutMs: 5_000,
      onError: () => {},
      ...extra,
    });
    drivers.push(driver);
    return driver;
  };
  const segment = `failover-${mode}-${randomBytes(3).toString('hex')}`;
  const tag = randomBytes(3).toString('hex');
  const producerName = `failover producer ${tag}`;
  const producer = make(0, producerName);
  const tasks = stream();
  const shares = stream();
  const record = (target: Stream, group: string) => (message: Message) => {
    const key = `${group} ${message.id}`;
    const list = target.delivered.get(key);
    if (list) list.push(Date.now());
    else target.delivered.set(key, [Date.now()]);
  };
  // two kinds × two workers, on drivers whose first node is not the producer's
  for (const [w, kind] of [
    [1, 'jobs.a'],
    [2, 'jobs.a'],
    [1, 'jobs.b'],
    [2, 'jobs.b'],
  ] as const) {
    await make(w, `failover worker ${kind} ${w} ${tag}`).taskConsume(record(tasks, kind), {
      segment,
      topic: kind,
      prefetch: 50,
    });
  }
  for (const w of [1, 2]) {
    await make(w, `failover subscriber ${w} ${tag}`).shareConsume(record(shares, 'audit'), {
      segment,
      topics: ['events.#'],
      name: 'audit',
      prefetch: 50,
    });
  }
  let target: RabbitMqContainer | undefined;

  const refused: string[] = [];
  let stopAt = 0;
  let stopDoneAt = 0;
  let stopping: Promise<void> | undefined;
  let sequence = 0;
  const started = Date.now();
  const lane = async () => {
    while (tasks.confirmed.size < TASKS) {
      const i = sequence++;
      const share = i % 10 === 9;
      try {
        const receipt = share
          ? await producer.sharePublish({ i }, { segment, topic: 'events.created' })
          : await producer.taskPublish({ i }, { segment });
        (share ? shares : tasks).confirmed.set(receipt.id, Date.now());
      } catch (error) {
        refused.push((error as Error).message);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (!stopping && tasks.confirmed.size >= TASKS / 4) {
        // the node the producer's connection is on now
        stopping = nodeOf(cluster, producerName).then(async (node) => {
          target = node;
          stopAt = Date.now();
          await node.stop(mode === 'stop' ? 60_000 : 0);
          stopDoneAt = Date.now();
        });
      }
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  const publishedAt = Date.now();
  await stopping;

  const groups: [Stream, string][] = [
    [tasks, 'jobs.a'],
    [tasks, 'jobs.b'],
    [shares, 'audit'],
  ];
  const missing = () =>
    groups.flatMap(([s, group]) => [...s.confirmed.keys()].filter((id) => !s.delivered.has(`${group} ${id}`)));
  const deadline = Date.now() + 180_000;
  while (missing().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  const drainedAt = Date.now();

  const lost = missing();
  const duplicates = groups.map(
    ([s, group]) => [...s.delivered.entries()].filter(([key, times]) => key.startsWith(`${group} `) && times.length > 1).length,
  );
  const publish = outage([...tasks.confirmed.values(), ...shares.confirmed.values()], stopAt);
  const delivery = groups.map(([s, group]) =>
    outage(
      [...s.delivered.entries()].filter(([key]) => key.startsWith(`${group} `)).flatMap(([, times]) => times),
      stopAt,
    ),
  );
  const figures = {
    mode,
    image: IMAGE,
    stoppedNode: `rabbit@${target?.hostname}`,
    tasksConfirmed: tasks.confirmed.size,
    sharesConfirmed: shares.confirmed.size,
    publishesRefused: refused.length,
    refusedExample: refused[0],
    lostConfirmed: lost.length,
    duplicates: { 'jobs.a': duplicates[0], 'jobs.b': duplicates[1], audit: duplicates[2] },
    stopTookMs: stopDoneAt - stopAt,
    longestPublishPauseMs: publish.gapMs,
    publishPauseEndedAfterStopMs: publish.resumedAfterMs,
    longestDeliveryPauseMs: { 'jobs.a': delivery[0]?.gapMs, 'jobs.b': delivery[1]?.gapMs, audit: delivery[2]?.gapMs },
    deliveryPauseEndedAfterStopMs: {
      'jobs.a': delivery[0]?.resumedAfterMs,
      'jobs.b': delivery[1]?.resumedAfterMs,
      audit: delivery[2]?.resumedAfterMs,
    },
    publishSeconds: (publishedAt - started) / 1000,
    drainSeconds: (drainedAt - publishedAt) / 1000,
  };
  console.info(`[cluster failover: ${mode}] ${JSON.stringify(figures, null, 2)}`);
  expect(lost, `confirmed but never delivered (first 20): ${lost.slice(0, 20).join(', ')}`).toEqual([]);
}

const drivers: Driver[] = [];
const clusters: RabbitMqCluster[] = [];
afterEach(async () => {
  await Promise.all(drivers.splice(0).map((driver) => driver.close().catch(() => {})));
  await Promise.all(clusters.splice(0).map((cluster) => cluster.stop()));
});

describe.sequential(`rabbitmq cluster failover (3 × ${IMAGE})${skipReason ? ` [skipped: ${skipReason}]` : ''}`, () => {
  it.skipIf(skipReason !== undefined)(
    "no confirmed task or share is lost when the producer's node is stopped (docker stop)",
    () => failover('stop'),
    900_000,
  );
  it.skipIf(skipReason !== undefined)(
    "no confirmed task or share is lost when the producer's node is killed (SIGKILL)",
    () => failover('kill'),
    900_000,
  );
});
