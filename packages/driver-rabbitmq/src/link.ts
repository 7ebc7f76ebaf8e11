import { backoffDelay, ConnectionError, DriverClosedError, type MqError } from '@mq-drivers/core';
import amqplib, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { connectError, topologyError } from './errors.js';
import { DRIVER_NAME, hostOf, type ResolvedOptions, redact } from './options.js';
import type { QueueSpec } from './topology.js';

export interface LinkHooks {
  /** A (re)connection is open; `generation` counts connections. */
  open(model: ChannelModel, generation: number): void;
  /** The connection was lost (not by our own close). */
  lost(error: MqError): void;
}

interface Waiter {
  resolve(model: ChannelModel): void;
  reject(error: unknown): void;
}

/**
 * Owns the AMQP connection: connects lazily, tries every URL in turn, reconnects with
 * exponential backoff and jitter after a loss, and tells its hooks when a connection opens or
 * is lost. An injected connection is used as is and never reconnected.
 */
export class Link {
  private model: ChannelModel | undefined;
  private connecting: Promise<ChannelModel> | undefined;
  private everConnected = false;
  private closed = false;
  private dead: MqError | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  private urlIndex = 0;
  private waiters: Waiter[] = [];
  generation = 0;
  lastError: MqError | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly hooks: LinkHooks,
  ) {}

  /** The open connection, if there is one right now. */
  get current(): ChannelModel | undefined {
    return this.model;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Resolves once a connection is open. Connects if nobody did yet; a failed first connect
   * rejects (the next call tries again). While reconnecting it waits, without a deadline of its
   * own; callers race it against theirs. Rejects when the driver closes.
   */
  whenOpen(): Promise<ChannelModel> {
    if (this.model) return Promise.resolve(this.model);
    if (this.closed) return Promise.reject(new DriverClosedError({ driver: DRIVER_NAME }));
    if (this.dead) return Promise.reject(this.dead);
    if (this.options.connection) {
      this.attach(this.options.connection);
      return Promise.resolve(this.options.connection);
    }
    if (!this.everConnected && !this.connecting) {
      this.connecting = this.connectAny().then(
        (model) => {
          this.connecting = undefined;
          this.attach(model);
          return model;
        },
        (error: unknown) => {
          this.connecting = undefined;
          const mapped = error as MqError;
          this.lastError = mapped;
          for (const waiter of this.waiters.splice(0)) waiter.reject(mapped);
          throw mapped;
        },
      );
      return this.connecting;
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** {@link whenOpen} with a deadline: `ConnectionError` naming the host once it passes. */
  ready(timeoutMs = this.options.connectTimeoutMs): Promise<ChannelModel> {
    if (this.model) return Promise.resolve(this.model);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new ConnectionError({
            driver: DRIVER_NAME,
            host: this.hosts(),
            message: `not connected to ${this.hosts()} within ${timeoutMs} ms${this.lastError ? ` (last error: ${this.lastError.message})` : ''}`,
            cause: this.lastError,
          }),
        );
      }, timeoutMs);
      this.whenOpen().then(
        (model) => {
          clearTimeout(timer);
          resolve(model);
        },
        (error) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  hosts(): string {
    if (this.options.urls.length === 0) return 'injected connection';
    return this.options.urls.map(hostOf).join(', ');
  }

  private connectUrl(url: string): Promise<ChannelModel> {
    const target = new URL(url);
    if (!target.searchParams.has('heartbeat')) target.searchParams.set('heartbeat', String(this.options.heartbeatSeconds));
    const timeout = this.options.connectTimeoutMs;
    const clientProperties: Record<string, unknown> = {
      ...(this.options.socketOptions.clientProperties ?? {}),
      ...(this.options.connectionName ? { connection_name: this.options.connectionName } : {}),
    };
    const socketOptions = { ...this.options.socketOptions, noDelay: this.options.noDelay, timeout, clientProperties };
    const host = hostOf(url);
    return new Promise<ChannelModel>((resolve, reject) => {
      let settled = false;
      // amqplib's socket timeout covers an idle TCP connect and handshake; this covers a slow trickle too.
      const guard = setTimeout(() => {
        settled = true;
        reject(connectError(new Error(`no AMQP connection within ${timeout} ms`), host));
      }, timeout + 500);
      amqplib.connect(target.toString(), socketOptions).then(
        (model) => {
          clearTimeout(guard);
          if (settled || this.closed) {
            model.close().catch(() => {});
            if (!settled) reject(new DriverClosedError({ driver: DRIVER_NAME }));
            return;
          }
          settled = true;
          resolve(model);
        },
        (error: unknown) => {
          clearTimeout(guard);
          if (settled) return;
          settled = true;
          reject(connectError(error, host));
        },
      );
    });
  }

  /** One round over the URLs, starting after the last one that worked. */
  private async connectAny(): Promise<ChannelModel> {
    const urls = this.options.urls;
    const failures: MqError[] = [];
    for (let i = 0; i < urls.length; i++) {
      if (this.closed) throw new DriverClosedError({ driver: DRIVER_NAME });
      const index = (this.urlIndex + i) % urls.length;
      const url = urls[index]!;
      try {
        const model = await this.connectUrl(url);
        this.urlIndex = index;
        return model;
      } catch (error) {
        failures.push(error as MqError);
      }
    }
    if (failures.length === 1) throw failures[0];
    // Several URLs: an authentication failure says the most; otherwise list every host.
    const auth = failures.find((f) => f.name === 'AuthenticationError');
    if (auth) throw auth;
    throw new ConnectionError({
      driver: DRIVER_NAME,
      host: this.hosts(),
      message: `cannot connect to any of ${urls.map(redact).join(', ')}: ${failures.map((f) => f.message).join('; ')}`,
      cause: failures[failures.length - 1],
    });
  }

  private attach(model: ChannelModel): void {
    this.model = model;
    this.everConnected = true;
    this.reconnectAttempt = 0;
    this.generation++;
    model.on('error', (error: Error) => {
      this.lastError = connectError(error, this.hosts());
    });
    model.on('close', (error?: Error) => this.onClose(model, error));
    model.on('blocked', (reason: string) => {
      this.options.onError(
        new ConnectionError({
          driver: DRIVER_NAME,
          host: this.hosts(),
          message: `broker blocked publishing (${reason}); publishes wait until it unblocks or time out`,
        }),
      );
    });
    for (const waiter of this.waiters.splice(0)) waiter.resolve(model);
    this.hooks.open(model, this.generation);
  }

  private onClose(model: ChannelModel, error?: Error): void {
    if (this.model !== model) return;
    this.model = undefined;
    if (this.closed) return;
    const lost = new ConnectionError({
      driver: DRIVER_NAME,
      host: this.hosts(),
      message: `connection to ${this.hosts()} lost: ${error?.message ?? 'closed'}${this.options.connection ? '' : '; reconnecting'}`,
      cause: error,
    });
    this.lastError = lost;
    if (this.options.connection) {
      this.dead = new ConnectionError({
        driver: DRIVER_NAME,
        host: this.hosts(),
        message: 'the injected connection is closed; the driver cannot reconnect a connection it does not own',
        cause: error,
      });
      for (const waiter of this.waiters.splice(0)) waiter.reject(this.dead);
    } else {
      this.scheduleReconnect();
    }
    this.hooks.lost(lost);
    this.options.onError(lost);
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectAttempt++;
    const delay = backoffDelay(this.reconnectAttempt, this.options.reconnectBackoff);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closed) return;
      this.connecting = this.connectAny();
      this.connecting.then(
        (model) => {
          this.connecting = undefined;
          this.attach(model);
        },
        (error: unknown) => {
          this.connecting = undefined;
          this.lastError = error as MqError;
          this.scheduleReconnect();
        },
      );
    }, delay);
  }

  /** Runs declarations on a channel of their own: a failed one (406...) closes only that channel. */
  async declare<T>(work: (declarer: Declarer) => Promise<T>, timeoutMs = this.options.connectTimeoutMs): Promise<T> {
    const model = await this.ready(timeoutMs);
    let channel: Channel;
    try {
      channel = await model.createChannel();
    } catch (error) {
      throw connectError(error, this.hosts());
    }
    channel.on('error', () => {});
    try {
      return await work(new Declarer(channel));
    } finally {
      channel.close().catch(() => {});
    }
  }

  /** A regular channel for a caller that manages it (consumers, dead-letter reads). */
  async channel(timeoutMs = this.options.connectTimeoutMs): Promise<Channel> {
    const model = await this.ready(timeoutMs);
    try {
      return await model.createChannel();
    } catch (error) {
      throw connectError(error, this.hosts());
    }
  }

  async confirmChannel(timeoutMs = this.options.connectTimeoutMs): Promise<ConfirmChannel> {
    const model = await this.ready(timeoutMs);
    try {
      return await model.createConfirmChannel();
    } catch (error) {
      throw connectError(error, this.hosts());
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const closedError = new DriverClosedError({ driver: DRIVER_NAME });
    for (const waiter of this.waiters.splice(0)) waiter.reject(closedError);
    const model = this.model;
    this.model = undefined;
    if (this.connecting) {
      this.connecting.then(
        (late) => late.close().catch(() => {}),
        () => {},
      );
    }
    if (model && !this.options.connection) {
      await model.close().catch(() => {});
    }
  }
}

/** Declarations with errors that name the resource and say why. */
export class Declarer {
  constructor(readonly channel: Channel) {}

  async exchange(name: string, type: 'fanout' | 'topic'): Promise<void> {
    try {
      await this.channel.assertExchange(name, type, { durable: true });
    } catch (error) {
      throw topologyError(error, 'exchange', name);
    }
  }

  async queue(spec: QueueSpec): Promise<void> {
    try {
      await this.channel.assertQueue(spec.name, spec.options);
    } catch (error) {
      throw topologyError(error, 'queue', spec.name);
    }
  }

  async bind(queue: string, exchange: string, pattern: string, args?: Record<string, unknown>): Promise<void> {
    try {
      await this.channel.bindQueue(queue, exchange, pattern, args);
    } catch (error) {
      throw topologyError(error, 'binding', `${queue} <- ${exchange} (${pattern})`);
    }
  }

  /** True when the queue exists (a 404 closes this channel, so call it last). */
  async exists(queue: string): Promise<boolean> {
    try {
      await this.channel.checkQueue(queue);
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === 404) return false;
      throw topologyError(error, 'queue', queue);
    }
  }
}
