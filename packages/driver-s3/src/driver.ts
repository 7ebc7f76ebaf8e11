import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import {
  type Capabilities,
  type DeadLetter,
  type DeadLetterTarget,
  type Driver,
  DriverClosedError,
  type DriverDefinition,
  type EngineSubscription,
  type Handler,
  type JsonValue,
  type PublishReceipt,
  prepareDeadLetterTarget,
  prepareShareConsume,
  prepareSharePublish,
  prepareTaskConsume,
  prepareTaskPublish,
  redactUrl,
  type ShareConsumeOptions,
  type SharePublishOptions,
  SPECIFICATION_VERSION,
  type Subscription,
  type TaskConsumeOptions,
  type TaskPublishOptions,
  TopologyError,
  type UnregisterResult,
} from '@mq-drivers/core';
import { type Context, newOwner } from './context.js';
import { DeadLetters } from './dead-letters.js';
import { encodeRecord, Keys, type LogType } from './layout.js';
import { LogReader, LogWriter } from './log.js';
import { DRIVER_NAME, parseS3Url, resolveOptions, type S3DriverOptions } from './options.js';
import { Retention } from './retention.js';
import { openShareSubscription, parseCursor } from './share.js';
import { Store } from './store.js';
import { announceWorker, openTaskWorker } from './tasks.js';
import { unregisterKind, unregisterSubscription } from './unregister.js';

/** Largest message (JSON body plus header keys and values) the driver accepts: 1 MiB. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

export const capabilities: Capabilities = Object.freeze({
  durable: true,
  replay: true,
  ordering: 'per-publisher',
  deadLetter: true,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  unregister: true,
});

/** Endpoint checks done (or running) in this process, by endpoint|bucket: one probe for many drivers. */
const verified = new Map<string, Promise<void>>();

/**
 * Creates an S3 driver: a numbered, gap-free message log per segment in a bucket, with share
 * subscriptions that tail it and task kinds that compete for ranges of it. Nothing is sent before the
 * first call; the bucket is checked (and conditional writes verified) once, on first use.
 */
