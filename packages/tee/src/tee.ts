import {
  type CloseOptions,
  type Driver,
  DriverClosedError,
  type PreparedPublish,
  prepareCloseOptions,
  prepareDeadLetterTarget,
  prepareShareConsume,
  prepareSharePublish,
  prepareTaskConsume,
  prepareTaskPublish,
  SPECIFICATION_VERSION,
  type Subscription,
  TopologyError,
  UnsupportedError,
} from '@mq-drivers/core';
import { TeePublishError, type TeeTargetFailure } from './errors/tee-publish-error.js';
import { resolveOptions } from './options.js';
import { Outbox, type OutboxSettings, reserve } from './outbox.js';
import { bad, findTarget, isDriver, resolveTargets, type Target, type TargetPublishOptions } from './target.js';
import type { TeeCloseReport, TeeDriver, TeeFlushResult, TeeOptions, TeeStats, TeeTargetStats, TeeTargets } from './types.js';

/**
 * Composes drivers: every publish goes to all targets concurrently with the SAME id;
 * consumption comes from one of them. See the README for the failure policy of each mode.
 */
export function tee(targets: TeeTargets, options?: TeeOptions): TeeDriver;
export function tee(primary: Driver, ...mirrors: Driver[]): TeeDriver;
export function tee(primary: Driver, ...mirrorsThenOptions: [...Driver[], TeeOptions]): TeeDriver;
export function tee(first: TeeTargets | Driver, ...rest: (Driver | TeeOptions | undefined)[]): TeeDriver {
  if (isDriver(first)) {
    const last = rest[rest.length - 1];
    const options = last === undefined || !isDriver(last) ? (rest.pop() as TeeOptions | undefined) : undefined;
    return createTee([first, ...(rest as Driver[])], options ?? {});
  }
  const usage = 'call tee(targets, options) with a list or an object of drivers, or tee(primary, ...mirrors, options)';
  if (rest.length > 1) bad('arguments', rest, usage);
  return createTee(first, (rest[0] as TeeOptions | undefined) ?? {});
}

