import type { DriverDefinition } from '@mq-drivers/core';
import { describeValue, InvalidArgumentError, redactUrl } from '@mq-drivers/core';
import { createMemoryDriver, DRIVER_NAME, type MemoryDriverOptions } from './driver.js';

export { createMemoryDriver, DEFAULT_MEMORY_BACKOFF, DRIVER_NAME, type MemoryDriverOptions } from './driver.js';
export { deleteMemoryBroker, inspectMemoryBroker, type MemoryBrokerInspector, type QueueInspector } from './inspect.js';

/** `memory:` is the process-wide default broker; `memory://name` a separate named one. */
function brokerFromUrl(url: string): string | undefined {
  const match = typeof url === 'string' ? /^memory:(?:\/\/([^/?#@]*))?\/?$/i.exec(url) : null;
  if (!match) {
    const safe = redactUrl(url);
    throw new InvalidArgumentError({
      driver: DRIVER_NAME,
      argument: 'url',
      value: safe,
      message: `${describeValue(safe)} must be "memory:" or "memory://<broker name>"`,
    });
  }
  return match[1] || undefined;
}

/** The registry entry: `connect('memory:')` finds it without an import. */
export const driver: DriverDefinition<MemoryDriverOptions> = {
  name: DRIVER_NAME,
  schemes: ['memory'],
  create(url, options = {}) {
    const broker = brokerFromUrl(url);
    return createMemoryDriver(broker === undefined ? options : { ...options, broker });
  },
};
