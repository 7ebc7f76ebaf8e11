import {
  type Capabilities,
  type CloseOptions,
  type DeadLetterTarget,
  type Driver,
  DriverClosedError,
  InvalidArgumentError,
  type JsonValue,
  type PreparedPublish,
  PublishError,
  type PublishReceipt,
  prepareDeadLetterTarget,
  prepareShareConsume,
  prepareSharePublish,
  prepareTaskConsume,
  prepareTaskPublish,
  type SharePublishOptions,
  SPECIFICATION_VERSION,
  type Subscription,
  type TaskPublishOptions,
  TopologyError,
  UnsupportedError,
  validateNonNegativeNumber,
} from '@mq-drivers/core';
import { TeePublishError, type TeeTargetFailure } from './errors/tee-publish-error.js';
import { type Copy, Lane, send, type TargetPublishOptions } from './lane.js';
import {
  isDriver,
  type ResolvedOptions,
  resolveOptions,
  resolveTargets,
  type TeeCloseReport,
  type TeeMode,
  type TeeOptions,
  type TeeTargets,
  type UndeliveredCopy,
} from './options.js';

/** Per-target numbers from {@link TeeDriver.stats}. */
export interface TeeTargetStats {
  readonly name: string;
  readonly role: 'primary' | 'mirror';
  /** True for the target consumers read from (`consumeFrom`). */
  readonly consuming: boolean;
  /** Copies this target confirmed. */
  readonly confirmed: number;
  /** Failed publish attempts on this target (first tries and retries). */
  readonly failedAttempts: number;
  /** `mode: 'primary'`, mirrors: copies not yet confirmed (in flight, waiting or being retried); at most `outboxLimit`. */
  readonly unconfirmed: number;
  /** `mode: 'primary'`, mirrors: copies that failed at least once and wait for (or are in) a retry. */
  readonly outboxDepth: number;
  /** `mode: 'primary'`, mirrors: the last attempt failed; new copies queue behind the outbox until a retry succeeds. */
  readonly failing: boolean;
}

export interface TeeStats {
  readonly mode: TeeMode;
  /** Publishes that resolved. */
  readonly published: number;
  /** Publishes that rejected after validation (`TeePublishError`). */
  readonly rejected: number;
  /** Publishes still running. */
  readonly inFlight: number;
  /** Sum of the mirrors' outbox depths. */
  readonly outboxDepth: number;
  readonly targets: readonly TeeTargetStats[];
}

/** What {@link TeeDriver.flush} resolves to. It never rejects on timeout: check `caughtUp`. */
export interface TeeFlushResult {
  /** Every publish settled and every mirror confirmed every copy before the deadline. */
  readonly caughtUp: boolean;
  /** Copies still unconfirmed by mirrors (in flight or in the outbox). */
  readonly unconfirmed: number;
  readonly outboxDepth: number;
}

/** A driver that publishes to several targets. Everything that takes a `Driver` takes a tee. */
export interface TeeDriver extends Driver {
  readonly mode: TeeMode;
  /** Target names in order; `targets[0]` is the primary. */
  readonly targets: readonly string[];
  /** Name of the target consumers, dead letters and re-drives use. */
  readonly consumeFrom: string;
  /** Direct access to one target, by name or index, e.g. to replay history from a mirror. */
  target(nameOrIndex: string | number): Driver;
  /** Mirror copies that failed at least once and are not confirmed yet (`mode: 'primary'`). */
  outboxDepth(): number;
  stats(): TeeStats;
  /**
   * Waits until every publish settled and every mirror confirmed every copy, or until
   * `timeoutMs` (default 10000). Resolves either way; `caughtUp` tells which.
   */
  flush(options?: { timeoutMs?: number }): Promise<TeeFlushResult>;
  /**
   * Closes the tee: new calls reject with `DriverClosedError`; in-flight publishes, open
   * subscriptions and the outbox get until `timeoutMs` (default `closeTimeoutMs`) to finish;
   * then the targets are closed. Resolves to what could not be delivered.
   */
  closeWithReport(options?: CloseOptions): Promise<TeeCloseReport>;
  /** `closeWithReport()` without the report (the `Driver` contract); `onUndelivered` still gets it. */
  close(options?: CloseOptions): Promise<void>;
}

interface Waiter {
  resolve: () => void;
}

