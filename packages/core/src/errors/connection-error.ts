import { MqError } from './mq-error.js';

const name = 'ConnectionError';
const marker = `mq-drivers.error.${name}`;
const symbol = Symbol.for(marker);

/** The broker could not be reached (or was lost) within the allowed time. */
export class ConnectionError extends MqError {
  private readonly [symbol] = true;
  /** host:port (or endpoint) that could not be reached. */
  readonly host: string;

  constructor({ driver, host, message, cause }: { driver: string; host: string; message?: string; cause?: unknown }) {
    super({ driver, message: message ?? `cannot connect to ${host}`, cause });
    this.name = name;
    this.host = host;
  }

  static override isInstance(error: unknown): error is ConnectionError {
    return MqError.hasMarker(error, marker);
  }
}
