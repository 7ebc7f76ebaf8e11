import { anyTopicMatches } from '@mq-drivers/core';
import { type Envelope, Queue } from './queue.js';

/** A share subscription's queue plus what it listens to. */
export interface ShareQueue {
  queue: Queue;
  patterns: string[];
  /** Undefined for ephemeral subscriptions. */
  durableName: string | undefined;
  /** Open consumers; an ephemeral queue is deleted when this drops to zero. */
  openConsumers: number;
  /** Share seqs delivered but not yet acked, for the cursor. */
  pending: Set<number>;
  /** Next seq not yet seen by this subscription. */
  nextSeq: number;
}

export interface SegmentState {
  /** Registered task kinds, kept while their workers are offline (durable). */
  kinds: Map<string, Queue>;
  /** Every share subscription (ephemeral while open; named until the broker goes away). */
  shares: Map<string, ShareQueue>;
  /** Share history for replay; `firstSeq` is the seq of history[0] once old entries are trimmed. */
  history: Envelope[];
  firstSeq: number;
  nextSeq: number;
}

/**
 * One in-process broker. Every `connect('memory:')` in a process reaches the same one;
 * `memory://name` reaches a separate, named one.
 */
export class MemoryBroker {
  readonly segments = new Map<string, SegmentState>();

  constructor(
    readonly name: string,
    readonly historyLimit: number,
  ) {}

  segment(name: string): SegmentState {
    let state = this.segments.get(name);
    if (!state) {
      state = { kinds: new Map(), shares: new Map(), history: [], firstSeq: 0, nextSeq: 0 };
      this.segments.set(name, state);
    }
    return state;
  }

  kindQueue(segment: string, kind: string): Queue {
    const state = this.segment(segment);
    let queue = state.kinds.get(kind);
    if (!queue) {
      queue = new Queue(`${segment}/${kind}`);
      state.kinds.set(kind, queue);
    }
    return queue;
  }

  /** A task reaches every registered kind of its segment, each kind's queue once. */
  publishTask(envelope: Omit<Envelope, 'topic'>): void {
    const state = this.segments.get(envelope.segment);
    if (!state) return;
    for (const [kind, queue] of state.kinds) queue.enqueue({ ...envelope, topic: kind });
  }

  /** A share goes into history, then into every subscription with a matching pattern (once each). */
  publishShare(envelope: Omit<Envelope, 'seq'>): void {
    const state = this.segment(envelope.segment);
    const stored: Envelope = { ...envelope, seq: state.nextSeq++ };
    state.history.push(stored);
    if (state.history.length > this.historyLimit) {
      state.history.shift();
      state.firstSeq++;
    }
    for (const share of state.shares.values()) {
      share.nextSeq = state.nextSeq;
      if (anyTopicMatches(share.patterns, stored.topic)) {
        share.pending.add(stored.seq as number);
        share.queue.enqueue(stored);
      }
    }
  }

  /** History entries from `seq` on (clamped to what is retained). */
  historyFrom(segment: string, seq: number): Envelope[] {
    const state = this.segment(segment);
    return state.history.slice(Math.max(0, seq - state.firstSeq));
  }
}

const brokersKey = Symbol.for('mq-drivers.memory.brokers.v1');
const globalStore = globalThis as unknown as Record<symbol, Map<string, MemoryBroker> | undefined>;

/** Brokers live per process (shared by every copy of this package), keyed by name. */
export function brokers(): Map<string, MemoryBroker> {
  let map = globalStore[brokersKey];
  if (!map) {
    map = new Map();
    globalStore[brokersKey] = map;
  }
  return map;
}
