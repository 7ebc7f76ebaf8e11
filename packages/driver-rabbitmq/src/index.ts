import type { DriverDefinition } from '@mq-drivers/core';
import { createRabbitMqDriver, type RabbitMqDriver } from './driver.js';
import { DRIVER_NAME, type RabbitMqDriverOptions } from './options.js';

export { createRabbitMqDriver, type RabbitMqDriver } from './driver.js';
export { DEFAULT_MAX_MESSAGE_BYTES, DRIVER_NAME, type RabbitMqDriverOptions } from './options.js';
export {
  delayBucket,
  delayExchange,
  delayQueue,
  kindDeadQueue,
  kindQueue,
  shareDeadQueue,
  shareExchange,
  shareQueue,
  taskExchange,
} from './topology.js';

/**
 * The driver definition found by core's `connect('amqp://...')`. The URL given to `connect`
 * (which may name several hosts) becomes the `url` option; a `url` in the options (a string or
 * an array, e.g. the dispatcher's `driverOptions.url`) adds its hosts after it. Every other
 * option passes through.
 */
export const driver: DriverDefinition<RabbitMqDriverOptions> = {
  name: DRIVER_NAME,
  schemes: ['amqp', 'amqps'],
  create(url: string, options?: RabbitMqDriverOptions): RabbitMqDriver {
    const extra = options?.url;
    const urls = extra === undefined ? url : [url, ...(Array.isArray(extra) ? (extra as readonly string[]) : [extra as string])];
    return createRabbitMqDriver({ ...options, url: urls });
  },
};

export default driver;
