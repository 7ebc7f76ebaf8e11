import { errorText, MqError, PublishError } from '@mq-drivers/core';

const name = 'TeePublishError';
const marker = `mq-drivers.error.${name}`;
const symbol = Symbol.for(marker);

/** One target that did not accept a message, and why. */
export interface TeeTargetFailure {
  /** The target's name (see `TeeDriver.targets`). */
  readonly target: string;
  /** What that target's publish rejected with (usually an `MqError`). */
  readonly error: unknown;
}

/**
 * Why a tee publish rejected:
 * - `targets-failed`: one or more targets did not confirm the message (`failures`); the targets in
 *   `succeeded` hold it. A retry with the same id may duplicate it there; the id makes that detectable.
 * - `outbox-full` (`mode: 'primary'`): a mirror's backlog is at `outboxLimit`. NO target received
 *   the message; `failures` names the full mirrors.
 */
export type TeePublishFailureReason = 'targets-failed' | 'outbox-full';

/**
 * A tee publish was not accepted by every target it had to reach. Extends core's `PublishError`,
 * so `PublishError.isInstance(e)` is true as well; `TeePublishError.isInstance(e)` works across
 * package copies.
 */
export class TeePublishError extends PublishError {
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: the brand `isInstance` looks for.
  private readonly [symbol] = true;
  readonly reason: TeePublishFailureReason;
  /** Targets that did not accept the message, in target order, with their errors. */
  readonly failures: readonly TeeTargetFailure[];
  /** Targets that confirmed the message (they hold it under `messageId`). */
  readonly succeeded: readonly string[];

  constructor({
    driver,
    messageId,
    reason,
    failures,
    succeeded,
    message,
  }: {
    driver: string;
    messageId: string;
    reason: TeePublishFailureReason;
    failures: readonly TeeTargetFailure[];
    succeeded: readonly string[];
    message?: string;
  }) {
    const cause =
      failures.length === 1
        ? failures[0]?.error
        : new AggregateError(
            failures.map((failure) => failure.error),
            'every target failure',
          );
    super({ driver, messageId, message: message ?? describe(messageId, failures, succeeded), cause });
    this.name = name;
    this.reason = reason;
    this.failures = Object.freeze([...failures]);
    this.succeeded = Object.freeze([...succeeded]);
  }

  static override isInstance(error: unknown): error is TeePublishError {
    return MqError.hasMarker(error, marker);
  }
}

function describe(messageId: string, failures: readonly TeeTargetFailure[], succeeded: readonly string[]): string {
  const failed = failures.map((failure) => `${failure.target} (${errorText(failure.error)})`).join('; ');
  const held = succeeded.length > 0 ? `; accepted by ${succeeded.join(', ')}` : '; accepted by no target';
  return `message ${messageId} was not accepted by ${failed}${held}`;
}
