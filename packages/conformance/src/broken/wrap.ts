import type { Driver, Handler, Message, Subscription } from '@mq-drivers/core';

/** A driver factory, as given to `runConformance({createDriver})`. */
export type CreateDriver = () => Driver | Promise<Driver>;

type Methods = Pick<
  Driver,
  | 'taskPublish'
  | 'sharePublish'
  | 'taskConsume'
  | 'shareConsume'
  | 'listDeadLetters'
  | 'redriveDeadLetters'
  | 'unregister'
  | 'close'
>;

/** A plain driver object that forwards everything to `inner` except the methods in `patch`. */
export function delegate(inner: Driver, patch: Partial<Methods> = {}): Driver {
  return {
    specificationVersion: inner.specificationVersion,
    name: inner.name,
    capabilities: inner.capabilities,
    taskPublish: patch.taskPublish ?? ((body, options) => inner.taskPublish(body, options)),
    sharePublish: patch.sharePublish ?? ((body, options) => inner.sharePublish(body, options)),
    taskConsume: patch.taskConsume ?? ((handler, options) => inner.taskConsume(handler, options)),
    shareConsume: patch.shareConsume ?? ((handler, options) => inner.shareConsume(handler, options)),
    listDeadLetters: patch.listDeadLetters ?? ((target) => inner.listDeadLetters(target)),
    redriveDeadLetters: patch.redriveDeadLetters ?? ((target, options) => inner.redriveDeadLetters(target, options)),
    // Optional in the contract: forwarded only where the inner driver (or the patch) has it.
    ...(patch.unregister || inner.unregister
      ? { unregister: patch.unregister ?? ((target) => (inner.unregister as NonNullable<Driver['unregister']>)(target)) }
      : {}),
    close: patch.close ?? (() => inner.close()),
  };
}

/** Wraps every driver a factory makes. */
export function wrapFactory(createDriver: CreateDriver, wrap: (inner: Driver) => Driver): CreateDriver {
  return async () => wrap(await createDriver());
}

/** A new frozen message with some fields changed. */
export function remake(message: Message, patch: Partial<Message>): Message {
  return Object.freeze({
    id: message.id,
    body: message.body,
    segment: message.segment,
    topic: message.topic,
    publishedAt: message.publishedAt,
    attempt: message.attempt,
    headers: message.headers,
    ...patch,
  });
}

/** Both consume methods with the handler replaced (per subscription). */
export function wrapHandlers(inner: Driver, wrapHandler: (handler: Handler) => Handler): Driver {
  return delegate(inner, {
    taskConsume: (handler, options) =>
      inner.taskConsume(typeof handler === 'function' ? wrapHandler(handler as Handler) : handler, options),
    shareConsume: (handler, options) =>
      inner.shareConsume(typeof handler === 'function' ? wrapHandler(handler as Handler) : handler, options),
  });
}

/** A subscription object forwarding to `inner`, with `close` optionally replaced. */
export function wrapSubscription(inner: Subscription, close?: Subscription['close']): Subscription {
  return {
    get name() {
      return inner.name;
    },
    get closed() {
      return inner.closed;
    },
    close: close ?? ((options) => inner.close(options)),
    ...(inner.cursor ? { cursor: () => inner.cursor?.() } : {}),
  };
}
