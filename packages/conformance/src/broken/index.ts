/**
 * Deliberately broken drivers: each wraps a working driver factory and breaks exactly one rule
 * of the contract. The suite must fail every one of them, in the case aimed at that rule
 * (`aimedAt`). Use them to prove a changed suite still has teeth:
 *
 * ```ts
 * import { brokenDrivers } from '@mq-drivers/conformance/broken';
 * const broken = brokenDrivers.find((b) => b.id === 'duplicates')!;
 * runConformance({ name: 'broken', createDriver: broken.wrap(() => createMemoryDriver()) }); // must fail
 * ```
 */
import {
  type Driver,
  type Handler,
  InvalidArgumentError,
  type JsonValue,
  newMessageId,
  prepareSharePublish,
  prepareTaskPublish,
  type Subscription,
  validatePositiveInteger,
  validateSegment,
} from '@mq-drivers/core';
import { type CreateDriver, delegate, remake, wrapFactory, wrapHandlers, wrapSubscription } from './wrap.js';

export { type CreateDriver, delegate, remake, wrapFactory, wrapHandlers, wrapSubscription } from './wrap.js';

export interface BrokenDriver {
  /** Short id, e.g. `duplicates`. */
  id: string;
  /** The rule it breaks, in words. */
  breaks: string;
  /** Ids of the suite's cases that must fail for this driver (the cases aimed at the rule). */
  aimedAt: readonly string[];
  /** Returns a factory of broken drivers around the given (working) factory; state is shared per call. */
  wrap(createDriver: CreateDriver): CreateDriver;
  /** Where the rule is about opening by URL: the harness' `connect`, broken the same way. */
  wrapConnect?(connect: Connect): Connect;
}

/** Opens a driver from a URL, as the harness option `connect`. */
export type Connect = (url: string) => Driver | Promise<Driver>;

const isValid = (validate: () => unknown) => {
  try {
    validate();
    return true;
  } catch {
    return false;
  }
};
const validSegment = (value: unknown) => isValid(() => validateSegment('broken', value));
const validCount = (value: unknown) => isValid(() => validatePositiveInteger('broken', value, 'n', 65_535));

/** Calls the handler only for some deliveries (`keep` decides), acknowledging the rest unseen. */
const filterHandler =
  (keep: (n: number, message: Parameters<Handler>[0]) => boolean) =>
  (handler: Handler): Handler => {
    let n = 0;
    return (message) => (keep(n++, message) ? handler(message) : undefined);
  };

function closeWithoutDraining(subscription: Subscription): Subscription {
  return wrapSubscription(subscription, (options) => {
    void subscription.close(options).catch(() => undefined);
    return Promise.resolve();
  });
}

/**
 * Consumer-side reordering: asks the broker for one more message than allowed and, when two are
 * held, runs the later one first. Concurrency towards the user's handler stays at most 1.
 */
function reorderingHandler(handler: Handler): Handler {
  let held: { release: () => void } | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  const serial = (message: Parameters<Handler>[0]) => {
    const run = chain.then(() => handler(message));
    chain = run.catch(() => undefined);
    return run;
  };
  return async (message) => {
    if (held === undefined) {
      let release!: () => void;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      const mine = { release };
      held = mine;
      await Promise.race([released, new Promise((resolve) => setTimeout(resolve, 20))]);
      if (held === mine) held = undefined;
      return serial(message);
    }
    const earlier = held;
    held = undefined;
    const result = serial(message);
    earlier.release();
    return result;
  };
}

