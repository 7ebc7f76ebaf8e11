const marker = 'mq-drivers.error';
const symbol = Symbol.for(marker);

/**
 * Base of every error this project throws. `MqError.isInstance(e)` works across package copies
 * (two installed versions of core), where `instanceof` would not.
 * Messages start with the driver name, e.g. `rabbitmq: publish timed out after 5000 ms`.
 */
export class MqError extends Error {
  private readonly [symbol] = true;
  /** The driver (or package) that raised the error, e.g. `memory`, `rabbitmq`, `core`. */
  readonly driver: string;

  constructor({ driver, message, cause }: { driver: string; message: string; cause?: unknown }) {
    super(`${driver}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'MqError';
    this.driver = driver;
  }

  static isInstance(error: unknown): error is MqError {
    return MqError.hasMarker(error, marker);
  }

  /** Subclasses call this with their own marker so `isInstance` needs no `instanceof`. */
  protected static hasMarker(error: unknown, markerName: string): boolean {
    const key = Symbol.for(markerName);
    return error != null && typeof error === 'object' && key in error && (error as Record<symbol, unknown>)[key] === true;
  }
}
