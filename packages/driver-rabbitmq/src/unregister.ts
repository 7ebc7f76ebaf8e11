import { type MqError, TopologyError } from '@mq-drivers/core';
import { replyCode, serverText, topologyError } from './errors.js';
import type { Declarer, Link } from './link.js';
import { DRIVER_NAME } from './options.js';
import type { QueueSpec } from './topology.js';

/** The queues of one kind or named subscription, as this driver declares them. */
export interface UnregisterQueues {
  queue: QueueSpec;
  deadQueue: QueueSpec;
  quorum: boolean;
}

/** The refusal while someone consumes one of the queues: the caller must close it first. */
export function inUseError(queue: string, where: string, cause?: unknown, removed = 'nothing was removed'): MqError {
  return new TopologyError({
    driver: DRIVER_NAME,
    resource: queue,
    message: `cannot unregister: queue "${queue}" has a consumer ${where}; close it first (${removed})`,
    cause,
  });
}

/**
 * Deletes a kind's or named subscription's queue, then its dead-letter queue, each on a channel
 * of its own (a refused delete closes its channel); resolves to how many messages waited in the
 * queue.
 *
 * Both are first declared with the driver's own arguments: that proves each is the type we
 * think (a 406 otherwise), which matters because `if-unused` on a quorum queue is a connection
 * error (540 NOT_IMPLEMENTED) that would break every subscription. A queue that did not exist is
 * created by this and deleted right after, empty. The reply also counts consumers, so a consumer
 * of the dead letters (e.g. a service in another language) refuses too, before anything goes.
 */
export async function deleteQueues(link: Link, queues: UnregisterQueues): Promise<number> {
  // Classic queues: `if-unused` makes the check and the delete one step, so a consumer that
  // attached since the check still refuses it. Quorum queues cannot do that: the check is all
  // there is.
  const ifUnused = !queues.quorum;
  const dropped = await link.declare(async (d) => {
    if ((await consumerCount(d, queues.deadQueue)) > 0) throw inUseError(queues.deadQueue.name, 'outside this driver');
    const consumers = await consumerCount(d, queues.queue);
    if (!ifUnused && consumers > 0) throw inUseError(queues.queue.name, 'outside this driver');
    return remove(d, queues.queue.name, ifUnused, 'nothing was removed');
  });
  await link.declare((d) =>
    remove(d, queues.deadQueue.name, ifUnused, `its queue "${queues.queue.name}" was removed, its dead letters were not`),
  );
  return dropped;
}

async function consumerCount(d: Declarer, spec: QueueSpec): Promise<number> {
  try {
    return (await d.channel.assertQueue(spec.name, spec.options)).consumerCount;
  } catch (error) {
    throw topologyError(error, 'queue', spec.name);
  }
}

async function remove(d: Declarer, queue: string, ifUnused: boolean, removed: string): Promise<number> {
  try {
    return (await d.channel.deleteQueue(queue, { ifUnused })).messageCount;
  } catch (error) {
    const code = replyCode(error);
    // Deleting a missing queue is fine in RabbitMQ 3.10; other versions may say 404.
    if (code === 404) return 0;
    if (code === 406) throw inUseError(queue, `outside this driver (${serverText(error)})`, error, removed);
    throw topologyError(error, 'queue', queue);
  }
}
