import { performance } from 'node:perf_hooks';
import { type Driver, errorText, type Message, type Subscription } from '@mq-drivers/core';
import {
  type ConsumerConfig,
  checkConfig,
  configError,
  type DispatcherConfig,
  type DispatcherConfigInput,
  loadConfig,
} from './config.js';
import { createLogger, redactUrl } from './logger.js';
import { type ConsumerMetrics, DispatcherMetrics, type Health, startHttp } from './metrics.js';
import { connectFor, loadModules } from './modules.js';
import type { Logger, ReadyHook, StartupHook, Worker, WorkerClass } from './types.js';

export interface RunOptions {
  /** A pino logger to use. Default: JSON lines on stdout, level from env `MQ_LOG_LEVEL` / `LOG_LEVEL`. */
  logger?: Logger;
  /** For a config object: the folder relative module paths and driver packages are resolved from. Default `process.cwd()`. */
  baseDir?: string;
  /** Environment used for `MQ_URL`. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export interface StopOptions {
  /** How long in-flight messages may take. Default the config's `shutdownGraceMs`. */
  timeoutMs?: number;
  /** Written to the logs, e.g. `SIGTERM`. */
  reason?: string;
}

export interface StopResult {
  /** Every in-flight message finished, every `shutdown()` and the driver's close succeeded. */
  clean: boolean;
  /** Messages still running (or waiting for an instance) at the deadline: handed back for redelivery, not acknowledged. */
  unfinished: number;
  /** `shutdown()` calls and closes that failed while stopping. */
  errors: number;
  reason: string;
}

/** A running dispatcher, as returned by {@link runWorkers}. */
export interface Dispatcher {
  readonly config: DispatcherConfig;
  readonly driver: Driver;
  readonly logger: Logger;
  readonly metrics: DispatcherMetrics;
  /** The port `/healthz` and `/metrics` are served on, when `http` is configured. */
  readonly httpPort: number | undefined;
  health(): Health;
  /**
   * Stops fetching, lets in-flight messages finish within the grace period, calls every
   * instance's `shutdown()`, closes the driver. Messages unfinished at the deadline are handed
   * back for redelivery. Idempotent: later calls return the first call's result.
   */
  stop(options?: StopOptions): Promise<StopResult>;
}

/** One worker instance. */
interface Live {
  worker: Worker;
  generation: number;
  logger: Logger;
  /** consume() calls running on it now. */
  active: number;
  /** Crashed: no new messages; shutdown(error) once its last call ends. */
  retired: boolean;
  error: unknown;
  shutdown: Promise<boolean> | undefined;
}

/** One consume() call (or a message waiting for a replacement instance). */
interface Call {
  handedBack: boolean;
}

/** One instance position of a consumer: its subscription and the instance behind it (replaced on crashes). */
interface Slot {
  consumer: ConsumerConfig;
  workerClass: WorkerClass;
  metrics: ConsumerMetrics;
  instance: number;
  subscription: Subscription | undefined;
  current: Live | undefined;
  /** A replacement being started (after the restart backoff). */
  pending: Promise<Live | undefined> | undefined;
  all: Set<Live>;
  running: Set<Call>;
  generation: number;
  /** Crashes since the last handled message: drives the backoff. */
  consecutive: number;
  restartTimes: number[];
  wakers: Set<() => void>;
}

function isChecked(config: DispatcherConfig | DispatcherConfigInput): config is DispatcherConfig {
  return 'lines' in config && 'baseDir' in config && typeof (config as DispatcherConfig).url === 'string';
}

const never = new Promise<never>(() => {});

