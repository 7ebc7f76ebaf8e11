/**
 * The mq-drivers contract, version `v1`. Every driver implements {@link Driver}; the conformance
 * suite (`@mq-drivers/conformance`) checks every rule stated here. Rules a driver must keep are
 * written as "MUST"; `docs/semantics.md` explains them at length.
 *
 * Two delivery patterns:
 * - Task fan-out: `taskPublish(body, {segment})` reaches exactly ONE worker of EACH worker kind
 *   subscribed on that segment (`taskConsume(handler, {topic: kind, segment})`). Workers of one
 *   kind compete; every kind gets its own copy.
 * - Topic sharing: `sharePublish(body, {topic, segment})` reaches EVERY subscription on that
 *   segment whose pattern matches the topic.
 *
 * A segment isolates everything: nothing published on one segment is seen on another.
 */

/** The contract version this file describes. Core refuses drivers that report another one. */
export const SPECIFICATION_VERSION = 'v1' as const;
export type SpecificationVersion = typeof SPECIFICATION_VERSION;

/** A message body: any value that survives `JSON.parse(JSON.stringify(value))` unchanged. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** User headers: string keys to string values. Keys starting with `x-mq-` are reserved. */
export type MessageHeaders = Record<string, string>;

/** A delivered message. Immutable; the same object is never handed to two handlers. */
export interface Message<Body extends JsonValue = JsonValue> {
  /** Unique per published message; the SAME across redeliveries and across tee copies. */
  readonly id: string;
  readonly body: Body;
  readonly segment: string;
  /** The published topic for shares; the worker kind for tasks. */
  readonly topic: string;
  /** When the producer published it (the producer's clock). */
  readonly publishedAt: Date;
  /** 1 on first delivery, +1 on every redelivery after a failure. */
  readonly attempt: number;
  readonly headers: Readonly<MessageHeaders>;
}

/**
 * Handles one message. Resolving acknowledges it: it is never delivered to this kind
 * (or subscription) again. Throwing or rejecting fails the attempt: the message comes back with
 * `attempt + 1` after a backoff, and after `maxAttempts` failures it moves to the dead-letter
 * store with the error text. It is never dropped silently and never redelivered forever.
 */
export type Handler<Body extends JsonValue = JsonValue> = (message: Message<Body>) => unknown | Promise<unknown>;

export interface PublishOptions {
  segment: string;
  headers?: MessageHeaders;
  /**
   * Message id to use instead of a generated one (1–128 visible ASCII characters). Tee uses it
   * to give every target the same id; producers may use it for idempotency on their side.
   */
  id?: string;
}

export interface TaskPublishOptions extends PublishOptions {}

export interface SharePublishOptions extends PublishOptions {
  /** Dotted words, e.g. `Frontend.Customer.Signup`. No wildcards. */
  topic: string;
}

/** What a publish returns once the broker has accepted the message. */
export interface PublishReceipt {
  readonly id: string;
}

export interface ConsumeOptions {
  segment: string;
  /** Maximum handlers running at once for this subscription. Default {@link DEFAULT_PREFETCH}. */
  prefetch?: number;
  /** Deliveries before a failing message is dead-lettered. Default {@link DEFAULT_MAX_ATTEMPTS}. */
  maxAttempts?: number;
}

export interface TaskConsumeOptions extends ConsumeOptions {
  /** The worker kind (dotted words, no wildcards). Workers of one kind compete. */
  topic: string;
}

/** Where a replayable share subscription starts when it has no saved cursor. */
export type ReplayFrom = 'earliest' | 'latest' | Date | { cursor: string };

export interface ShareConsumeOptions extends ConsumeOptions {
  /** Topic patterns: `*` matches exactly one word, `#` zero or more words (AMQP rules). */
  topics: readonly string[];
  /**
   * A durable subscription name. Without it the subscription is ephemeral: it receives what is
   * published while it is open and leaves nothing behind. With it, a driver that is `durable`
   * keeps messages for it while it is closed and resumes where it stopped.
   */
  name?: string;
  /** Start point for a subscription with no saved position; needs `capabilities.replay`. */
  from?: ReplayFrom;
}

