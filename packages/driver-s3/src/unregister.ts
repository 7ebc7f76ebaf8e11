import { randomUUID } from 'node:crypto';
import { TopologyError, type UnregisterResult } from '@mq-drivers/core';
import type { Context } from './context.js';
import type { Registration } from './layout.js';
import { DRIVER_NAME } from './options.js';
import type { ListedObject } from './store.js';
import { MAX_SCAN_EVERY_MS } from './tasks.js';

/** Deletes in flight at once. */
const DELETE_CONCURRENCY = 16;
/** `dropped` is counted (one HEAD per log object) only when the kind is at most this many log objects behind. */
const MAX_COUNTED_OBJECTS = 100;

/**
 * How long a worker's presence counts as live: a lease (workers rewrite it every half lease), and at
 * least two of the longest rewrite intervals, so a worker configured with a longer lease than ours is
 * not taken for dead between two rewrites.
 */
export function presenceLiveMs(leaseMs: number): number {
  return Math.max(leaseMs, 2 * MAX_SCAN_EVERY_MS);
}

/**
 * Removes a task kind: refuses while a worker's presence is fresh (a worker runs in another process;
 * the caller has checked this driver's own), else deletes `registration.json` first (the kind stops
 * being registered at once: retention no longer keeps tasks for it, and a worker that starts later
 * registers afresh at the head), then its retry area, the rest of `kinds/<kind>/` and its dead letters.
 * `dropped`: tasks that were waiting for it (unfinished log messages + retry objects), or undefined
 * when it is more than {@link MAX_COUNTED_OBJECTS} log objects behind.
 */
export async function unregisterKind(ctx: Context, segment: string, kind: string): Promise<UnregisterResult> {
  const dir = ctx.keys.kind(segment, kind);
  const lettersDir = ctx.keys.deadLetters(segment, { kind });
  const [listed, letters] = await Promise.all([ctx.store.list(dir), ctx.store.list(lettersDir)]);
  if (listed.length === 0 && letters.length === 0) return { dropped: 0 };

  const workersDir = ctx.keys.workers(segment, kind);
  const presences = listed.filter((entry) => entry.key.startsWith(workersDir));
  if (presences.length > 0) {
    const now = await serverNow(ctx);
    const liveMs = presenceLiveMs(ctx.options.leaseMs);
    const live = presences.filter((entry) => now - (entry.lastModified?.getTime() ?? now) < liveMs);
    if (live.length > 0) {
      const ages = live.map(
        (entry) =>
          `${entry.key.slice(workersDir.length)} ${Math.max(0, Math.round((now - entry.lastModified!.getTime()) / 1000))} s ago`,
      );
      throw new TopologyError({
        driver: DRIVER_NAME,
        resource: dir,
        message:
          `cannot unregister kind "${kind}" of segment "${segment}": a live worker of it was seen (presence ` +
          `${workersDir}<owner> rewritten within ${liveMs} ms: ${ages.join(', ')}); close it first ` +
          `(a worker that stopped without closing counts as live for ${liveMs} ms)`,
      });
    }
  }

  const dropped = await waitingTasks(ctx, segment, kind, listed);
  const registration = ctx.keys.registration(segment, kind);
  const retryDir = ctx.keys.retryDir(dir);
  const retryClaimDir = ctx.keys.retryClaimDir(dir);
  // Registration first: from here on the kind is not registered, whatever else a failure leaves.
  if (listed.some((entry) => entry.key === registration)) await ctx.store.delete(registration);
  const rest = listed.filter((entry) => entry.key !== registration).map((entry) => entry.key);
  // Then what a worker starting later would deliver (the retry area), then the bookkeeping.
  await deleteAll(ctx, [
    ...rest.filter((key) => key.startsWith(retryDir)),
    ...rest.filter((key) => key.startsWith(retryClaimDir)),
  ]);
  await deleteAll(
    ctx,
    rest.filter((key) => !key.startsWith(retryDir) && !key.startsWith(retryClaimDir)),
  );
  await deleteAll(
    ctx,
    letters.map((entry) => entry.key),
  );
  return { dropped };
}

/**
 * Removes a named share subscription (the caller has checked that this driver has none open; other
 * processes leave no trace of an open subscription): `cursor.json` first (a subscription opened later
 * by the name starts afresh), then its retry area and dead letters. `dropped` is undefined: the
 * messages waiting for it depend on its topics, which are not stored.
 */
