import { backoffDelay, PublishError } from '@mq-drivers/core';
import { TeePublishError } from './errors/tee-publish-error.js';
import type { ResolvedOptions } from './options.js';
import type { Target, TargetPublishOptions } from './target.js';
import type { UndeliveredCopy } from './types.js';

/** What an outbox needs of the tee's options, its name, and whom to tell when a backlog shrinks (flush waiters). */
export type OutboxSettings = Pick<ResolvedOptions, 'outboxLimit' | 'retryBackoff' | 'retryConcurrency' | 'onMirrorError'> & {
  teeName: string;
  changed: () => void;
};

/** One message for one mirror, until that mirror confirms it. */
interface Copy {
  readonly kind: 'task' | 'share';
  readonly options: TargetPublishOptions;
  /** The body as JSON, taken at publish time: retries never see later changes to the caller's object. */
  readonly json: string;
  attempts: number;
  lastError: unknown;
}

/**
 * Reserves one slot in every mirror's outbox for a message, or refuses it with `TeePublishError`
 * (`reason: 'outbox-full'`) BEFORE any target, the primary included, receives it.
 */
export function reserve(outboxes: readonly Outbox[], messageId: string, settings: OutboxSettings): void {
  const { teeName, outboxLimit } = settings;
  const full = outboxes.filter((outbox) => outbox.backlog >= outboxLimit);
  if (full.length === 0) {
    for (const outbox of outboxes) outbox.backlog++;
    return;
  }
  const failures = full.map(({ mirror, backlog }) => ({
    target: mirror.name,
    error: new PublishError({
      driver: teeName,
      messageId,
      message: `mirror ${mirror.name} has ${backlog} unconfirmed copies (outboxLimit ${outboxLimit}); nothing was sent`,
    }),
  }));
  const names = full.map((outbox) => outbox.mirror.name).join(', ');
  const message = `outbox full: ${names} at outboxLimit ${outboxLimit}; message ${messageId} was sent to no target`;
  throw new TeePublishError({ driver: teeName, messageId, reason: 'outbox-full', succeeded: [], failures, message });
}

/**
 * `mode: 'primary'`: one mirror's copies, from the publish until the mirror confirms them. A copy
 * whose first attempt fails (once the primary holds the message) waits here and is re-sent in the
 * background — one probe at a time while the mirror keeps failing (with backoff), then
 * `retryConcurrency` at a time once a probe succeeds. `close()` reports what is left.
 */
export class Outbox {
  /** Copies reserved and not yet confirmed or dropped: in flight, waiting, or being retried. */
  backlog = 0;
  /** True from a failed attempt until a retry succeeds: new copies then queue behind the outbox. */
  failing = false;
  private consecutiveFailures = 0;
  private readonly waiting: Copy[] = [];
  private readonly firstAttempts = new Set<Copy>();
  private readonly retrying = new Set<Copy>();
  /** A retry round is scheduled or running. */
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly mirror: Target,
    private readonly settings: OutboxSettings,
  ) {}

  /** Copies that failed at least once and are not confirmed yet (waiting or being retried). */
  get depth(): number {
    return this.waiting.length + this.retrying.size;
  }

  /**
   * Sends the copy of a message whose slot {@link reserve} took, while the primary publishes it.
   * Resolves to the mirror's outcome for the publish's report. A failed copy goes to the outbox
   * only when `primaryOk` resolves true: a message the primary refused is not published.
   */
  async publish(
    kind: 'task' | 'share',
    body: unknown,
    json: string,
    options: TargetPublishOptions,
    primaryOk: Promise<boolean>,
  ): Promise<PromiseSettledResult<void>> {
    const copy: Copy = { kind, options, json, attempts: 0, lastError: undefined };
    if (!this.failing) {
      this.firstAttempts.add(copy);
      const confirmed = await this.attempt(copy, body);
      this.firstAttempts.delete(copy);
      if (confirmed) {
        this.release();
        return { status: 'fulfilled', value: undefined };
      }
    }
    // This attempt failed, or the mirror is failing: new copies queue behind its outbox instead of hammering it.
    if (await primaryOk) {
      this.enqueue(copy);
      return copy.attempts === 0 ? { status: 'fulfilled', value: undefined } : { status: 'rejected', reason: copy.lastError };
    }
    this.release();
    if (copy.attempts > 0) return { status: 'rejected', reason: copy.lastError };
    const message = `not sent to mirror ${this.mirror.name} (it is failing; the primary refused the message)`;
    return { status: 'rejected', reason: new PublishError({ driver: this.settings.teeName, messageId: options.id, message }) };
  }

  /** Stops retrying (close): what is left is reported as undelivered. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  undelivered(): UndeliveredCopy[] {
    const entry = (copy: Copy, uncertain: boolean): UndeliveredCopy => ({
      target: this.mirror.name,
      kind: copy.kind,
      messageId: copy.options.id,
      body: JSON.parse(copy.json),
      options: { ...copy.options, headers: { ...copy.options.headers } },
      attempts: copy.attempts,
      lastError: copy.lastError,
      uncertain,
    });
    return [
      ...[...this.firstAttempts, ...this.retrying].map((copy) => entry(copy, true)),
      ...this.waiting.map((copy) => entry(copy, false)),
    ];
  }

  /** One attempt to send a copy; true when the mirror confirmed it, else its error is kept on the copy. */
  private async attempt(copy: Copy, body: unknown): Promise<boolean> {
    try {
      await this.mirror.send(this.settings.teeName, copy.kind, body, copy.options);
      return true;
    } catch (error) {
      copy.attempts++;
      copy.lastError = error;
      return false;
    }
  }

  /** A copy left the backlog without waiting in the outbox: confirmed, or its message was not published. */
  private release(): void {
    this.backlog--;
    this.settings.changed();
  }

  private enqueue(copy: Copy): void {
    this.waiting.push(copy);
    if (copy.attempts > 0) {
      this.failing = true;
      this.report(copy);
    }
    this.schedule();
  }

  private report(copy: Copy): void {
    const { attempts, lastError: error } = copy;
    try {
      const event = { target: this.mirror.name, messageId: copy.options.id, attempts, error, outboxDepth: this.depth };
      this.settings.onMirrorError?.(event);
    } catch {
      // A failing callback must not break the outbox.
    }
  }

  private schedule(): void {
    if (this.stopped || this.busy || this.waiting.length === 0) return;
    this.busy = true;
    const delay = this.failing ? backoffDelay(Math.max(1, this.consecutiveFailures), this.settings.retryBackoff) : 0;
    this.timer = setTimeout(() => void this.round(), delay);
    // An abandoned tee must not keep the process alive; close() reports what was not delivered.
    this.timer.unref();
  }

  /** One retry round: a probe while failing, else up to `retryConcurrency` copies. */
  private async round(): Promise<void> {
    if (this.stopped) return;
    const batch = this.waiting.splice(0, this.failing ? 1 : this.settings.retryConcurrency);
    for (const copy of batch) this.retrying.add(copy);
    const confirmed = await Promise.all(batch.map((copy) => this.attempt(copy, JSON.parse(copy.json))));
    for (const copy of batch) this.retrying.delete(copy);
    const failed = batch.filter((_, index) => !confirmed[index]);
    this.backlog -= batch.length - failed.length;
    this.failing = failed.length > 0;
    this.consecutiveFailures = this.failing ? this.consecutiveFailures + 1 : 0;
    this.waiting.unshift(...failed);
    for (const copy of failed) this.report(copy);
    this.busy = false;
    this.settings.changed();
    this.schedule();
  }
}
