import type { Driver, JsonValue, Message } from '@mq-drivers/core';
import type { Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * What a worker class is given when the dispatcher creates an instance. A crashed instance is
 * replaced by a new one with the same `instance` number and a higher `generation`.
 */
export interface WorkerContext {
  /** The consumer's name (logs and metrics label). */
  readonly consumer: string;
  /** 1-based instance number within the consumer. */
  readonly instance: number;
  /** 1 for the first instance in this slot, +1 for every replacement after a crash. */
  readonly generation: number;
  /** The connected driver, e.g. to publish follow-up messages. Do not close it. */
  readonly driver: Driver;
  /** A child logger bound to the consumer and instance. */
  readonly logger: Logger;
}

/**
 * The worker contract. `consume` returning (or resolving) acknowledges the message. Throwing
 * fails the attempt: the dispatcher calls this instance's `shutdown(error)`, replaces it with a
 * new instance, and the message is redelivered (attempt + 1) or dead-lettered after `maxAttempts`.
 * `shutdown()` (no argument) is called once on a clean stop.
 */
export interface Worker<Body extends JsonValue = JsonValue> {
  consume(message: Message<Body>): unknown;
  shutdown?(error?: unknown): unknown;
}

/** A worker class: `new WorkerClass(context)` gives an instance. */
// biome-ignore lint/suspicious/noExplicitAny: worker classes declare their own message body types.
export type WorkerClass = new (context: WorkerContext) => Worker<any>;

export interface StartupContext {
  /** The broker URL the dispatcher is about to connect to. */
  readonly url: string;
  readonly logger: Logger;
  /** The config file, when started from one. */
  readonly configFile: string | undefined;
}

/** Runs before the dispatcher connects (e.g. to load secrets or `registerDriver()` a custom driver). */
export type StartupHook = (context: StartupContext) => unknown;

export interface ReadyContext extends StartupContext {
  readonly driver: Driver;
}

/** Runs once every consumer is subscribed (e.g. to publish a first batch of tasks). */
export type ReadyHook = (context: ReadyContext) => unknown;