export async function unregisterSubscription(ctx: Context, segment: string, name: string): Promise<UnregisterResult> {
  const dir = ctx.keys.subscription(segment, name);
  const lettersDir = ctx.keys.deadLetters(segment, { subscription: name });
  const [listed, letters] = await Promise.all([ctx.store.list(dir), ctx.store.list(lettersDir)]);
  if (listed.length === 0 && letters.length === 0) return { dropped: 0 };
  const cursor = ctx.keys.cursor(segment, name);
  if (listed.some((entry) => entry.key === cursor)) await ctx.store.delete(cursor);
  const retryDir = ctx.keys.retryDir(dir);
  const rest = listed.filter((entry) => entry.key !== cursor).map((entry) => entry.key);
  await deleteAll(ctx, [...rest.filter((key) => key.startsWith(retryDir)), ...rest.filter((key) => !key.startsWith(retryDir))]);
  await deleteAll(
    ctx,
    letters.map((entry) => entry.key),
  );
  return { dropped: undefined };
}

/**
 * Tasks waiting for the kind: the messages of log objects from its position (registration or
 * watermark) to the head that no done marker covers, plus its retry objects. Without a
 * registration (what an interrupted unregister leaves), only the retry objects.
 */
async function waitingTasks(ctx: Context, segment: string, kind: string, listed: ListedObject[]): Promise<number | undefined> {
  const retryDir = ctx.keys.retryDir(ctx.keys.kind(segment, kind));
  const retries = listed.filter((entry) => entry.key.startsWith(retryDir)).length;
  const [registration, watermark] = await Promise.all([
    ctx.store.getJson<Registration>(ctx.keys.registration(segment, kind)),
    ctx.store.getJson<{ seq?: number }>(ctx.keys.watermark(segment, kind)),
  ]);
  if (!registration) return retries;
  const from = Math.max(registration.seq, watermark?.seq ?? 0);
  const head = await ctx.logs.head(segment, 'task');
  if (head - from + 1 > MAX_COUNTED_OBJECTS) return undefined;
  const doneDir = ctx.keys.done(segment, kind);
  const resolved = new Map<number, number>();
  for (const entry of listed) {
    const done = entry.key.startsWith(doneDir) ? ctx.keys.doneOf(entry.key) : undefined;
    // Ranges of one object form a chain and never overlap.
    if (done && done.seq >= from) resolved.set(done.seq, (resolved.get(done.seq) ?? 0) + done.end - done.start);
  }
  const seqs = Array.from({ length: Math.max(0, head - from + 1) }, (_, i) => from + i);
  let waiting = retries;
  for (let i = 0; i < seqs.length; i += DELETE_CONCURRENCY) {
    const counts = await Promise.all(seqs.slice(i, i + DELETE_CONCURRENCY).map((seq) => recordCount(ctx, segment, seq)));
    counts.forEach((count, j) => {
      waiting += Math.max(0, count - (resolved.get(seqs[i + j]!) ?? 0));
    });
  }
  return waiting;
}

/** Records in task log object `seq`, from its `count` metadata (one HEAD); 0 when retention deleted it. */
async function recordCount(ctx: Context, segment: string, seq: number): Promise<number> {
  const metadata = await ctx.store.head(ctx.keys.log(segment, 'task', seq));
  if (metadata === undefined) return 0; // deleted: retention deletes only what every kind has done
  const count = Number(metadata.count);
  if (Number.isInteger(count) && count >= 0) return count;
  return (await ctx.logs.read(segment, 'task', seq))?.length ?? 0;
}

/**
 * The endpoint's current time: the `LastModified` of a probe object written now. Presence ages are
 * measured on the endpoint's clock alone, so they do not depend on this process's clock.
 */
async function serverNow(ctx: Context): Promise<number> {
  const key = ctx.keys.probe(randomUUID());
  await ctx.store.put(key, '{"probe":"clock"}');
  try {
    const [entry] = await ctx.store.list(key, { limit: 1 });
    return entry?.lastModified?.getTime() ?? Date.now();
  } finally {
    await ctx.store.delete(key).catch(() => undefined);
  }
}

async function deleteAll(ctx: Context, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += DELETE_CONCURRENCY) {
    await Promise.all(keys.slice(i, i + DELETE_CONCURRENCY).map((key) => ctx.store.delete(key)));
  }
}
