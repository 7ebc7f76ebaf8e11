import { MqError } from './mq-error.js';

const name = 'AuthenticationError';
const marker = `mq-drivers.error.${name}`;
const symbol = Symbol.for(marker);

/** The broker refused the credentials. */
export class AuthenticationError extends MqError {
  private readonly [symbol] = true;
  constructor({ driver, message, cause }: { driver: string; message: string; cause?: unknown }) {
    super({ driver, message, cause });
    this.name = name;
  }

  static override isInstance(error: unknown): error is AuthenticationError {
    return MqError.hasMarker(error, marker);
  }
}