/**
 * Composes drivers: every publish goes to all targets concurrently with the SAME id;
 * consumption comes from one of them. See the README for the failure policy of each mode.
 *
 * ```ts
 * tee([primary, ...mirrors], options)   // names: each driver's name (`memory`, `memory#2` for repeats)
 * tee({ rabbit, s3 }, options)           // named targets; the first one is the primary
 * tee(primary, mirror1, mirror2, options)
 * ```
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
  if (rest.length > 1) {
    throw new InvalidArgumentError({
      driver: 'tee',
      argument: 'arguments',
      value: rest,
      message: 'call tee(targets, options) with a list or an object of drivers, or tee(primary, ...mirrors, options)',
    });
  }
  return createTee(first, (rest[0] as TeeOptions | undefined) ?? {});
}

function createTee(targetsInput: TeeTargets, optionsInput: TeeOptions): TeeDriver {
  const resolvedTargets = resolveTargets(targetsInput);
  const settings: ResolvedOptions = resolveOptions(optionsInput, resolvedTargets);
  const name = `tee(${resolvedTargets.map((target) => target.driver.name).join(',')})`;
  const waiters = new Set<Waiter>();
  const lanes = resolvedTargets.map(
    (target) =>
      new Lane(target.name, target.driver, {
        teeName: name,
        retryBackoff: settings.retryBackoff,
        retryConcurrency: settings.retryConcurrency,
        onMirrorError: settings.onMirrorError,
        changed: notify,
      }),
  );
  const primary = lanes[0] as Lane;
  const mirrors = lanes.slice(1);
  const consumer = (lanes[settings.consumeFrom] as Lane).driver;
  const consumed = consumer.capabilities;
  const refusedHeaders = [...new Set(lanes.flatMap((lane) => lane.driver.capabilities.refusedHeaders ?? []))];
  const capabilities: Capabilities = Object.freeze({
    durable: consumed.durable,
    replay: consumed.replay,
    // Copies retried from the outbox arrive late, so a mirror keeps no publish order in 'primary' mode.
    ordering: settings.mode === 'primary' && settings.consumeFrom !== 0 ? 'none' : consumed.ordering,
    deadLetter: consumed.deadLetter,
    maxMessageBytes: Math.min(...lanes.map((lane) => lane.driver.capabilities.maxMessageBytes)),
    unregister: consumed.unregister === true,
    // A header any target refuses is refused (by core's publish validation) before any target gets it.
    ...(refusedHeaders.length > 0 ? { refusedHeaders } : {}),
  });
  const subscriptions = new Set<Subscription>();
  let inFlight = 0;
  let published = 0;
  let rejected = 0;
  let closing: Promise<TeeCloseReport> | undefined;

  function ensureOpen(): void {
    if (closing) throw new DriverClosedError({ driver: name });
  }

  function unconfirmed(): number {
    let total = 0;
    for (const lane of mirrors) total += lane.backlog;
    return total;
  }

  function outboxDepth(): number {
    let total = 0;
    for (const lane of mirrors) total += lane.outboxDepth;
    return total;
  }

  function idle(): boolean {
    return inFlight === 0 && unconfirmed() === 0;
  }

  function notify(): void {
    if (waiters.size === 0 || !idle()) return;
    for (const waiter of waiters) waiter.resolve();
    waiters.clear();
  }

  function waitIdle(timeoutMs: number): Promise<boolean> {
    if (idle()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        resolve(idle());
      }, timeoutMs);
      waiters.add(waiter);
    });
  }

  function targetOptions(prepared: PreparedPublish): TargetPublishOptions {
    const options: TargetPublishOptions = { segment: prepared.segment, headers: prepared.headers, id: prepared.id };
    if (prepared.topic !== undefined) options.topic = prepared.topic;
    return options;
  }

  async function publishAll(kind: 'task' | 'share', body: unknown, prepared: PreparedPublish): Promise<PublishReceipt> {
    const options = targetOptions(prepared);
    const attempts = lanes.map((lane) => send(name, lane.name, lane.driver, kind, body, options));
    try {
      await Promise.all(attempts); // the common case, without building a report
      for (const lane of lanes) lane.confirmed++;
      return { id: prepared.id };
    } catch {
      // Some target failed: wait for every outcome and report them all.
    }
    const results = await Promise.allSettled(attempts);
    const failures: TeeTargetFailure[] = [];
    const succeeded: string[] = [];
    results.forEach((result, index) => {
      const lane = lanes[index] as Lane;
      if (result.status === 'fulfilled') {
        lane.confirmed++;
        succeeded.push(lane.name);
      } else {
        lane.failedAttempts++;
        failures.push({ target: lane.name, error: result.reason });
      }
    });
    if (failures.length > 0) {
      throw new TeePublishError({ driver: name, messageId: prepared.id, reason: 'targets-failed', failures, succeeded });
    }
    return { id: prepared.id };
  }

  async function publishPrimary(kind: 'task' | 'share', body: unknown, prepared: PreparedPublish): Promise<PublishReceipt> {
    // Capacity first: a full outbox rejects before ANY target receives the message.
    const full = mirrors.filter((lane) => lane.backlog >= settings.outboxLimit);
    if (full.length > 0) {
      throw new TeePublishError({
        driver: name,
        messageId: prepared.id,
        reason: 'outbox-full',
        succeeded: [],
        failures: full.map((lane) => ({
          target: lane.name,
          error: new PublishError({
            driver: name,
            messageId: prepared.id,
            message: `mirror ${lane.name} has ${lane.backlog} unconfirmed copies (outboxLimit ${settings.outboxLimit}); nothing was sent`,
          }),
        })),
        message: `outbox full: ${full.map((lane) => lane.name).join(', ')} at outboxLimit ${settings.outboxLimit}; message ${prepared.id} was sent to no target`,
      });
    }
    const options = targetOptions(prepared);
    for (const lane of mirrors) lane.backlog++;
    const primaryAttempt = send(name, primary.name, primary.driver, kind, body, options);
    // Each mirror's outcome, known once the primary's is: undefined = confirmed, else the error.
    const mirrorOutcomes = mirrors.map(async (lane): Promise<unknown> => {
      const copy: Copy = { kind, options, json: prepared.json, attempts: 0, lastError: undefined };
      const primaryOk = primaryAttempt.then(
        () => true,
        () => false,
      );
      if (lane.failing) {
        // The mirror is down: queue behind its outbox instead of hammering it.
        if (await primaryOk) {
          lane.enqueue(copy);
          return undefined;
        }
        lane.release(false);
        return new PublishError({
          driver: name,
          messageId: prepared.id,
          message: `not sent to mirror ${lane.name} (it is failing; the primary refused the message)`,
        });
      }
      const error = await lane.firstAttempt(copy, body);
      if (error === undefined) {
        lane.release(true);
        return undefined;
      }
      if (await primaryOk) lane.enqueue(copy);
      else lane.release(false);
      return error;
    });
    try {
      await primaryAttempt;
      primary.confirmed++;
    } catch (primaryError) {
      primary.failedAttempts++;
      // The message is not published: report every target's outcome; nothing goes to the outbox.
      const outcomes = await Promise.all(mirrorOutcomes);
      const failures: TeeTargetFailure[] = [{ target: primary.name, error: primaryError }];
      const succeeded: string[] = [];
      outcomes.forEach((outcome, index) => {
        const lane = mirrors[index] as Lane;
        if (outcome === undefined) succeeded.push(lane.name);
        else failures.push({ target: lane.name, error: outcome });
      });
      throw new TeePublishError({ driver: name, messageId: prepared.id, reason: 'targets-failed', failures, succeeded });
    }
    return { id: prepared.id };
  }

  async function publish(kind: 'task' | 'share', body: unknown, prepared: PreparedPublish): Promise<PublishReceipt> {
    inFlight++;
    try {
      const receipt =
        settings.mode === 'all' ? await publishAll(kind, body, prepared) : await publishPrimary(kind, body, prepared);
      published++;
      return receipt;
    } catch (error) {
      rejected++;
      throw error;
    } finally {
      inFlight--;
      notify();
    }
  }

  /**
   * Wraps a consuming target's subscription: `close()` options are checked under the tee's name
   * and every failure comes back as a rejected promise; the tee closes what is still open.
   */
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
        if (options !== undefined && (options === null || typeof options !== 'object')) {
          throw new InvalidArgumentError({ driver: name, argument: 'options', value: options, message: 'must be an object' });
        }
        if (options?.timeoutMs !== undefined) validateNonNegativeNumber(name, options.timeoutMs, 'timeoutMs');
        return inner.close(options);
      },
    };
    if (typeof inner.cursor === 'function') subscription.cursor = () => inner.cursor?.();
    subscriptions.add(subscription);
    return subscription;
  }

  async function shutdown(timeoutMs: number): Promise<TeeCloseReport> {
    const closingSubscriptions = [...subscriptions].map((subscription) =>
      subscription.close({ timeoutMs }).catch(() => undefined),
    );
    await waitIdle(timeoutMs);
    await Promise.all(closingSubscriptions);
    for (const lane of lanes) lane.stop();
    const undelivered: UndeliveredCopy[] = mirrors.flatMap((lane) => lane.undelivered());
    const closeFailures: { target: string; error: unknown }[] = [];
    if (settings.closeTargets) {
      const results = await Promise.allSettled(lanes.map((lane) => lane.driver.close()));
      results.forEach((result, index) => {
        if (result.status === 'rejected') closeFailures.push({ target: (lanes[index] as Lane).name, error: result.reason });
      });
    }
    if (undelivered.length > 0 && settings.onUndelivered) {
      try {
        settings.onUndelivered(undelivered);
      } catch {
        // The report is also returned by closeWithReport(); a failing callback must not break close.
      }
    }
    return Object.freeze({ undelivered: Object.freeze(undelivered), closeFailures: Object.freeze(closeFailures) });
  }

  function closeWithReport(options?: CloseOptions): Promise<TeeCloseReport> {
    if (!closing) {
      const timeoutMs =
        options?.timeoutMs === undefined
          ? settings.closeTimeoutMs
          : validateNonNegativeNumber(name, options.timeoutMs, 'timeoutMs');
      closing = shutdown(timeoutMs);
    }
    return closing;
  }

  const driver: TeeDriver = {
    specificationVersion: SPECIFICATION_VERSION,
    name,
    capabilities,
    mode: settings.mode,
    targets: Object.freeze(lanes.map((lane) => lane.name)),
    consumeFrom: (lanes[settings.consumeFrom] as Lane).name,

    async taskPublish(body: JsonValue, options: TaskPublishOptions) {
      ensureOpen();
      // Validated ONCE against the strictest limits, before any target receives anything.
      const prepared = prepareTaskPublish(name, capabilities, body, options);
      return publish('task', body, prepared);
    },

    async sharePublish(body: JsonValue, options: SharePublishOptions) {
      ensureOpen();
      const prepared = prepareSharePublish(name, capabilities, body, options);
      return publish('share', body, prepared);
    },

    async taskConsume(handler, options) {
      ensureOpen();
      // Checked here too, so bad input is reported under the tee's name like everything else.
      prepareTaskConsume(name, handler, options);
      return remember(await consumer.taskConsume(handler, options));
    },

    async shareConsume(handler, options) {
      ensureOpen();
      prepareShareConsume(name, capabilities, handler, options);
      return remember(await consumer.shareConsume(handler, options));
    },

    async listDeadLetters(target: DeadLetterTarget) {
      ensureOpen();
      prepareDeadLetterTarget(name, target);
      return consumer.listDeadLetters(target);
    },

    async redriveDeadLetters(target: DeadLetterTarget, options?: { ids?: readonly string[] }) {
      ensureOpen();
      prepareDeadLetterTarget(name, target);
      return consumer.redriveDeadLetters(target, options);
    },

    // Kinds and subscriptions exist where consumers run: on the consuming target (a mirror's own,
    // e.g. a replay subscription opened through `target()`, is removed through `target()` too).
    async unregister(target: DeadLetterTarget) {
      ensureOpen();
      prepareDeadLetterTarget(name, target);
      if (!consumer.unregister || !capabilities.unregister) {
        throw new UnsupportedError({
          driver: name,
          feature: 'unregister',
          message: `unregister is not supported by the consuming target ${lanes[settings.consumeFrom]?.name}`,
        });
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
      const index = typeof nameOrIndex === 'number' ? nameOrIndex : lanes.findIndex((lane) => lane.name === nameOrIndex);
      const lane = Number.isInteger(index) ? lanes[index] : undefined;
      if (!lane) {
        throw new InvalidArgumentError({
          driver: name,
          argument: 'target',
          value: nameOrIndex,
          message: `is not a target name or index (targets: ${lanes.map((l, i) => `${i}: ${l.name}`).join(', ')})`,
        });
      }
      return lane.driver;
    },

    outboxDepth,

    stats(): TeeStats {
      return {
        mode: settings.mode,
        published,
        rejected,
        inFlight,
        outboxDepth: outboxDepth(),
        targets: lanes.map((lane, index) => ({
          name: lane.name,
          role: index === 0 ? 'primary' : 'mirror',
          consuming: index === settings.consumeFrom,
          confirmed: lane.confirmed,
          failedAttempts: lane.failedAttempts,
          unconfirmed: index === 0 ? 0 : lane.backlog,
          outboxDepth: index === 0 ? 0 : lane.outboxDepth,
          failing: lane.failing,
        })),
      };
    },

    async flush(options?: { timeoutMs?: number }): Promise<TeeFlushResult> {
      const timeoutMs =
        options?.timeoutMs === undefined
          ? settings.closeTimeoutMs
          : validateNonNegativeNumber(name, options.timeoutMs, 'timeoutMs');
      const caughtUp = await waitIdle(timeoutMs);
      return { caughtUp, unconfirmed: unconfirmed(), outboxDepth: outboxDepth() };
    },

    closeWithReport,

    async close(options?: CloseOptions) {
      await closeWithReport(options);
    },
  };
  return driver;
}