async function within<T>(promise: Promise<T>, ms: number): Promise<{ done: true; value: T } | { done: false }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ done: false }>((resolve) => {
    timer = setTimeout(() => resolve({ done: false }), ms);
  });
  try {
    return await Promise.race([promise.then((value) => ({ done: true as const, value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs the consumers of a config: a YAML file path, a config from {@link loadConfig}, or a config
 * object written in code (classes and functions may be given directly). Resolves once every
 * consumer is subscribed and the `ready` hook ran; rejects (having cleaned up) when anything fails.
 */
export async function runWorkers(
  config: string | DispatcherConfig | DispatcherConfigInput,
  options: RunOptions = {},
): Promise<Dispatcher> {
  const env = options.env ?? process.env;
  let checked: DispatcherConfig;
  if (typeof config === 'string') {
    checked = await loadConfig(config, { env });
  } else if (isChecked(config)) {
    checked = config;
  } else {
    const result = checkConfig(config, { baseDir: options.baseDir ?? process.cwd(), env });
    if (!result.config) throw configError(result.problems);
    checked = result.config;
  }
  const loaded = await loadModules(checked);
  if (!loaded.modules) throw configError(loaded.problems);
  const logger = options.logger ?? createLogger(env);
  const runner = new Runner(checked, loaded.modules.classes, logger);
  await runner.start(loaded.modules.startup, loaded.modules.ready);
  return runner;
}

class Runner implements Dispatcher {
  readonly metrics: DispatcherMetrics;
  httpPort: number | undefined;
  private state: Health['status'] = 'starting';
  private driverInstance: Driver | undefined;
  private readonly slots: Slot[] = [];
  private http: { close(): Promise<void> } | undefined;
  private stopping: Promise<StopResult> | undefined;
  /** Set once subscriptions are closed: no replacement instance is started after that. */
  private final = false;
  /** Keeps the process alive until stopped, also on an in-process broker with nothing else pending. */
  private keepAlive: NodeJS.Timeout | undefined = setInterval(() => {}, 2 ** 30);

  constructor(
    readonly config: DispatcherConfig,
    private readonly classes: WorkerClass[],
    readonly logger: Logger,
  ) {
    this.metrics = new DispatcherMetrics(
      config.consumers.map((c) => c.name),
      { defaultMetrics: config.http?.defaultMetrics ?? false },
    );
  }

  get driver(): Driver {
    if (!this.driverInstance) throw new Error('dispatcher: not connected yet');
    return this.driverInstance;
  }

  health(): Health {
    const consumers = this.config.consumers.map((consumer) => {
      const slots = this.slots.filter((s) => s.consumer === consumer);
      return {
        name: consumer.name,
        instances: slots.filter((s) => s.current !== undefined).length,
        subscribed: slots.filter((s) => s.subscription !== undefined && !s.subscription.closed).length,
        crashLoop: slots.some((s) => this.inCrashLoop(s)),
      };
    });
    let status = this.state;
    if (status === 'running' && consumers.some((c) => c.crashLoop || c.subscribed < this.instancesOf(c.name))) {
      status = 'degraded';
    }
    return { status, consumers };
  }

  private instancesOf(name: string): number {
    return this.config.consumers.find((c) => c.name === name)?.instances ?? 0;
  }

  async start(startup: StartupHook | undefined, ready: ReadyHook | undefined): Promise<void> {
    const { config, logger } = this;
    const hookContext = { url: config.url, logger, configFile: config.file };
    try {
      if (config.http) {
        const http = await startHttp(config.http, this.metrics, () => this.health());
        this.http = http;
        this.httpPort = http.port;
        logger.info({ port: http.port, host: config.http.host }, `serving /healthz and /metrics on port ${http.port}`);
      }
      if (startup) {
        logger.debug('running startup hook');
        await startup(hookContext);
      }
      this.driverInstance = await connectFor(config);
      logger.info({ url: redactUrl(config.url), driver: this.driverInstance.name }, 'connected');
      config.consumers.forEach((consumer, index) => {
        for (let instance = 1; instance <= consumer.instances; instance++) {
          this.slots.push({
            consumer,
            workerClass: this.classes[index] as WorkerClass,
            metrics: this.metrics.forConsumer(consumer.name),
            instance,
            subscription: undefined,
            current: undefined,
            pending: undefined,
            all: new Set(),
            running: new Set(),
            generation: 0,
            consecutive: 0,
            restartTimes: [],
            wakers: new Set(),
          });
        }
      });
      for (const slot of this.slots) slot.current = this.construct(slot);
      for (const slot of this.slots) slot.subscription = await this.subscribe(slot);
      this.state = 'running';
      logger.info(
        {
          consumers: config.consumers.map((c) => ({
            name: c.name,
            instances: c.instances,
            prefetch: c.prefetch,
            maxAttempts: c.maxAttempts,
            ...(c.task ? { task: c.task } : { share: c.share }),
          })),
        },
        `running ${this.slots.length} worker instance${this.slots.length === 1 ? '' : 's'} of ${config.consumers.length} consumer${config.consumers.length === 1 ? '' : 's'}`,
      );
      if (ready) {
        logger.debug('running ready hook');
        await ready({ ...hookContext, driver: this.driverInstance });
      }
    } catch (error) {
      logger.error({ err: error }, `start failed: ${errorText(error)}`);
      await this.stop({ reason: 'start failed', timeoutMs: config.shutdownGraceMs });
      throw error;
    }
  }

  private construct(slot: Slot): Live {
    slot.generation++;
    const generation = slot.generation;
    const logger = this.logger.child({ consumer: slot.consumer.name, instance: slot.instance, generation });
    const worker = new slot.workerClass({
      consumer: slot.consumer.name,
      instance: slot.instance,
      generation,
      driver: this.driver,
      logger,
    });
    if (!worker || typeof worker.consume !== 'function') {
      throw new TypeError(`${slot.workerClass.name || 'worker class'} instance has no consume(message) method`);
    }
    const live: Live = { worker, generation, logger, active: 0, retired: false, error: undefined, shutdown: undefined };
    slot.all.add(live);
    return live;
  }

  private subscribe(slot: Slot): Promise<Subscription> {
    const { consumer } = slot;
    const handler = (message: Message) => this.handle(slot, message);
    const common = { segment: '', prefetch: consumer.prefetch, maxAttempts: consumer.maxAttempts };
    if (consumer.task) {
      return this.driver.taskConsume(handler, { ...common, segment: consumer.task.segment, topic: consumer.task.kind });
    }
    const share = consumer.share as NonNullable<ConsumerConfig['share']>;
    return this.driver.shareConsume(handler, {
      ...common,
      segment: share.segment,
      topics: share.topics,
      ...(share.name !== undefined ? { name: share.name } : {}),
    });
  }

  /** The driver's handler: runs the message on the slot's instance; a throw replaces the instance and is rethrown. */
  private async handle(slot: Slot, message: Message): Promise<void> {
    const call: Call = { handedBack: false };
    slot.running.add(call);
    try {
      const live = slot.current ?? (await slot.pending);
      // No instance (stopping): keep the message unacknowledged; close hands it back for redelivery.
      if (!live) return await never;
      const metrics = slot.metrics;
      live.active++;
      metrics.inFlight.inc();
      const started = performance.now();
      let failure: { error: unknown } | undefined;
      try {
        await live.worker.consume(message);
      } catch (error) {
        failure = { error };
      } finally {
        live.active--;
        metrics.inFlight.dec();
      }
      const seconds = (performance.now() - started) / 1000;
      const fields = () => ({ messageId: message.id, attempt: message.attempt, ms: Math.round(seconds * 1000) });
      if (call.handedBack) {
        live.logger.warn(
          { ...fields(), failed: failure !== undefined },
          'consume() ended after its message was handed back at the shutdown deadline; the result is ignored and the message will be redelivered',
        );
      } else if (failure) {
        const deadLettered = message.attempt >= slot.consumer.maxAttempts;
        metrics.failed.inc();
        metrics.failedSeconds.observe(seconds);
        if (deadLettered) metrics.deadLettered.inc();
        live.logger.warn(
          { ...fields(), maxAttempts: slot.consumer.maxAttempts, deadLettered, err: failure.error },
          deadLettered
            ? `consume() threw on the last attempt; the message goes to the dead-letter store: ${errorText(failure.error)}`
            : `consume() threw; the message will be redelivered: ${errorText(failure.error)}`,
        );
      } else {
        slot.consecutive = 0;
        metrics.handled.inc();
        metrics.handledSeconds.observe(seconds);
        if (live.logger.isLevelEnabled('debug')) live.logger.debug(fields(), 'handled');
      }
      if (failure) this.crash(slot, live, failure.error);
      if (live.retired && live.active === 0) void this.shutdownInstance(live, live.error);
      if (failure) throw failure.error;
    } finally {
      slot.running.delete(call);
    }
  }

  private inCrashLoop(slot: Slot): boolean {
    const since = Date.now() - this.config.restart.crashLoopWindowMs;
    return slot.restartTimes.filter((t) => t >= since).length >= this.config.restart.crashLoopRestarts;
  }

  private restartDelay(slot: Slot): number {
    const { baseMs, maxMs } = this.config.restart;
    if (this.stopping) return 0;
    return Math.min(maxMs, baseMs * 2 ** Math.min(slot.consecutive - 1, 30));
  }

  /** Counts a restart and logs it (and a crash loop); returns the backoff before the next instance. */
  private noteRestart(slot: Slot, cause: string, error: unknown): number {
    slot.consecutive++;
    const now = Date.now();
    slot.restartTimes.push(now);
    const since = now - this.config.restart.crashLoopWindowMs;
    slot.restartTimes = slot.restartTimes.filter((t) => t >= since);
    slot.metrics.restarts.inc();
    const delayMs = this.restartDelay(slot);
    const fields = {
      consumer: slot.consumer.name,
      instance: slot.instance,
      generation: slot.generation,
      restartInMs: delayMs,
      restartsInWindow: slot.restartTimes.length,
      err: error,
    };
    this.logger.warn(fields, `restarting worker instance after ${cause}: ${errorText(error)}`);
    if (slot.restartTimes.length >= this.config.restart.crashLoopRestarts) {
      this.logger.error(
        { ...fields, windowMs: this.config.restart.crashLoopWindowMs },
        `crash loop: ${slot.restartTimes.length} restarts of ${slot.consumer.name} #${slot.instance} within ${this.config.restart.crashLoopWindowMs} ms; next restart in ${delayMs} ms`,
      );
    }
    return delayMs;
  }

  /** Retires a crashed instance and starts its replacement after the restart backoff. */
  private crash(slot: Slot, live: Live, error: unknown): void {
    if (live.retired) return; // another message on the same instance failed first
    live.retired = true;
    live.error = error;
    if (slot.current === live) slot.current = undefined;
    const delayMs = this.noteRestart(slot, 'consume() threw', error);
    const pending = this.replace(slot, delayMs);
    slot.pending = pending;
    void pending.then(() => {
      if (slot.pending === pending) slot.pending = undefined;
    });
  }

  private async replace(slot: Slot, delayMs: number): Promise<Live | undefined> {
    let wait = delayMs;
    for (;;) {
      await this.sleep(slot, wait);
      if (this.final) return undefined;
      try {
        const live = this.construct(slot);
        slot.current = live;
        live.logger.info('worker instance replaced');
        return live;
      } catch (error) {
        wait = this.noteRestart(slot, 'the worker constructor threw', error);
      }
    }
  }

  private sleep(slot: Slot, ms: number): Promise<void> {
    if (ms <= 0 || this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        slot.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      slot.wakers.add(done);
    });
  }

  /** Calls `shutdown(error?)` once per instance; resolves false when it threw. */
  private shutdownInstance(live: Live, error?: unknown): Promise<boolean> {
    if (!live.shutdown) {
      live.shutdown = (async () => {
        try {
          if (typeof live.worker.shutdown === 'function') {
            if (error === undefined) await live.worker.shutdown();
            else await live.worker.shutdown(error);
          }
          live.logger.info({ crashed: error !== undefined }, 'worker instance shut down');
          return true;
        } catch (shutdownError) {
          live.logger.error({ err: shutdownError }, `shutdown() threw: ${errorText(shutdownError)}`);
          return false;
        }
      })();
    }
    return live.shutdown;
  }

  stop(options: StopOptions = {}): Promise<StopResult> {
    if (!this.stopping) this.stopping = this.doStop(options);
    return this.stopping;
  }

  private async doStop(options: StopOptions): Promise<StopResult> {
    const reason = options.reason ?? 'stop';
    const graceMs = options.timeoutMs ?? this.config.shutdownGraceMs;
    const deadline = Date.now() + graceMs;
    const remaining = () => Math.max(0, deadline - Date.now());
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    let errors = 0;
    if (wasRunning) {
      const inFlight = this.slots.reduce((n, s) => n + s.running.size, 0);
      this.logger.info(
        { reason, graceMs, inFlight },
        `stopping (${reason}): no new messages; waiting up to ${graceMs} ms for ${inFlight} in flight`,
      );
    }
    for (const slot of this.slots) for (const wake of [...slot.wakers]) wake();
    await Promise.all(
      this.slots.map(async (slot) => {
        if (!slot.subscription) return;
        try {
          await slot.subscription.close({ timeoutMs: remaining() });
        } catch (error) {
          errors++;
          this.logger.error(
            { consumer: slot.consumer.name, instance: slot.instance, err: error },
            'closing a subscription failed',
          );
        }
      }),
    );
    this.final = true;
    let unfinished = 0;
    for (const slot of this.slots) {
      for (const call of slot.running) {
        call.handedBack = true;
        unfinished++;
      }
    }
    if (unfinished > 0) {
      this.logger.warn(
        { unfinished },
        `shutdown deadline passed: ${unfinished} unfinished message(s) handed back for redelivery`,
      );
    }
    await Promise.all(this.slots.map((slot) => slot.pending));
    const bound = () => Math.max(remaining(), 1_000);
    const shutdowns = this.slots.flatMap((slot) =>
      [...slot.all].map(async (live) => {
        const outcome = await within(this.shutdownInstance(live, live.retired ? live.error : undefined), bound());
        if (!outcome.done) {
          live.logger.error('shutdown() did not finish in time');
          return false;
        }
        return outcome.value || live.retired; // a crashed instance's failing shutdown(error) was logged already
      }),
    );
    for (const ok of await Promise.all(shutdowns)) if (!ok) errors++;
    if (this.driverInstance) {
      try {
        const closed = await within(this.driverInstance.close(), bound());
        if (!closed.done) {
          errors++;
          this.logger.error('closing the driver did not finish in time');
        }
      } catch (error) {
        errors++;
        this.logger.error({ err: error }, `closing the driver failed: ${errorText(error)}`);
      }
    }
    await this.http?.close();
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
    this.state = 'stopped';
    const result: StopResult = { clean: unfinished === 0 && errors === 0, unfinished, errors, reason };
    if (wasRunning) this.logger.info(result, result.clean ? 'stopped cleanly' : 'stopped with unfinished work or errors');
    return result;
  }
}
