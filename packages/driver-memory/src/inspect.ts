import { type DeadLetter, type DeadLetterTarget, type Message, prepareDeadLetterTarget } from '@mq-drivers/core';
import { brokers } from './broker.js';
import { DRIVER_NAME } from './driver.js';
import { type Envelope, type Queue, toDeadLetter } from './queue.js';

/** A read/take view of one queue, oldest first. `take*` removes what it returns. */
export interface QueueInspector<Item> {
  /** Whether the queue exists (a kind registered, a subscription open or durable, a store with entries). */
  exists(): boolean;
  count(): number;
  peekOldest(): Item | undefined;
  peekNewest(): Item | undefined;
  takeOldest(): Item | undefined;
  takeNewest(): Item | undefined;
  list(): Item[];
}

export interface MemoryBrokerInspector {
  segments(): string[];
  /** Registered task kinds of a segment. */
  kinds(segment: string): string[];
  /** Share subscriptions of a segment (open ephemeral ones and durable named ones). */
  subscriptions(segment: string): string[];
  /** Messages waiting (ready, not in flight) for a task kind. */
  taskQueue(segment: string, kind: string): QueueInspector<Message>;
  /** Messages waiting for a share subscription. */
  shareQueue(segment: string, subscription: string): QueueInspector<Message>;
  /** The dead-letter store of a kind or subscription. */
  deadLetters(target: DeadLetterTarget): QueueInspector<DeadLetter>;
}

function envelopeToMessage(envelope: Envelope): Message {
  return toDeadLetter({ envelope, error: '', failedAt: new Date(0) }).message;
}

function readyView(find: () => Queue | undefined): QueueInspector<Message> {
  return {
    exists: () => find() !== undefined,
    count: () => find()?.ready.length ?? 0,
    peekOldest: () => map(find()?.ready.peekFirst()),
    peekNewest: () => map(find()?.ready.peekLast()),
    takeOldest: () => map(find()?.ready.shift()),
    takeNewest: () => map(find()?.ready.pop()),
    list: () => (find()?.ready.toArray() ?? []).map(envelopeToMessage),
  };
  function map(envelope: Envelope | undefined) {
    return envelope && envelopeToMessage(envelope);
  }
}

function deadLetterView(find: () => Queue | undefined): QueueInspector<DeadLetter> {
  const store = () => find()?.deadLetters;
  const at = (index: 'first' | 'last', remove: boolean) => {
    const list = store();
    if (!list || list.length === 0) return undefined;
    const stored = index === 'first' ? (remove ? list.shift() : list[0]) : remove ? list.pop() : list[list.length - 1];
    return stored && toDeadLetter(stored);
  };
  return {
    exists: () => (store()?.length ?? 0) > 0,
    count: () => store()?.length ?? 0,
    peekOldest: () => at('first', false),
    peekNewest: () => at('last', false),
    takeOldest: () => at('first', true),
    takeNewest: () => at('last', true),
    list: () => (store() ?? []).map(toDeadLetter),
  };
}

/**
 * Looks inside an in-process broker, for tests and tools. It sees messages waiting in queues
 * and dead-letter stores; messages being handled right now are not in either.
 */
export function inspectMemoryBroker(name = 'default'): MemoryBrokerInspector {
  const broker = () => brokers().get(name);
  const segment = (segmentName: string) => broker()?.segments.get(segmentName);
  return {
    segments: () => [...(broker()?.segments.keys() ?? [])],
    kinds: (segmentName) => [...(segment(segmentName)?.kinds.keys() ?? [])],
    subscriptions: (segmentName) => [...(segment(segmentName)?.shares.keys() ?? [])],
    taskQueue: (segmentName, kind) => readyView(() => segment(segmentName)?.kinds.get(kind)),
    shareQueue: (segmentName, subscription) => readyView(() => segment(segmentName)?.shares.get(subscription)?.queue),
    deadLetters: (target) => {
      const prepared = prepareDeadLetterTarget(DRIVER_NAME, target);
      return deadLetterView(() => {
        const state = segment(prepared.segment);
        if (prepared.kind !== undefined) return state?.kinds.get(prepared.kind);
        return state?.shares.get(prepared.subscription)?.queue;
      });
    },
  };
}

/** Drops a named broker and everything in it (for test isolation); open drivers keep a detached copy. */
export function deleteMemoryBroker(name = 'default'): boolean {
  return brokers().delete(name);
}
