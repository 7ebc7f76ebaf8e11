import { InvalidArgumentError } from '@mq-drivers/core';
import { describe, expect, it } from 'vitest';
import { createExampleDriver, driver, type ExampleDriverOptions } from '../src/index.js';

/** The InvalidArgumentError that `create()` throws, or a failure if it throws nothing or something else. */
function refusal(create: () => unknown): InvalidArgumentError {
  try {
    create();
  } catch (error) {
    if (InvalidArgumentError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected an InvalidArgumentError');
}

describe('example driver options (checked with core validation)', () => {
  it('rejects an unknown option key, naming it', () => {
    const error = refusal(() => createExampleDriver({ brokr: 'x' } as ExampleDriverOptions));
    expect(error.argument).toBe('options.brokr');
    expect(error.message).toMatch(/^example/);
    expect(error.message).toContain('did you mean broker?');
  });

  it('rejects bad values with the option named', () => {
    expect(refusal(() => createExampleDriver(null as unknown as ExampleDriverOptions)).argument).toBe('options');
    expect(refusal(() => createExampleDriver({ maxMessageBytes: 0 })).argument).toBe('options.maxMessageBytes');
    expect(refusal(() => createExampleDriver({ broker: '' })).argument).toBe('options.broker');
    const backoff = { baseMs: 10, maxMs: 50, jitter: true } as ExampleDriverOptions['redeliveryBackoff'];
    expect(refusal(() => createExampleDriver({ redeliveryBackoff: backoff })).argument).toBe('options.redeliveryBackoff.jitter');
    expect(refusal(() => createExampleDriver({ redeliveryBackoff: { baseMs: -1, maxMs: 5 } })).argument).toBe(
      'options.redeliveryBackoff.baseMs',
    );
  });

  it('accepts the defaults, keys set to undefined, and a broker named by an example:// URL', async () => {
    const a = createExampleDriver({ broker: undefined, maxMessageBytes: 1024 });
    expect(a.capabilities.maxMessageBytes).toBe(1024);
    const b = await driver.create('example://options-test', {});
    const c = createExampleDriver({ broker: 'options-test' });
    let resolve: (message: unknown) => void = () => {};
    const received = new Promise((settle) => {
      resolve = settle;
    });
    await c.taskConsume(resolve, { topic: 'Job', segment: 's' }); // registered before the publish
    await b.taskPublish({ n: 1 }, { segment: 's' });
    await expect(received).resolves.toMatchObject({ body: { n: 1 }, topic: 'Job' });
    await Promise.all([a.close(), b.close(), c.close()]);
  });
});
