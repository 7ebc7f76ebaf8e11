import { MqError } from '@mq-drivers/core';
import type { Context } from './context.js';
import type { LogType, Registration } from './layout.js';
import { DRIVER_NAME } from './options.js';

/** Deletes of one sweep in flight at once. */
const DELETE_CONCURRENCY = 8;
/** Longest pause between two sweeps. */
const MAX_SWEEP_EVERY_MS = 60_000;

/**
 * Retention: every `min(retentionMs / 2, 60 s)`, deletes the log objects older than `retentionMs`
 * (S3 `LastModified`) of every log this driver has written to or read from. Never the highest
 * number of a log (a writer that found the head by listing could otherwise re-create a number
 * readers have passed), and never a task log object that a registered kind has not finished.
 * Share log objects go by age alone. LAYOUT.md, "Retention", has the rules and their reasons.
 */
export class Retention {
  private readonly logs = new Map<string, { segment: string; type: LogType }>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly ctx: Context,
    private readonly retentionMs: number,
  ) {}

  /** How long between sweeps: half the retention, so an object outlives it by at most half. */
  get every(): number {
    return Math.min(MAX_SWEEP_EVERY_MS, this.retentionMs / 2);
  }

  /** Adds a log to the sweep; the first call starts the timer (the first sweep is one interval away). */
  track(segment: string, type: LogType): void {
    if (this.stopped) return;
    this.logs.set(`${type}:${segment}`, { segment, type });
    if (!this.timer) this.schedule();
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      // `.catch`: a throwing `onError` must neither stop the sweeps nor become an unhandled rejection.
      this.sweeping = this.sweep()
        .catch(() => undefined)
        .finally(() => {
          this.sweeping = undefined;
          if (!this.stopped) this.schedule();
        });
    }, this.every);
    this.timer.unref?.();
  }

  /** One pass over every tracked log. One cutoff for all, so logs of one segment are judged alike. */
  async sweep(): Promise<void> {
    const cutoff = Date.now() - this.retentionMs;
    for (const { segment, type } of [...this.logs.values()]) {
      if (this.stopped) return;
      try {
        await this.ctx.ready();
        await this.sweepLog(segment, type, cutoff);
      } catch (error) {
        if (this.stopped) return;
        const reason = MqError.isInstance(error) ? error.message.replace(/^s3: /, '') : String(error);
        this.ctx.options.onError(
          new MqError({
            driver: DRIVER_NAME,
            message: `retention sweep of ${this.ctx.keys.logDir(segment, type)} failed (next try in ${this.every} ms): ${reason}`,
            cause: error,
          }),
        );
      }
    }
  }

  private async sweepLog(segment: string, type: LogType, cutoff: number): Promise<void> {
    // The log first, the kinds after: a kind registered after this listing starts at a number
    // written after it (head + 1), so it cannot need an object this listing found old.
    let old = await this.ctx.logs.writtenBefore(segment, type, cutoff);
    if (old.length > 0 && type === 'task') {
      const limit = await this.finishedBelow(segment);
      old = old.filter((seq) => seq < limit);
    }
    if (old.length === 0) return;
    for (let i = 0; i < old.length && !this.stopped; i += DELETE_CONCURRENCY) {
      await Promise.all(
        old.slice(i, i + DELETE_CONCURRENCY).map((seq) => this.ctx.store.delete(this.ctx.keys.log(segment, type, seq))),
      );
    }
    // Readers waiting at a deleted number learn it from the hint (DeletedCheck): make sure it points
    // past every deleted number. The lowest kept number exists (the listing went on to it); a hint
    // already higher stays, as head lookups list from it.
    const kept = old[old.length - 1]! + 1;
    if (this.stopped || (await this.ctx.logs.hint(segment, type)) >= kept) return;
    await this.ctx.store.put(this.ctx.keys.headHint(segment, type), JSON.stringify({ seq: kept }));
  }

  /**
   * Every task log object below this number is done for every registered kind: the lowest of
   * `max(registration, watermark)` over the kinds that have a `registration.json`. With no kind
   * registered, no one would ever receive a task (a kind starts at the head when it registers), so
   * age alone decides.
   */
  private async finishedBelow(segment: string): Promise<number> {
    const dirs = await this.ctx.store.listDirs(this.ctx.keys.kindsDir(segment));
    const marks = await Promise.all(
      dirs.map(async (dir) => {
        const [registration, watermark] = await Promise.all([
          this.ctx.store.getJson<Registration>(`${dir}registration.json`),
          this.ctx.store.getJson<{ seq?: number }>(`${dir}watermark.json`),
        ]);
        // No registration: not a registered kind (`unregister` deletes it first; what an interrupted
        // removal, or a worker of another process that missed it, leaves behind keeps nothing).
        if (!registration) return Number.POSITIVE_INFINITY;
        return Math.max(registration.seq, watermark?.seq ?? 0);
      }),
    );
    return Math.min(Number.POSITIVE_INFINITY, ...marks);
  }

  /** Stops sweeping; resolves once a sweep in progress has stopped (between two deletes). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.sweeping;
  }
}
