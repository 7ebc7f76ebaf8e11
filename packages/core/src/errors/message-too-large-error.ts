import { MqError } from './mq-error.js';

const name = 'MessageTooLargeError';
const marker = `mq-drivers.error.${name}`;
const symbol = Symbol.for(marker);

/** The encoded message is larger than the driver accepts (`capabilities.maxMessageBytes`). Nothing was sent. */
export class MessageTooLargeError extends MqError {
  private readonly [symbol] = true;
  readonly bytes: number;
  readonly maxBytes: number;

  constructor({ driver, bytes, maxBytes }: { driver: string; bytes: number; maxBytes: number }) {
    super({ driver, message: `message of ${bytes} bytes is larger than the limit of ${maxBytes} bytes` });
    this.name = name;
    this.bytes = bytes;
    this.maxBytes = maxBytes;
  }

  static override isInstance(error: unknown): error is MessageTooLargeError {
    return MqError.hasMarker(error, marker);
  }
}
