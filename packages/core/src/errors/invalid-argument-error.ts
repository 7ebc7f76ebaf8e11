import { MqError } from './mq-error.js';

const name = 'InvalidArgumentError';
const marker = `mq-drivers.error.${name}`;
const symbol = Symbol.for(marker);

/** Bad input: a name, option or body that breaks a rule. Nothing was sent. */
export class InvalidArgumentError extends MqError {
  private readonly [symbol] = true;
  /** The argument at fault, e.g. `segment`, `options.prefetch`, `body.items[2]`. */
  readonly argument: string;
  /** The offending value as given (may be undefined). */
  readonly value: unknown;

  constructor({
    driver,
    argument,
    value,
    message,
    cause,
  }: { driver: string; argument: string; value: unknown; message: string; cause?: unknown }) {
    super({ driver, message: `invalid ${argument}: ${message}`, cause });
    this.name = name;
    this.argument = argument;
    this.value = value;
  }

  static override isInstance(error: unknown): error is InvalidArgumentError {
    return MqError.hasMarker(error, marker);
  }
}
