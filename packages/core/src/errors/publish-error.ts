import { MqError } from './mq-error.js';

const name = 'PublishError';
const marker = `mq-drivers.error.${name}`;
const symbol = Symbol.for(marker);

/** The broker did not accept a message (nack, timeout, unroutable). The message may not be stored. */
export class PublishError extends MqError {
  private readonly [symbol] = true;
  /** The id of the message that was not accepted. */
  readonly messageId: string | undefined;

  constructor({ driver, message, messageId, cause }: { driver: string; message: string; messageId?: string; cause?: unknown }) {
    super({ driver, message, cause });
    this.name = name;
    this.messageId = messageId;
  }

  static override isInstance(error: unknown): error is PublishError {
    return MqError.hasMarker(error, marker);
  }
}