function createTee(targetsInput: TeeTargets, optionsInput: TeeOptions): TeeDriver {
  const targets = resolveTargets(targetsInput);
  const settings = resolveOptions(optionsInput, targets);
  const name = `tee(${targets.map((target) => target.driver.name).join(',')})`;
  const [primary, ...mirrors] = targets as [Target, ...Target[]];
  const outboxSettings: OutboxSettings = { ...settings, teeName: name, changed: notify };
  // Only 'primary' keeps outboxes; in 'all' a publish waits for every mirror itself.
  const outboxes = settings.mode === 'primary' ? mirrors.map((mirror) => new Outbox(mirror, outboxSettings)) : [];
  const consuming = targets[settings.consumeFrom] as Target;
  const consumer = consuming.driver;
  const consumed = consumer.capabilities;
  const refusedHeaders = [...new Set(targets.flatMap((target) => target.driver.capabilities.refusedHeaders ?? []))];
  const capabilities = Object.freeze({
    durable: consumed.durable,
    replay: consumed.replay,
    // Copies retried from the outbox arrive late, so a mirror keeps no publish order in 'primary' mode.
    ordering: settings.mode === 'primary' && settings.consumeFrom !== 0 ? 'none' : consumed.ordering,
    deadLetter: consumed.deadLetter,
    maxMessageBytes: Math.min(...targets.map((target) => target.driver.capabilities.maxMessageBytes)),
    unregister: consumed.unregister === true,
    // A header any target refuses is refused (by core's publish validation) before any target gets it.
    ...(refusedHeaders.length > 0 ? { refusedHeaders } : {}),
  });
  const subscriptions = new Set<Subscription>();
  const idleWaiters = new Set<(caughtUp: boolean) => void>();
  let inFlight = 0;
  let published = 0;
  let rejected = 0;
  let closing: Promise<TeeCloseReport> | undefined;

  function ensureOpen(): void {
    if (closing) throw new DriverClosedError({ driver: name });
  }

  const unconfirmed = () => outboxes.reduce((total, outbox) => total + outbox.backlog, 0);
  const outboxDepth = () => outboxes.reduce((total, outbox) => total + outbox.depth, 0);
  const idle = () => inFlight === 0 && unconfirmed() === 0;

  /** Wakes flush and close waiters once nothing is in flight or unconfirmed. */
  function notify(): void {
    if (idleWaiters.size === 0 || !idle()) return;
    for (const wake of idleWaiters) wake(true);
    idleWaiters.clear();
  }

  /** Resolves true once idle, or at the deadline to whether it is idle then. */
  async function waitIdle(timeoutMs: number): Promise<boolean> {
    if (idle()) return true;
    let timer: NodeJS.Timeout | undefined;
    const caughtUp = await new Promise<boolean>((resolve) => {
      idleWaiters.add(resolve);
      timer = setTimeout(() => {
        idleWaiters.delete(resolve);
        resolve(idle());
      }, timeoutMs);
    });
    clearTimeout(timer);
    return caughtUp;
  }

  /** The rejection of a publish: every target's outcome, in target order. */
  function targetsFailed(messageId: string, results: readonly PromiseSettledResult<void>[]): TeePublishError {
    const failures: TeeTargetFailure[] = [];
    const succeeded: string[] = [];
    results.forEach((result, index) => {
      const target = (targets[index] as Target).name;
      if (result.status === 'fulfilled') succeeded.push(target);
      else failures.push({ target, error: result.reason });
    });
    return new TeePublishError({ driver: name, messageId, reason: 'targets-failed', failures, succeeded });
  }

  /** `mode: 'all'`: resolves once every target confirmed. */
  async function publishAll(kind: 'task' | 'share', body: unknown, prepared: PreparedPublish, options: TargetPublishOptions) {
    const attempts = targets.map((target) => target.send(name, kind, body, options));
    try {
      await Promise.all(attempts); // the common case, without building a report
    } catch {
      throw targetsFailed(prepared.id, await Promise.allSettled(attempts));
    }
  }

  /** `mode: 'primary'`: resolves on the primary's confirmation; each mirror's copy goes through its outbox. */
  async function publishPrimary(kind: 'task' | 'share', body: unknown, prepared: PreparedPublish, options: TargetPublishOptions) {
    reserve(outboxes, prepared.id, outboxSettings);
    const primaryAttempt = primary.send(name, kind, body, options);
    const primaryOk = primaryAttempt.then(
      () => true,
      () => false,
    );
    const mirrorResults = outboxes.map((outbox) => outbox.publish(kind, body, prepared.json, options, primaryOk));
    try {
      await primaryAttempt;
    } catch (error) {
      // The message is not published: report every target's outcome; nothing went to an outbox.
      throw targetsFailed(prepared.id, [{ status: 'rejected', reason: error }, ...(await Promise.all(mirrorResults))]);
    }
  }

  async function publish(kind: 'task' | 'share', body: unknown, prepared: PreparedPublish) {
    const options: TargetPublishOptions = { segment: prepared.segment, headers: prepared.headers, id: prepared.id };
    if (prepared.topic !== undefined) options.topic = prepared.topic;
    inFlight++;
    try {
      await (settings.mode === 'all' ? publishAll : publishPrimary)(kind, body, prepared, options);
      published++;
      return { id: prepared.id };
    } catch (error) {
      rejected++;
      throw error;
    } finally {
      inFlight--;
      notify();
    }
  }

  /** The consuming target's subscription, its `close()` options checked under the tee's name; the tee closes what is open. */
  function remember(inner: Subscription): Subscription {
    for (const open of subscriptions) if (open.closed) subscriptions.delete(open);
    const subscription: Subscription = {
      get name() {
        return inner.name;
      },
      get closed() {
        return inner.closed;
      },
      async close(options?: CloseOptions) {
        prepareCloseOptions(name, options);
        return inner.close(options);
      },
    };
    if (typeof inner.cursor === 'function') subscription.cursor = () => inner.cursor?.();
    subscriptions.add(subscription);
    return subscription;
  }

  /** The deadline of a flush or close: `options.timeoutMs`, or `closeTimeoutMs`. */
  function deadline(options: CloseOptions | undefined): number {
    const timeoutMs = prepareCloseOptions(name, options);
    return options?.timeoutMs === undefined ? settings.closeTimeoutMs : timeoutMs;
  }

  async function shutdown(timeoutMs: number): Promise<TeeCloseReport> {
    const closingSubscriptions = [...subscriptions].map((subscription) => subscription.close({ timeoutMs }).catch(() => {}));
    await waitIdle(timeoutMs);
    await Promise.all(closingSubscriptions);
    for (const outbox of outboxes) outbox.stop();
    const undelivered = outboxes.flatMap((outbox) => outbox.undelivered());
    const closed = settings.closeTargets ? await Promise.allSettled(targets.map((target) => target.driver.close())) : [];
    const closeFailures = closed.flatMap((result, index) =>
      result.status === 'rejected' ? [{ target: (targets[index] as Target).name, error: result.reason }] : [],
    );
    try {
      if (undelivered.length > 0) settings.onUndelivered?.(undelivered);
    } catch {
      // The report is also returned by closeWithReport(); a failing callback must not break close.
    }
    return Object.freeze({ undelivered: Object.freeze(undelivered), closeFailures: Object.freeze(closeFailures) });
  }

  function closeWithReport(options?: CloseOptions): Promise<TeeCloseReport> {
    if (!closing) closing = shutdown(deadline(options));
    return closing;
  }

  const driver: TeeDriver = {
    specificationVersion: SPECIFICATION_VERSION,
    name,
    capabilities,
    mode: settings.mode,
    targets: Object.freeze(targets.map((target) => target.name)),
    consumeFrom: consuming.name,

    async taskPublish(body, options) {
      ensureOpen();
      // Validated ONCE against the strictest limits, before any target receives anything.
      return publish('task', body, prepareTaskPublish(name, capabilities, body, options));
    },

    async sharePublish(body, options) {
      ensureOpen();
      return publish('share', body, prepareSharePublish(name, capabilities, body, options));
    },

    // Consumers, dead letters and re-drives use the consuming target; their input is checked here
    // too, so bad input is reported under the tee's name like everything else.
    async taskConsume(handler, options) {
      ensureOpen();
      prepareTaskConsume(name, handler, options);
      return remember(await consumer.taskConsume(handler, options));
    },

    async shareConsume(handler, options) {
      ensureOpen();
      prepareShareConsume(name, capabilities, handler, options);
      return remember(await consumer.shareConsume(handler, options));
    },

    async listDeadLetters(target) {
      ensureOpen();
      prepareDeadLetterTarget(name, target);
      return consumer.listDeadLetters(target);
    },

    async redriveDeadLetters(target, options) {
      ensureOpen();
      prepareDeadLetterTarget(name, target);
      return consumer.redriveDeadLetters(target, options);
    },

    // Kinds and subscriptions exist where consumers run (a mirror's own, e.g. a replay subscription
    // opened through `target()`, is removed through `target()` too).
    async unregister(target) {
      ensureOpen();
      prepareDeadLetterTarget(name, target);
      if (!consumer.unregister || !capabilities.unregister) {
        const message = `unregister is not supported by the consuming target ${consuming.name}`;
        throw new UnsupportedError({ driver: name, feature: 'unregister', message });
      }
      try {
        return await consumer.unregister(target);
      } catch (error) {
        // "In use" is about this tee's kind or subscription: say so in the tee's name.
        if (!TopologyError.isInstance(error)) throw error;
        throw new TopologyError({ driver: name, resource: error.resource, message: error.message, cause: error });
      }
    },

    target(nameOrIndex: string | number): Driver {
      return (targets[findTarget(name, targets, nameOrIndex, 'target')] as Target).driver;
    },

    outboxDepth,

    stats(): TeeStats {
      const statsOf = (target: Target, index: number): TeeTargetStats => {
        const outbox = outboxes[index - 1]; // mirrors in 'primary' mode only
        return {
          name: target.name,
          role: index === 0 ? 'primary' : 'mirror',
          consuming: index === settings.consumeFrom,
          confirmed: target.confirmed,
          failedAttempts: target.failedAttempts,
          unconfirmed: outbox?.backlog ?? 0,
          outboxDepth: outbox?.depth ?? 0,
          failing: outbox?.failing ?? false,
        };
      };
      return { mode: settings.mode, published, rejected, inFlight, outboxDepth: outboxDepth(), targets: targets.map(statsOf) };
    },

    async flush(options?: { timeoutMs?: number }): Promise<TeeFlushResult> {
      const caughtUp = await waitIdle(deadline(options));
      return { caughtUp, unconfirmed: unconfirmed(), outboxDepth: outboxDepth() };
    },

    closeWithReport,

    async close(options?: CloseOptions) {
      await closeWithReport(options);
    },
  };
  return driver;
}
