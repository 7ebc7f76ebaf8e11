import { MqError } from './mq-error.js';

const name = 'TopologyError';
const marker = `mq-drivers.error.${name}`;
const symbol = Symbol.for(marker);

/**
 * The broker's topology refuses the operation: an exchange/queue/object declared with incompatible
 * settings, or (for `unregister`) a kind or subscription that still has an open consumer.
 */
export class TopologyError extends MqError {
  private readonly [symbol] = true;
  /** The exchange, queue or key at fault. */
  readonly resource: string;

  constructor({ driver, resource, message, cause }: { driver: string; resource: string; message: string; cause?: unknown }) {
    super({ driver, message, cause });
    this.name = name;
    this.resource = resource;
  }

  static override isInstance(error: unknown): error is TopologyError {
    return MqError.hasMarker(error, marker);
  }
}
