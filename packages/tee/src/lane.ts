import {
  type BackoffOptions,
  backoffDelay,
  type Driver,
  type JsonValue,
  PublishError,
  type SharePublishOptions,
  type TaskPublishOptions,
} from '@mq-drivers/core';
import type { MirrorErrorEvent, UndeliveredCopy } from './options.js';

/** The options a target gets: the caller's, normalised, with the tee's id. */
export type TargetPublishOptions = TaskPublishOptions & { id: string; topic?: string };

/** One message for one mirror, until that mirror confirms it. */
export interface Copy {
  readonly kind: 'task' | 'share';
  readonly options: TargetPublishOptions;
  /** The body as JSON, taken at publish time: retries never see later changes to the caller's object. */
  readonly json: string;
  attempts: number;
  lastError: unknown;
}

/**
 * Sends one message to one target and checks the receipt: a target that ignored the `id` option
 * would break "the same id on every target", so that counts as a failure.
 */
export async function send(
  teeName: string,
  target: string,
  driver: Driver,
  kind: 'task' | 'share',
  body: unknown,
  options: TargetPublishOptions,
): Promise<void> {
  const receipt =
    kind === 'task'
      ? await driver.taskPublish(body as JsonValue, options)
      : await driver.sharePublish(body as JsonValue, options as SharePublishOptions);
  if (receipt?.id !== options.id) {
    throw new PublishError({
      driver: teeName,
      messageId: options.id,
      message: `target ${target} confirmed id ${JSON.stringify(receipt?.id)} instead of ${JSON.stringify(options.id)} (it ignores the \`id\` publish option)`,
    });
  }
}

export interface LaneSettings {
  teeName: string;
  retryBackoff: BackoffOptions;
  retryConcurrency: number;
  onMirrorError: ((event: MirrorErrorEvent) => void) | undefined;
  /** Called whenever the backlog shrinks (for flush waiters). */
  changed: () => void;
}

/**
 * Per-target bookkeeping. For a mirror in `mode: 'primary'` it is also the outbox: copies that
 * failed wait here and are re-sent in the background — one probe at a time while the mirror
 * keeps failing (with backoff), `retryConcurrency` at a time once a probe succeeds.
 */
export class Lane {
  /** Confirmed copies. */
  confirmed = 0;
  /** Failed attempts (first tries and retries). */
  failedAttempts = 0;
  /** Copies reserved and not yet confirmed or dropped: in flight, waiting, or being retried. */
  backlog = 0;
  /** True from a failed attempt until a retry succeeds: new copies then queue behind the outbox. */
  failing = false;
  private consecutiveFailures = 0;
  private readonly outbox: Copy[] = [];
  private readonly firstAttempts = new Set<Copy>();
  private readonly retrying = new Set<Copy>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;

  constructor(
    readonly name: string,
    readonly driver: Driver,
    private readonly settings: LaneSettings,
  ) {}

  /** Copies that failed at least once and are not confirmed yet (waiting or being retried). */
  get outboxDepth(): number {
    return this.outbox.length + this.retrying.size;
  }

  /** A publish gave up its reserved slot (confirmed, or the primary refused the message). */
  release(confirmed: boolean): void {
    if (confirmed) this.confirmed++;
    this.backlog--;
    this.settings.changed();
  }

  /** First attempt of a copy, in the background; resolves to the error, or undefined when confirmed. */
  async firstAttempt(copy: Copy, body: unknown): Promise<unknown> {
    this.firstAttempts.add(copy);
    try {
      await send(this.settings.teeName, this.name, this.driver, copy.kind, body, copy.options);
      return undefined;
    } catch (error) {
      this.failedAttempts++;
      copy.attempts++;
      copy.lastError = error;
      return error ?? new Error('publish rejected without a reason');
    } finally {
      this.firstAttempts.delete(copy);
    }
  }

  /** Puts a copy (whose message the primary holds) into the outbox. */
  enqueue(copy: Copy): void {
    this.outbox.push(copy);
    if (copy.attempts > 0) {
      this.failing = true;
      this.report(copy);
    }
    this.schedule();
  }

  /** Stops retrying (close): what is left is reported as undelivered. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  undelivered(): UndeliveredCopy[] {
    const list: UndeliveredCopy[] = [];
    const add = (copy: Copy, uncertain: boolean) =>
      list.push({
        target: this.name,
        kind: copy.kind,
        messageId: copy.options.id,
        body: JSON.parse(copy.json),
        options: { ...copy.options, headers: { ...copy.options.headers } },
        attempts: copy.attempts,
        lastError: copy.lastError,
        uncertain,
      });
    for (const copy of this.firstAttempts) add(copy, true);
    for (const copy of this.retrying) add(copy, true);
    for (const copy of this.outbox) add(copy, false);
    return list;
  }

  private report(copy: Copy): void {
    const callback = this.settings.onMirrorError;
    if (!callback) return;
    try {
      callback({
        target: this.name,
        messageId: copy.options.id,
        attempts: copy.attempts,
        error: copy.lastError,
        outboxDepth: this.outboxDepth,
      });
    } catch {
      // A failing callback must not break the outbox.
    }
  }

  private schedule(): void {
    if (this.stopped || this.running || this.timer || this.outbox.length === 0) return;
    const delay = this.failing ? backoffDelay(Math.max(1, this.consecutiveFailures), this.settings.retryBackoff) : 0;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.round();
    }, delay);
    // An abandoned tee must not keep the process alive; close() reports what was not delivered.
    this.timer.unref();
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    this.running = true;
    const batch = this.outbox.splice(0, this.failing ? 1 : this.settings.retryConcurrency);
    for (const copy of batch) this.retrying.add(copy);
    const results = await Promise.allSettled(
      batch.map((copy) => send(this.settings.teeName, this.name, this.driver, copy.kind, JSON.parse(copy.json), copy.options)),
    );
    const failed: Copy[] = [];
    results.forEach((result, index) => {
      const copy = batch[index] as Copy;
      this.retrying.delete(copy);
      if (result.status === 'fulfilled') {
        this.confirmed++;
        this.backlog--;
      } else {
        this.failedAttempts++;
        copy.attempts++;
        copy.lastError = result.reason;
        failed.push(copy);
      }
    });
    if (failed.length > 0) {
      this.outbox.unshift(...failed);
      this.failing = true;
      this.consecutiveFailures++;
      for (const copy of failed) this.report(copy);
    } else {
      this.failing = false;
      this.consecutiveFailures = 0;
    }
    this.running = false;
    this.settings.changed();
    this.schedule();
  }
}
