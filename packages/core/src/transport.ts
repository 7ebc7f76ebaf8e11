/**
 * The transport contract: what a driver supplies so that core's delivery engine
 * (`consume()` in `engine.ts`) can run a subscription. The engine owns the at-least-once policy —
 * handler runs, the prefetch bound, attempts, backoff or dead letter, close with a deadline and
 * hand-back, the late-finish rule, building the frozen `Message`. A transport only moves messages:
 * it receives them, and acks, retries, dead-letters or hands back what the engine tells it to.
 *
 * Rules a transport keeps (the conformance suite checks the result):
 * - It calls `sink.deliver()` for each message it received, and never more than `sink.capacity`
 *   at once where it can choose (a pull transport); a push transport whose broker may send more
 *   (after a reconnect, say) may exceed it: the engine queues the rest, and `prefetch` still
 *   bounds the handlers that run.
 * - Exactly one of `ack`, `retry`, `deadLetter` or `handBack` is called per delivery, once.
 *   Until the promise it returns settles, the delivery still counts against `prefetch`.
 *   A rejection means the outcome could not be stored and the broker will deliver the message
 *   again (an unacknowledged message comes back): the engine frees the slot and goes on.
 * - A delivery that became void (its channel or lease is gone, so its ack would mean nothing) is
 *   reported with `sink.void()`. Its handler keeps running and keeps its prefetch slot; when the
 *   broker delivers that message again while the handler still runs, or after it ended, the
 *   engine settles the new copy with the old run's outcome instead of running it twice.
 */
import type { JsonValue, MessageHeaders } from './contract.js';

/** One message as a transport received it; the engine builds the handler's frozen `Message`. */
export interface Received {
  readonly id: string;
  /**
   * The body as JSON text (a body that does not parse is dead-lettered without a handler run).
   * A transport that holds the parsed body sets `body` instead; exactly one of the two is set.
   */
  readonly json?: string;
  readonly body?: JsonValue;
  readonly segment: string;
  /** The published topic for shares; the worker kind for tasks. */
  readonly topic: string;
  readonly publishedAt: Date;
  /** 1 on first delivery, +1 on every redelivery after a failure. */
  readonly attempt: number;
  readonly headers: Readonly<MessageHeaders>;
}

/** What the engine offers a transport for one subscription. */
export interface DeliverySink<R extends Received> {
  /** Hands the engine one received message. Ignored (and handed back) once the subscription closes. */
  deliver(received: R): void;
  /** The delivery's acknowledgement would mean nothing any more (see the rules above). */
  void(received: R): void;
  /** How many more deliveries the subscription can take now: `prefetch` minus those it holds. */
  readonly capacity: number;
  /** Called whenever capacity frees up: a pull transport fetches again. */
  onCapacity(listener: () => void): void;
}

/** One subscription's transport. Every method may return a promise; the engine awaits it. */
export interface SubscriptionTransport<R extends Received = Received> {
  /** Starts receiving into `sink`. Called once, before anything else. */
  start(sink: DeliverySink<R>): void | Promise<void>;
  /** The handler succeeded: the message is done for this kind or subscription. */
  ack(received: R): void | Promise<void>;
  /**
   * The handler failed and attempts remain: deliver it again as `attempt + 1` after `delayMs`.
   * `error` is the failure's text, for a transport that records the last error on the retry.
   */
  retry(received: R, delayMs: number, error: string): void | Promise<void>;
  /** The last allowed attempt failed: move it to the dead-letter store with the error text. */
  deadLetter(received: R, error: string): void | Promise<void>;
  /** Close gave it back unfinished: deliver it again (to any consumer) with the same attempt. */
  handBack(received: R): void | Promise<void>;
  /** First step of close: receive nothing more. */
  stop(): void | Promise<void>;
  /** Last step of close, once every delivery was settled or handed back: release what is left. */
  close?(): void | Promise<void>;
}