export interface CloseOptions {
  /** How long to wait for in-flight handlers. Default {@link DEFAULT_CLOSE_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * A running consumer. `close()` stops fetching, waits for in-flight handlers up to the deadline,
 * and hands back every message it holds but has not acknowledged (unstarted ones, and those whose
 * handler outlived the deadline) for redelivery: nothing is lost. Close is idempotent.
 */
export interface Subscription {
  /** The kind for tasks; the given or generated name for shares (dead letters are kept under it). */
  readonly name: string;
  readonly closed: boolean;
  close(options?: CloseOptions): Promise<void>;
  /** A position to resume from later with `from: {cursor}`; only where `capabilities.replay`. */
  cursor?(): string | undefined;
}

/** Names one dead-letter store: a task kind, or a share subscription, on one segment. */
export type DeadLetterTarget = { segment: string; kind: string } | { segment: string; subscription: string };

export interface DeadLetter {
  readonly message: Message;
  /** The error text of the last failed attempt. */
  readonly error: string;
  readonly failedAt: Date;
}

/** Machine-readable capabilities. Drivers state facts about themselves; never harness settings. */
export interface Capabilities {
  /** Tasks for a kind survive while all its workers are offline, once the kind was registered. */
  readonly durable: boolean;
  /** Share subscriptions can start from earliest / a timestamp / a saved cursor. */
  readonly replay: boolean;
  /** `per-publisher`: one publisher's messages reach a prefetch-1 consumer in publish order. */
  readonly ordering: 'per-publisher' | 'none';
  /** Failing messages go to a dead-letter store that can be listed and re-driven. */
  readonly deadLetter: boolean;
  /** Largest encoded message (JSON body + headers) the driver accepts, in bytes. */
  readonly maxMessageBytes: number;
  /** Task kinds and named share subscriptions can be removed (`Driver.unregister`); absent = false. */
  readonly unregister?: boolean;
  /**
   * Header names the driver refuses at publish because its broker owns or interprets them (they
   * would not reach handlers as sent): exact, case-sensitive names; an entry ending in `*` is a
   * prefix. Core's publish validation refuses them with `InvalidArgumentError`; absent = none.
   * Every other valid header MUST reach handlers unchanged, also on redelivery.
   */
  readonly refusedHeaders?: readonly string[];
}

/** What `unregister` removed. */
export interface UnregisterResult {
  /** Messages that were waiting for it (not dead letters), or undefined where the broker does not say. */
  readonly dropped: number | undefined;
}

/**
 * A broker driver. Publishing MUST resolve only once the broker has accepted the message (it
 * will not be lost), and MUST reject bad input with a typed error before anything is sent.
 * Ordering: with `ordering: 'per-publisher'`, messages from one driver instance published one
 * after another (each awaited) reach a consumer with prefetch 1 in that order.
 * After `close()` every method rejects with `DriverClosedError`; close is idempotent and closes
 * every subscription the driver opened.
 */
export interface Driver {
  readonly specificationVersion: SpecificationVersion;
  readonly name: string;
  readonly capabilities: Capabilities;
  taskPublish(body: JsonValue, options: TaskPublishOptions): Promise<PublishReceipt>;
  sharePublish(body: JsonValue, options: SharePublishOptions): Promise<PublishReceipt>;
  taskConsume<Body extends JsonValue = JsonValue>(handler: Handler<Body>, options: TaskConsumeOptions): Promise<Subscription>;
  shareConsume<Body extends JsonValue = JsonValue>(handler: Handler<Body>, options: ShareConsumeOptions): Promise<Subscription>;
  /** Dead letters of one kind or subscription, oldest first. */
  listDeadLetters(target: DeadLetterTarget): Promise<DeadLetter[]>;
  /**
   * Sends dead letters (all, or those with the given ids) back to their kind or subscription
   * with `attempt` reset to 1 and the same id; resolves to how many were re-driven.
   */
  redriveDeadLetters(target: DeadLetterTarget, options?: { ids?: readonly string[] }): Promise<number>;
  /**
   * Removes a task kind or a named share subscription (where `capabilities.unregister`): from
   * then on nothing is kept for it, and what was kept (waiting messages, retries, dead letters,
   * its position) is deleted. A worker or subscriber of it that starts later registers it afresh,
   * from that moment. MUST reject with `TopologyError` and remove nothing while a consumer of it
   * is open (in this driver, and in others where the broker can tell). Removing what does not
   * exist resolves with `dropped: 0`. Without the capability it rejects with `UnsupportedError`.
   */
  unregister?(target: DeadLetterTarget): Promise<UnregisterResult>;
  close(): Promise<void>;
}

export const DEFAULT_PREFETCH = 10;
export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