export function createS3Driver(options: S3DriverOptions): Driver {
  const resolved = resolveOptions(options);
  const ownsClient = resolved.client === undefined;
  // Our own keep-alive pools, so that a request timeout can empty them (`dropIdleSockets`).
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 256 });
  const client =
    resolved.client ??
    new S3Client({
      region: resolved.region,
      endpoint: resolved.endpoint,
      forcePathStyle: resolved.forcePathStyle,
      credentials: resolved.credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: Math.min(5000, resolved.requestTimeoutMs),
        requestTimeout: resolved.requestTimeoutMs,
        httpAgent,
        httpsAgent,
      },
    });
  // Shown in error messages: never with a password (an endpoint URL may carry user info).
  const endpointLabel = resolved.endpoint !== undefined ? redactUrl(resolved.endpoint) : `s3.${resolved.region}.amazonaws.com`;
  // After a request got no answer, the idle pooled connections are suspect too: opened before the
  // trouble, they may lead into a black hole that never closes them, and every later request would
  // take one and wait its whole timeout. Drop them; the next requests open fresh ones.
  const dropIdleSockets = (): void => {
    if (!ownsClient) return;
    for (const agent of [httpAgent, httpsAgent]) {
      for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
    }
  };
  const store = new Store(client, resolved.bucket, endpointLabel, resolved.requestTimeoutMs, dropIdleSockets);
  const keys = new Keys(resolved.prefix);
  const logs = new LogReader(store, keys);
  const deadLetters = new DeadLetters(store, keys);

  let readyPromise: Promise<void> | undefined;
  const ready = (): Promise<void> => {
    readyPromise ??= (async () => {
      const id = `${endpointLabel}|${resolved.bucket}|${resolved.verifyConditionalWrites}`;
      let check = ownsClient ? verified.get(id) : undefined;
      if (!check) {
        check = (async () => {
          await store.ensureBucket(resolved.createBucket);
          if (resolved.verifyConditionalWrites) await store.verifyConditionalWrites(keys.probe(randomUUID()));
        })();
        if (ownsClient) verified.set(id, check);
        check.catch(() => verified.delete(id));
      }
      await check;
    })().catch((error) => {
      readyPromise = undefined; // a later call tries again
      throw error;
    });
    return readyPromise;
  };

  const ctx: Context = { options: resolved, store, keys, logs, owner: newOwner(), ready, deadLetters };
  const writers = new Map<string, LogWriter>();
  const subscriptions = new Set<EngineSubscription>();
  const retention = resolved.retentionMs === undefined ? undefined : new Retention(ctx, resolved.retentionMs);
  /** Consumers open or opening in this driver, by the folder of their kind or subscription. */
  const users = new Map<string, number>();
  /** `unregister` calls in progress, by that folder: a consumer of it opens after them. */
  const removing = new Map<string, Promise<unknown>>();
  let closed = false;

  const use = (dir: string): void => void users.set(dir, (users.get(dir) ?? 0) + 1);
  const release = (dir: string): void => {
    const left = (users.get(dir) ?? 1) - 1;
    if (left > 0) users.set(dir, left);
    else users.delete(dir);
  };
  /** Waits for an `unregister` of `dir` in progress, then counts a consumer of it as opening. */
  const opening = async (dir: string): Promise<void> => {
    for (let pending = removing.get(dir); pending; pending = removing.get(dir)) await pending.catch(() => undefined);
    use(dir);
  };

  const checkOpen = (): void => {
    if (closed) throw new DriverClosedError({ driver: DRIVER_NAME });
  };

  const writer = (segment: string, type: LogType): LogWriter => {
    const id = `${type}:${segment}`;
    let found = writers.get(id);
    if (!found) {
      found = new LogWriter(store, keys, logs, resolved, ready, segment, type);
      writers.set(id, found);
      retention?.track(segment, type);
    }
    return found;
  };

  /**
   * Opens a consumer of the kind or subscription folder `dir` (after an `unregister` of it in
   * progress): counted as a user of `dir` from now until it has closed, and closed with the driver.
   */
  const consumer = async (
    dir: string,
    segment: string,
    type: LogType,
    open: (onClosed: () => void) => Promise<EngineSubscription>,
  ): Promise<EngineSubscription> => {
    await opening(dir);
    let subscription: EngineSubscription | undefined;
    try {
      await ready();
      subscription = await open(() => {
        if (subscription) subscriptions.delete(subscription);
        release(dir);
      });
    } catch (error) {
      release(dir);
      throw error;
    }
    subscriptions.add(subscription);
    if (closed) {
      // The driver closed while this one started (after `open` checked): it closes too.
      await subscription.close();
      checkOpen();
    }
    retention?.track(segment, type);
    return subscription;
  };

  const ownerDirOf = (target: { segment: string; kind?: string; subscription?: string }): string =>
    target.kind !== undefined ? keys.kind(target.segment, target.kind) : keys.subscription(target.segment, target.subscription!);

  return {
    specificationVersion: SPECIFICATION_VERSION,
    name: DRIVER_NAME,
    capabilities,

    async taskPublish(body: JsonValue, publishOptions: TaskPublishOptions): Promise<PublishReceipt> {
      checkOpen();
      const prepared = prepareTaskPublish(DRIVER_NAME, capabilities, body, publishOptions);
      await writer(prepared.segment, 'task').publish(encodeRecord(prepared, 'task'), prepared.id);
      return { id: prepared.id };
    },

    async sharePublish(body: JsonValue, publishOptions: SharePublishOptions): Promise<PublishReceipt> {
      checkOpen();
      const prepared = prepareSharePublish(DRIVER_NAME, capabilities, body, publishOptions);
      await writer(prepared.segment, 'share').publish(encodeRecord(prepared, 'share'), prepared.id);
      return { id: prepared.id };
    },

    async taskConsume<Body extends JsonValue = JsonValue>(
      handler: Handler<Body>,
      consumeOptions: TaskConsumeOptions,
    ): Promise<Subscription> {
      checkOpen();
      const spec = prepareTaskConsume(DRIVER_NAME, handler, consumeOptions);
      const dir = keys.kind(spec.segment, spec.kind);
      return consumer(dir, spec.segment, 'task', (onClosed) =>
        openTaskWorker(ctx, handler as Handler, spec, checkOpen, () => {
          onClosed();
          // Workers of one driver share a presence object, which a closing one deletes: keep it for the others.
          if (users.has(dir) && !closed) void announceWorker(ctx, spec.segment, spec.kind, spec.prefetch).catch(() => undefined);
        }),
      );
    },

    async shareConsume<Body extends JsonValue = JsonValue>(
      handler: Handler<Body>,
      consumeOptions: ShareConsumeOptions,
    ): Promise<Subscription> {
      checkOpen();
      const spec = prepareShareConsume(DRIVER_NAME, capabilities, handler, consumeOptions);
      // A bad cursor is refused before anything is sent.
      if (typeof spec.from === 'object' && !(spec.from instanceof Date)) parseCursor(spec.from.cursor);
      const name = spec.name ?? `ephemeral-${randomUUID().slice(0, 18)}`;
      return consumer(keys.subscription(spec.segment, name), spec.segment, 'share', (onClosed) =>
        openShareSubscription(ctx, handler as Handler, spec, name, checkOpen, onClosed),
      );
    },

    async listDeadLetters(target: DeadLetterTarget): Promise<DeadLetter[]> {
      checkOpen();
      const checked = prepareDeadLetterTarget(DRIVER_NAME, target);
      await ready();
      return deadLetters.list(keys.deadLetters(checked.segment, checked));
    },

    async redriveDeadLetters(target: DeadLetterTarget, redriveOptions: { ids?: readonly string[] } = {}): Promise<number> {
      checkOpen();
      const checked = prepareDeadLetterTarget(DRIVER_NAME, target);
      await ready();
      return deadLetters.redrive(ctx, keys.deadLetters(checked.segment, checked), ownerDirOf(checked), redriveOptions?.ids);
    },

    async unregister(target: DeadLetterTarget): Promise<UnregisterResult> {
      checkOpen();
      const checked = prepareDeadLetterTarget(DRIVER_NAME, target);
      const dir = ownerDirOf(checked);
      const what =
        checked.kind !== undefined
          ? `kind "${checked.kind}" of segment "${checked.segment}": a worker of it is open in this driver`
          : `subscription "${checked.subscription}" of segment "${checked.segment}": it is open in this driver`;
      // One removal of a target at a time; consumers of it that open meanwhile wait for it (`opening`).
      for (let pending = removing.get(dir); pending; pending = removing.get(dir)) await pending.catch(() => undefined);
      checkOpen();
      if (users.has(dir)) {
        throw new TopologyError({ driver: DRIVER_NAME, resource: dir, message: `cannot unregister ${what}; close it first` });
      }
      const removal = (async () => {
        await ready();
        return checked.kind !== undefined
          ? unregisterKind(ctx, checked.segment, checked.kind)
          : unregisterSubscription(ctx, checked.segment, checked.subscription);
      })();
      removing.set(dir, removal);
      try {
        return await removal;
      } finally {
        removing.delete(dir);
      }
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await retention?.stop();
      await Promise.all([...subscriptions].map((s) => s.close()));
      await Promise.all([...writers.values()].map((w) => w.drain()));
      if (ownsClient) {
        client.destroy();
        httpAgent.destroy();
        httpsAgent.destroy();
      }
    },
  };
}

/** The driver definition for `connect('s3://bucket/prefix?endpoint=...')`. URL settings are overridden by `options`. */
export const driver: DriverDefinition<Partial<S3DriverOptions>> = {
  name: DRIVER_NAME,
  schemes: ['s3'],
  create(url: string, options: Partial<S3DriverOptions> = {}): Driver {
    return createS3Driver({ ...parseS3Url(url), ...options } as S3DriverOptions);
  },
};
