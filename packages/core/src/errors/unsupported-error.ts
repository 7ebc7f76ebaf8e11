import { MqError } from './mq-error.js';

const name = 'UnsupportedError';
const marker = `mq-drivers.error.${name}`;
const symbol = Symbol.for(marker);

/** A feature the driver does not have (see `capabilities`) was asked for. */
export class UnsupportedError extends MqError {
  private readonly [symbol] = true;
  /** The capability or feature missing, e.g. `replay`. */
  readonly feature: string;

  constructor({ driver, feature, message, cause }: { driver: string; feature: string; message?: string; cause?: unknown }) {
    super({ driver, message: message ?? `${feature} is not supported by this driver`, cause });
    this.name = name;
    this.feature = feature;
  }

  static override isInstance(error: unknown): error is UnsupportedError {
    return MqError.hasMarker(error, marker);
  }
}