export const brokenDrivers: readonly BrokenDriver[] = [
  {
    id: 'task-to-every-worker',
    breaks: 'tasks reach every worker of a kind instead of exactly one',
    aimedAt: ['tasks.competing-workers', 'tasks.kinds-fan-out'],
    wrap: (createDriver) => {
      let worker = 0;
      return wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          taskConsume: (handler, options) => {
            const kind = options?.topic;
            const own = `${String(kind)}.w${++worker}`;
            return inner.taskConsume(
              typeof handler === 'function' ? (message) => handler(remake(message, { topic: kind }) as never) : handler,
              { ...options, topic: typeof kind === 'string' ? own : kind },
            );
          },
        }),
      );
    },
  },
  {
    id: 'kind-misses-messages',
    breaks: 'a kind silently skips every 4th task (acknowledged without running the handler)',
    aimedAt: ['tasks.one-worker'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          taskConsume: (handler, options) =>
            inner.taskConsume(
              typeof handler === 'function' ? filterHandler((n) => n % 4 !== 3)(handler as Handler) : handler,
              options,
            ),
        }),
      ),
  },
  {
    id: 'reordering',
    breaks: 'a prefetch-1 consumer sees adjacent messages swapped',
    aimedAt: ['ordering.tasks', 'ordering.shares'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) => {
        const consume =
          (method: 'taskConsume' | 'shareConsume') =>
          (handler: Handler, options: { prefetch?: number }): Promise<Subscription> =>
            inner[method](
              typeof handler === 'function' ? reorderingHandler(handler) : handler,
              (options?.prefetch === 1 ? { ...options, prefetch: 2 } : options) as never,
            );
        return delegate(inner, { taskConsume: consume('taskConsume') as never, shareConsume: consume('shareConsume') as never });
      }),
  },
  {
    id: 'failures-swallowed',
    breaks: 'a failing handler is acknowledged: no redelivery, no dead letter',
    aimedAt: ['acks.task-redelivery', 'acks.share-redelivery', 'acks.task-dead-letter'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        wrapHandlers(inner, (handler) => async (message) => {
          try {
            await handler(message);
          } catch {
            // swallowed
          }
        }),
      ),
  },
  {
    id: 'segments-leak',
    breaks: 'every segment is mapped onto one, so segments do not isolate',
    aimedAt: ['tasks.segment-isolation', 'shares.segment-isolation'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) => {
        const shared = 'conf-leak-everything';
        const map = <O>(options: O): O => {
          const segment = (options as { segment?: unknown } | undefined)?.segment;
          return validSegment(segment) ? { ...options, segment: shared } : options;
        };
        const restore = (handler: unknown, options: unknown) =>
          typeof handler === 'function'
            ? (message: Parameters<Handler>[0]) =>
                (handler as Handler)(remake(message, { segment: (options as { segment: string }).segment }))
            : handler;
        return delegate(inner, {
          taskPublish: (body, options) => inner.taskPublish(body, map(options)),
          sharePublish: (body, options) => inner.sharePublish(body, map(options)),
          taskConsume: (handler, options) => inner.taskConsume(restore(handler, options) as never, map(options)),
          shareConsume: (handler, options) => inner.shareConsume(restore(handler, options) as never, map(options)),
          listDeadLetters: (target) => inner.listDeadLetters(map(target)),
          redriveDeadLetters: (target, options) => inner.redriveDeadLetters(map(target), options),
        });
      }),
  },
  {
    id: 'shares-leak-into-tasks',
    breaks: 'a share is also delivered as a task to the workers of its segment (one exchange for both patterns)',
    aimedAt: ['tasks.shares-separate'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          sharePublish: async (body, options) => {
            const receipt = await inner.sharePublish(body, options);
            await inner.taskPublish(body, { segment: options.segment, headers: options.headers, id: receipt.id });
            return receipt;
          },
        }),
      ),
  },
  {
    id: 'shares-to-one-subscriber',
    breaks: 'a share reaches only the first subscription that sees it, not every matching one',
    aimedAt: ['shares.every-subscriber'],
    wrap: (createDriver) => {
      const claimedBy = new Map<string, object>();
      return wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          shareConsume: (handler, options) => {
            const token = {};
            return inner.shareConsume(
              typeof handler === 'function'
                ? (message) => {
                    const owner = claimedBy.get(message.id) ?? token;
                    claimedBy.set(message.id, owner);
                    return owner === token ? handler(message as never) : undefined;
                  }
                : handler,
              options,
            );
          },
        }),
      );
    },
  },
  {
    id: 'duplicates',
    breaks: 'every 5th delivery runs the handler twice',
    aimedAt: ['tasks.one-worker', 'shares.every-subscriber'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        wrapHandlers(inner, (handler) => {
          let n = 0;
          return async (message) => {
            if (n++ % 5 === 4) await handler(message);
            return handler(message);
          };
        }),
      ),
  },
  {
    id: 'max-attempts-ignored',
    breaks: 'maxAttempts is ignored: a failing message is redelivered (almost) forever',
    aimedAt: ['acks.task-dead-letter', 'acks.share-dead-letter'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) => {
        const patch = <O extends { maxAttempts?: number }>(options: O): O =>
          validCount(options?.maxAttempts) ? { ...options, maxAttempts: 1000 } : options;
        return delegate(inner, {
          taskConsume: (handler, options) => inner.taskConsume(handler, patch(options)),
          shareConsume: (handler, options) => inner.shareConsume(handler, patch(options)),
        });
      }),
  },
  {
    id: 'prefetch-ignored',
    breaks: 'prefetch is ignored: handlers run without a bound',
    aimedAt: ['acks.prefetch-bound'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) => {
        const patch = <O extends { prefetch?: number }>(options: O): O =>
          options?.prefetch === undefined || validCount(options.prefetch) ? { ...options, prefetch: 1000 } : options;
        return delegate(inner, {
          taskConsume: (handler, options) => inner.taskConsume(handler, patch(options)),
          shareConsume: (handler, options) => inner.shareConsume(handler, patch(options)),
        });
      }),
  },
  {
    id: 'close-does-not-drain',
    breaks: 'subscription.close() resolves at once instead of waiting for running handlers',
    aimedAt: ['lifecycle.close-drains'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          taskConsume: async (handler, options) => closeWithoutDraining(await inner.taskConsume(handler, options)),
          shareConsume: async (handler, options) => closeWithoutDraining(await inner.shareConsume(handler, options)),
        }),
      ),
  },
  {
    id: 'close-ignores-timeout',
    breaks: 'subscription.close({timeoutMs}) ignores the deadline and waits for a hung handler',
    aimedAt: ['acks.handback-on-close'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) => {
        const patch = (subscription: Subscription) =>
          wrapSubscription(subscription, () => subscription.close({ timeoutMs: 60_000 }));
        return delegate(inner, {
          taskConsume: async (handler, options) => patch(await inner.taskConsume(handler, options)),
          shareConsume: async (handler, options) => patch(await inner.shareConsume(handler, options)),
        });
      }),
  },
  {
    id: 'ack-before-handling',
    breaks: 'messages are acknowledged on receipt and the handler runs detached (crash or close loses them)',
    aimedAt: ['acks.handback-on-close', 'acks.task-redelivery', 'lifecycle.close-drains'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        wrapHandlers(inner, (handler) => (message) => {
          void Promise.resolve()
            .then(() => handler(message))
            .catch(() => undefined);
        }),
      ),
  },
  {
    id: 'bad-body-accepted',
    breaks: 'bodies that do not survive JSON are "repaired" (undefined → null, NaN → null) instead of rejected',
    aimedAt: ['bad-input.body'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) => {
        const repair = (body: unknown): JsonValue => {
          if (body === undefined) return null;
          try {
            return JSON.parse(JSON.stringify(body) ?? 'null') as JsonValue;
          } catch {
            return body as JsonValue;
          }
        };
        return delegate(inner, {
          taskPublish: (body, options) => inner.taskPublish(repair(body), options),
          sharePublish: (body, options) => inner.sharePublish(repair(body), options),
        });
      }),
  },
  {
    id: 'sync-validation-throw',
    breaks: 'bad input throws synchronously instead of returning a rejected promise',
    aimedAt: ['bad-input.body', 'bad-input.segment'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          taskPublish: (body, options) => {
            prepareTaskPublish(inner.name, inner.capabilities, body, options);
            return inner.taskPublish(body, options);
          },
          sharePublish: (body, options) => {
            prepareSharePublish(inner.name, inner.capabilities, body, options);
            return inner.sharePublish(body, options);
          },
        }),
      ),
  },
  {
    id: 'untyped-errors',
    breaks: 'bad input is rejected with a plain Error instead of the typed error class',
    aimedAt: ['bad-input.segment', 'bad-input.too-large'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) => {
        const plain = <T>(promise: Promise<T>) =>
          promise.catch((error: unknown) => {
            throw new Error(error instanceof Error ? error.message : String(error));
          });
        return delegate(inner, {
          taskPublish: (body, options) => plain(inner.taskPublish(body, options)),
          sharePublish: (body, options) => plain(inner.sharePublish(body, options)),
        });
      }),
  },
  {
    id: 'attempt-not-incremented',
    breaks: 'redeliveries report attempt 1 every time',
    aimedAt: ['acks.task-redelivery', 'acks.share-redelivery'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        wrapHandlers(inner, (handler) => (message) => handler(remake(message, { attempt: 1 }))),
      ),
  },
  {
    id: 'id-changes-on-redelivery',
    breaks: 'a redelivered message gets a new id',
    aimedAt: ['acks.task-redelivery', 'acks.share-redelivery'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        wrapHandlers(
          inner,
          (handler) => (message) => handler(message.attempt > 1 ? remake(message, { id: newMessageId() }) : message),
        ),
      ),
  },
  {
    id: 'headers-dropped',
    breaks: 'delivered messages lose their headers',
    aimedAt: ['tasks.message-fields', 'shares.message-fields'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        wrapHandlers(inner, (handler) => (message) => handler(remake(message, { headers: {} }))),
      ),
  },
  {
    id: 'hash-as-star',
    breaks: '`#` is treated like `*` (exactly one word instead of zero or more)',
    aimedAt: ['shares.hash-pattern'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          shareConsume: (handler, options) => {
            const topics = options?.topics;
            const patched = Array.isArray(topics)
              ? topics.map((pattern) =>
                  typeof pattern === 'string'
                    ? pattern
                        .split('.')
                        .map((w) => (w === '#' ? '*' : w))
                        .join('.')
                    : pattern,
                )
              : topics;
            return inner.shareConsume(handler, { ...options, topics: patched });
          },
        }),
      ),
  },
  {
    id: 'dead-letters-lost',
    breaks: 'listDeadLetters always returns [] (dead letters are lost)',
    aimedAt: ['acks.task-dead-letter', 'acks.share-dead-letter'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          listDeadLetters: async (target) => {
            await inner.listDeadLetters(target);
            return [];
          },
        }),
      ),
  },
  {
    id: 'redrive-does-nothing',
    breaks: 'redriveDeadLetters reports a count but re-delivers nothing',
    aimedAt: ['acks.redrive'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          redriveDeadLetters: async (target, options) => {
            const letters = await inner.listDeadLetters(target);
            return letters.filter((letter) => options?.ids === undefined || options.ids.includes(letter.message.id)).length;
          },
        }),
      ),
  },
  {
    id: 'use-after-close-accepted',
    breaks: 'after close(), publish pretends to succeed instead of rejecting with DriverClosedError',
    aimedAt: ['lifecycle.use-after-close'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) => {
        let closed = false;
        return delegate(inner, {
          taskPublish: (body, options) => (closed ? Promise.resolve({ id: newMessageId() }) : inner.taskPublish(body, options)),
          sharePublish: (body, options) => (closed ? Promise.resolve({ id: newMessageId() }) : inner.sharePublish(body, options)),
          close: () => {
            closed = true;
            return inner.close();
          },
        });
      }),
  },
  {
    id: 'driver-close-keeps-subscriptions',
    breaks: 'driver.close() leaves its subscriptions running',
    aimedAt: ['lifecycle.driver-close-closes-subscriptions'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          // Subscriptions are handed out unwrapped; close() forgets about them and closes nothing.
          close: async () => undefined,
        }),
      ),
  },
  {
    id: 'not-durable',
    breaks: 'tasks published while a kind has no running worker are lost',
    aimedAt: ['durable.tasks'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          taskConsume: (handler, options) => {
            const since = Date.now();
            return inner.taskConsume(
              typeof handler === 'function'
                ? (message) => (message.publishedAt.getTime() <= since ? undefined : handler(message as never))
                : handler,
              options,
            );
          },
        }),
      ),
  },
  {
    id: 'replay-from-ignored',
    breaks: "`from` is ignored: a subscription from 'earliest' starts at the latest message",
    aimedAt: ['replay.earliest'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        delegate(inner, {
          shareConsume: (handler, options) => {
            if (options === null || typeof options !== 'object' || options.from === undefined)
              return inner.shareConsume(handler, options);
            const { from: _ignored, ...rest } = options;
            return inner.shareConsume(handler, rest);
          },
        }),
      ),
  },
  {
    id: 'runs-twice-at-once',
    breaks: 'every 3rd message is handled by two handler runs at the same time',
    aimedAt: ['reconnect.prefetch-bound'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        wrapHandlers(inner, (handler) => {
          let n = 0;
          return async (message) => {
            if (n++ % 3 !== 2) return handler(message);
            await Promise.all([handler(message), handler(message)]);
          };
        }),
      ),
  },
  {
    id: 'broker-headers-dropped',
    breaks: 'headers starting with `x-` are accepted at publish but do not reach the handler',
    aimedAt: ['bad-input.headers-round-trip'],
    wrap: (createDriver) =>
      wrapFactory(createDriver, (inner) =>
        wrapHandlers(inner, (handler) => (message) => {
          const headers = Object.fromEntries(Object.entries(message.headers).filter(([key]) => !key.startsWith('x-')));
          return handler(remake(message, { headers }));
        }),
      ),
  },
  {
    id: 'secret-in-url-errors',
    breaks: 'a refused URL is kept whole (password included) in the error it raises',
    aimedAt: ['bad-input.no-secret-in-errors'],
    wrap: (createDriver) => createDriver,
    wrapConnect: (connect) => async (url) => {
      try {
        return await connect(url);
      } catch (cause) {
        throw new InvalidArgumentError({ driver: 'broken', argument: 'url', value: url, message: 'refused', cause });
      }
    },
  },
  {
    id: 'unregister-does-nothing',
    breaks: '`unregister` resolves but keeps the kind registered: a worker that starts later gets what was kept',
    aimedAt: ['unregister.kind'],
    wrap: (createDriver) => wrapFactory(createDriver, (inner) => delegate(inner, { unregister: async () => ({ dropped: 0 }) })),
  },
];

/** Finds a broken driver by id. */
export function brokenDriver(id: string): BrokenDriver {
  const found = brokenDrivers.find((broken) => broken.id === id);
  if (found === undefined)
    throw new TypeError(`no broken driver ${JSON.stringify(id)}; known: ${brokenDrivers.map((b) => b.id).join(', ')}`);
  return found;
}
