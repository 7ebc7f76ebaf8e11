import {
  assertDriver,
  type Driver,
  InvalidArgumentError,
  type JsonValue,
  PublishError,
  type SharePublishOptions,
  type TaskPublishOptions,
} from '@mq-drivers/core';
import type { TeeTargets } from './types.js';

export const DRIVER_NAME = 'tee';

/** The options a target gets: the caller's, normalised, with the tee's id. */
export type TargetPublishOptions = TaskPublishOptions & { id: string; topic?: string };

/** An InvalidArgumentError of the tee's construction input. */
export function bad(argument: string, value: unknown, message: string): never {
  throw new InvalidArgumentError({ driver: DRIVER_NAME, argument, value, message });
}

/** One driver the tee writes to, with its counts for `stats()`. */
export class Target {
  /** Copies this target confirmed. */
  confirmed = 0;
  /** Failed publish attempts (first tries and retries). */
  failedAttempts = 0;

  constructor(
    readonly name: string,
    readonly driver: Driver,
  ) {}

  /**
   * Publishes one copy and checks the receipt: a target that ignored the `id` option would break
   * "the same id on every target", so that counts as a failure. A synchronous throw rejects too.
   */
  async send(teeName: string, kind: 'task' | 'share', body: unknown, options: TargetPublishOptions): Promise<void> {
    try {
      const receipt =
        kind === 'task'
          ? await this.driver.taskPublish(body as JsonValue, options)
          : await this.driver.sharePublish(body as JsonValue, options as SharePublishOptions);
      if (receipt?.id !== options.id) {
        throw new PublishError({
          driver: teeName,
          messageId: options.id,
          message: `target ${this.name} confirmed id ${JSON.stringify(receipt?.id)} instead of ${JSON.stringify(options.id)} (it ignores the \`id\` publish option)`,
        });
      }
    } catch (error) {
      this.failedAttempts++;
      throw error ?? new Error('publish rejected without a reason');
    }
    this.confirmed++;
  }
}

/** The index of a target given by name or index, else InvalidArgumentError listing the targets. */
export function findTarget(driver: string, targets: readonly Target[], wanted: unknown, argument: string): number {
  const index = typeof wanted === 'number' ? wanted : targets.findIndex((target) => target.name === wanted);
  if (Number.isInteger(index) && index >= 0 && index < targets.length) return index;
  const names = targets.map((target, i) => `${i}: ${target.name}`).join(', ');
  throw new InvalidArgumentError({
    driver,
    argument,
    value: wanted,
    message: `is not a target name or index (targets: ${names})`,
  });
}

/** Whether `value` looks like a driver (to tell `tee(primary, ...mirrors, options)` from `tee(targets, options)`). */
export function isDriver(value: unknown): value is Driver {
  return (
    value !== null &&
    typeof value === 'object' &&
    'specificationVersion' in value &&
    typeof (value as Driver).taskPublish === 'function'
  );
}

const DRIVER_METHODS = [
  'taskPublish',
  'sharePublish',
  'taskConsume',
  'shareConsume',
  'listDeadLetters',
  'redriveDeadLetters',
  'close',
] as const;

function checkDriver(value: unknown, argument: string): Driver {
  if (!isDriver(value)) bad(argument, value, 'must be a driver (an object with specificationVersion, taskPublish, ...)');
  const driver = assertDriver(value, `tee target ${argument}`);
  const missing = DRIVER_METHODS.find((method) => typeof driver[method] !== 'function');
  if (missing) bad(argument, value, `is not a driver: \`${missing}\` is not a function`);
  if (driver.capabilities === null || typeof driver.capabilities !== 'object') {
    bad(argument, value, 'is not a driver: `capabilities` is missing');
  }
  return driver;
}

/** Checks the targets and names them: object keys, or driver names with `#2`, `#3` for repeats. */
export function resolveTargets(targets: TeeTargets): Target[] {
  if (targets === null || typeof targets !== 'object') {
    bad('targets', targets, 'must be a list of drivers [primary, ...mirrors] or an object of named drivers { name: driver }');
  }
  const resolved: Target[] = [];
  if (Array.isArray(targets)) {
    const seen = new Map<string, number>();
    targets.forEach((value: unknown, index) => {
      const driver = checkDriver(value, `targets[${index}]`);
      const count = (seen.get(driver.name) ?? 0) + 1;
      seen.set(driver.name, count);
      resolved.push(new Target(count === 1 ? driver.name : `${driver.name}#${count}`, driver));
    });
  } else {
    for (const [name, value] of Object.entries(targets)) {
      if (name.length === 0) bad('targets', name, 'target names must be non-empty');
      resolved.push(new Target(name, checkDriver(value, `targets.${name}`)));
    }
  }
  if (resolved.length === 0) bad('targets', targets, 'needs at least one driver (the primary)');
  if (new Set(resolved.map((target) => target.driver)).size !== resolved.length) {
    bad('targets', targets, 'the same driver object is given twice; give each target its own driver');
  }
  return resolved;
}
