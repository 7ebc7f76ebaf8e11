// @ts-check
// Quickstart: run with `pnpm demo` (memory: broker), `MQ_URL=amqp://guest:guest@127.0.0.1:5672 pnpm demo`
// or `MQ_URL='s3://KEY:SECRET@bucket/prefix?endpoint=http://127.0.0.1:7480&forcePathStyle=true' pnpm demo`.
// Producers and workers use separate connections, as separate services would.
import { connect } from '@mq-drivers/core';

const url = process.env.MQ_URL ?? 'memory:';
const segment = `quickstart-${Date.now()}`;
const producer = await connect(url);
const workers = await connect(url);
console.log(`broker: ${url} (driver ${producer.name}), segment ${segment}`);

// Task fan-out: each task reaches ONE Email worker and ONE Audit worker.
let tasksHandled = 0;
for (const [kind, count] of /** @type {const} */ ([
  ['Email', 2],
  ['Audit', 1],
])) {
  for (let n = 1; n <= count; n++) {
    await workers.taskConsume(
      async (message) => {
        console.log(`task  ${JSON.stringify(message.body)} -> ${kind} worker #${n} (attempt ${message.attempt})`);
        tasksHandled++;
      },
      { topic: kind, segment, prefetch: 1 },
    );
  }
}

// Topic sharing: every subscription whose pattern matches gets its own copy.
let sharesHandled = 0;
for (const pattern of ['Frontend.Customer.*', 'Frontend.#']) {
  await workers.shareConsume(
    async (message) => {
      console.log(`share ${message.topic} ${JSON.stringify(message.body)} -> subscriber "${pattern}"`);
      sharesHandled++;
    },
    { topics: [pattern], segment },
  );
}

for (let order = 1; order <= 4; order++) await producer.taskPublish({ order }, { segment });
await producer.sharePublish({ customer: 'ada' }, { topic: 'Frontend.Customer.Signup', segment });
await producer.sharePublish({ page: '/pricing' }, { topic: 'Frontend.Page.View', segment });

// 4 tasks x 2 kinds, and 2 + 1 shares: wait for all of them (with a deadline).
const deadline = Date.now() + 10_000;
while (tasksHandled < 8 || sharesHandled < 3) {
  if (Date.now() > deadline) throw new Error(`demo timed out: ${tasksHandled}/8 tasks, ${sharesHandled}/3 shares`);
  await new Promise((resolve) => setTimeout(resolve, 10));
}
console.log(`done: ${tasksHandled} task deliveries, ${sharesHandled} share deliveries`);
await producer.close();
await workers.close();
