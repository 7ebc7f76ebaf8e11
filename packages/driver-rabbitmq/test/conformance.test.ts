import { testRabbitMqUrl } from '@mq-drivers/conformance/services';
import { runConformance } from '@mq-drivers/conformance/vitest';
import { rabbitMqConformance } from './conformance-options.js';
import { brokerSkipReason, haveRabbitmqctl, rabbitmqctl } from './helpers.js';

// Every group of the suite on the host's broker (RabbitMQ 3.10 in CI), on fresh virtual hosts of its own: one for the
// reconnect group, whose hook breaks every connection of its vhost, one for the others (conformance-options.ts). Without
// rabbitmqctl here, everything runs on the default vhost and the reconnect group is a visible skip.
const skip = await brokerSkipReason();
const ctl = skip === undefined && (await haveRabbitmqctl()) ? rabbitmqctl : undefined;
runConformance(await rabbitMqConformance({ name: 'rabbitmq', url: testRabbitMqUrl, rabbitmqctl: ctl, skip }));
