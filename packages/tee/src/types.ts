/** The public shapes of a tee: its options, its driver, its reports. The README explains each. */
import type { BackoffOptions, CloseOptions, Driver, SharePublishOptions, TaskPublishOptions } from '@mq-drivers/core';

/** Either a list (`[primary, ...mirrors]`) or named targets (`{ rabbit, s3 }`, the first is the primary). */
export type TeeTargets = readonly Driver[] | Readonly<Record<string, Driver>>;

/** Failure policy of a tee publish; see the README's table. */
export type TeeMode = 'all' | 'primary';

/** Options of `tee()`. All optional; the outbox options need `mode: 'primary'`. */
export interface TeeOptions {
  /**
   * `'all'` (default): a publish resolves once EVERY target confirmed it, else rejects with `TeePublishError`.
   * `'primary'`: it resolves on the primary's confirmation; failed mirror copies are retried from a bounded outbox.
   */
  mode?: TeeMode;
  /** The target that consumers, dead letters and re-drives use: a name or index. Default: the primary (0). */
  consumeFrom?: string | number;
  /**
   * Most copies one mirror may have unconfirmed (in flight or in the outbox). A publish beyond it rejects with
   * `TeePublishError` (`reason: 'outbox-full'`) BEFORE any target receives the message. Default 10000.
   */
  outboxLimit?: number;
  /** Delay between probes of a failing mirror (core's `backoffDelay`). Default `{ baseMs: 100, maxMs: 5000 }`. */
  retryBackoff?: BackoffOptions;
  /** Copies re-sent at once while an outbox drains (after a probe succeeded). Default 32. */
  retryConcurrency?: number;
  /** Called on every failed attempt of a mirror copy of a published message; its own errors are ignored. */
  onMirrorError?: (event: MirrorErrorEvent) => void;
  /** How long `close()` waits for publishes, open subscriptions and the outbox before it closes the targets. Default 10000. */
  closeTimeoutMs?: number;
  /** Called by `close()` with the mirror copies it could not deliver in time (when there are some). */
  onUndelivered?: (undelivered: readonly UndeliveredCopy[]) => void;
  /** Close the target drivers when the tee closes. Default true (the tee owns its targets). */
  closeTargets?: boolean;
}

/** A mirror copy that failed once more (`mode: 'primary'`). */
export interface MirrorErrorEvent {
  readonly target: string;
  readonly messageId: string;
  /** Failed attempts of this copy so far (1 on the first failure). */
  readonly attempts: number;
  readonly error: unknown;
  /** Copies waiting in this mirror's outbox after this failure. */
  readonly outboxDepth: number;
}

/** A mirror copy that was not confirmed when the tee closed. */
export interface UndeliveredCopy {
  /** The mirror that does not (or may not) hold the message. */
  readonly target: string;
  readonly kind: 'task' | 'share';
  readonly messageId: string;
  /** The body as published (a JSON copy taken at publish time). */
  readonly body: unknown;
  /** Options to publish it again to that target: `mq.target(target).taskPublish(body, options)` (or `sharePublish`). */
  readonly options: TaskPublishOptions | SharePublishOptions;
  readonly attempts: number;
  /** The last error, if an attempt failed. */
  readonly lastError: unknown;
  /** An attempt was still running at the deadline: the mirror may hold it (a re-publish is then a detectable duplicate). */
  readonly uncertain: boolean;
}

/** What `closeWithReport()` (and `onUndelivered`) hands back. */
export interface TeeCloseReport {
  /** Mirror copies not confirmed within the close deadline (`mode: 'primary'`); empty when all caught up. */
  readonly undelivered: readonly UndeliveredCopy[];
  /** Targets whose own `close()` rejected. */
  readonly closeFailures: readonly { readonly target: string; readonly error: unknown }[];
}

/** Per-target numbers from {@link TeeDriver.stats}. */
export interface TeeTargetStats {
  readonly name: string;
  readonly role: 'primary' | 'mirror';
  /** True for the target consumers read from (`consumeFrom`). */
  readonly consuming: boolean;
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
  readonly published: number;
  /** Publishes that rejected after validation (`TeePublishError`). */
  readonly rejected: number;
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
  /** Waits until every publish settled and every mirror confirmed every copy, or until `timeoutMs` (default `closeTimeoutMs`). */
  flush(options?: { timeoutMs?: number }): Promise<TeeFlushResult>;
  /**
   * Closes the tee: new calls reject with `DriverClosedError`; in-flight publishes, open subscriptions and
   * the outbox get until `timeoutMs` (default `closeTimeoutMs`); then the targets are closed. Resolves to
   * what could not be delivered.
   */
  closeWithReport(options?: CloseOptions): Promise<TeeCloseReport>;
  /** `closeWithReport()` without the report (the `Driver` contract); `onUndelivered` still gets it. */
  close(options?: CloseOptions): Promise<void>;
}
