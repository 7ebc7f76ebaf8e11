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
 * becomes the `url` option; every other option passes through.
 */
export const driver: DriverDefinition<Omit<RabbitMqDriverOptions, 'url'>> = {
  name: DRIVER_NAME,
  schemes: ['amqp', 'amqps'],
  create(url: string, options?: Omit<RabbitMqDriverOptions, 'url'>): RabbitMqDriver {
    return createRabbitMqDriver({ ...options, url });
  },
};

export default driver;
