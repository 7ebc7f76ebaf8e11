import { MqError } from './mq-error.js';

const name = 'DriverClosedError';
const marker = `mq-drivers.error.${name}`;
const symbol = Symbol.for(marker);

/** The driver or subscription was closed; it takes no more calls. */
export class DriverClosedError extends MqError {
  private readonly [symbol] = true;
  constructor({ driver, what = 'driver', cause }: { driver: string; what?: string; cause?: unknown }) {
    super({ driver, message: `${what} is closed`, cause });
    this.name = name;
  }

  static override isInstance(error: unknown): error is DriverClosedError {
    return MqError.hasMarker(error, marker);
  }
}
