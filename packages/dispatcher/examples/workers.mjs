// Worker classes for workers.yml. A worker is a class with consume(message) and an optional
// shutdown(error?). Returning from consume acknowledges the message; throwing makes the
// dispatcher call shutdown(error), replace the instance, and redeliver the message later.
// (.mjs: an ES module whatever package.json is around it.)

export class EmailWorker {
  constructor({ logger }) {
    this.logger = logger; // pino child logger bound to this consumer and instance
    this.sent = 0;
  }

  async consume(message) {
    const { to, subject, flaky } = message.body;
    if (flaky && message.attempt === 1) throw new Error('SMTP timeout (simulated)');
    await new Promise((resolve) => setTimeout(resolve, 200)); // talk to the mail server here
    this.sent++;
    this.logger.info({ to, subject, attempt: message.attempt }, 'email sent');
  }

  async shutdown(error) {
    this.logger.info({ sent: this.sent, crashed: error !== undefined }, 'email worker shut down');
  }
}

export class OrderAudit {
  constructor({ logger }) {
    this.logger = logger;
  }

  consume(message) {
    this.logger.info({ topic: message.topic, order: message.body }, 'order event recorded');
  }
}

// The `ready` hook: runs once every consumer is subscribed, with the connected driver.
export async function publishDemo({ driver, logger }) {
  const emails = ['ada@example.com', 'grace@example.com', 'linus@example.com'];
  for (const [index, to] of emails.entries()) {
    await driver.taskPublish({ to, subject: `Welcome #${index + 1}`, flaky: index === 1 }, { segment: 'shop' });
  }
  await driver.sharePublish({ orderId: 42, total: 99.5 }, { topic: 'Shop.Order.Placed', segment: 'shop' });
  logger.info(`published ${emails.length} emails and 1 order event; press Ctrl-C to stop`);
}
