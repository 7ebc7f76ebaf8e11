import { describe, expect, it } from 'vitest';
import {
  type Capabilities,
  connect,
  drivers,
  InvalidArgumentError,
  MqError,
  prepareCloseOptions,
  prepareDeadLetterTarget,
  prepareRedriveOptions,
  prepareShareConsume,
  prepareSharePublish,
  prepareTaskConsume,
  prepareTaskPublish,
  registerDriver,
  validateBackoffOptions,
} from '../dist/index.js';

const capabilities: Capabilities = {
  durable: true,
  replay: true,
  ordering: 'none',
  deadLetter: true,
  maxMessageBytes: 1024,
};
const handler = () => {};
const loose = (value: unknown) => value as never;

/** Runs `run` (sync or async) and returns what it threw. */
async function thrown(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('validation messages name the bad value, not only the argument', () => {
  const cases: [label: string, run: () => unknown, argument: string, shown: string][] = [
    ['connect(42)', () => connect(loose(42)), 'url', 'number 42'],
    ['connect(null)', () => connect(loose(null)), 'url', 'null'],
    ['a URL without a scheme', () => connect('no scheme here'), 'url', '"no scheme here"'],
    ['connect options that are not an object', () => connect('memory:', loose(5)), 'options', 'number 5'],
    ['a resolveFrom that is not a path', () => connect('memory:', { resolveFrom: loose(7) }), 'options.resolveFrom', 'number 7'],
    [
      'from: "bogus"',
      () => prepareShareConsume('core', capabilities, handler, loose({ topics: ['a'], segment: 's', from: 'bogus' })),
      'from',
      '"bogus"',
    ],
    [
      'from: an invalid Date',
      () =>
        prepareShareConsume('core', capabilities, handler, loose({ topics: ['a'], segment: 's', from: new Date(Number.NaN) })),
      'from',
      'Invalid Date',
    ],
    [
      'publish options that are a string',
      () => prepareTaskPublish('core', capabilities, 1, loose('orders')),
      'options',
      '"orders"',
    ],
    [
      'share publish options that are an array',
      () => prepareSharePublish('core', capabilities, 1, loose(['orders'])),
      'options',
      'array ["orders"]',
    ],
    [
      'a handler that is not a function',
      () => prepareTaskConsume('core', loose('nope'), loose({ topic: 'K', segment: 's' })),
      'handler',
      '"nope"',
    ],
    ['consume options that are a number', () => prepareTaskConsume('core', handler, loose(3)), 'options', 'number 3'],
    [
      'a target with neither kind nor subscription',
      () => prepareDeadLetterTarget('core', loose({ segment: 'orders' })),
      'target',
      '{"segment":"orders"}',
    ],
    [
      'a target with both kind and subscription',
      () => prepareDeadLetterTarget('core', loose({ segment: 's', kind: 'K', subscription: 'n' })),
      'target',
      '"kind":"K"',
    ],
    ['close options that are a string', () => prepareCloseOptions('core', loose('soon')), 'options', '"soon"'],
    ['redrive ids that are a string', () => prepareRedriveOptions('core', loose({ ids: 'abc' })), 'ids', '"abc"'],
    ['a redrive id that is not an id', () => prepareRedriveOptions('core', { ids: ['ok', ''] }), 'ids[1]', '""'],
    [
      'a driver definition without a name',
      () => registerDriver(loose({ name: '', schemes: ['x'], create: handler })),
      'definition.name',
      '""',
    ],
    [
      'driver schemes that are a string',
      () => registerDriver(loose({ name: 'x', schemes: 'amqp', create: handler })),
      'definition.schemes',
      '"amqp"',
    ],
    [
      'a driver scheme with a colon',
      () => registerDriver(loose({ name: 'x', schemes: ['Bad:'], create: handler })),
      'definition.schemes',
      '"Bad:"',
    ],
    ['a backoff that is a string', () => validateBackoffOptions('core', 'fast', 'options.backoff'), 'options.backoff', '"fast"'],
    [
      'a negative backoff',
      () => validateBackoffOptions('core', { baseMs: -1, maxMs: 1 }, 'backoff'),
      'backoff.baseMs',
      'number -1',
    ],
    [
      'a driver factory that is not a function',
      () => registerDriver(loose({ name: 'x', schemes: ['x'], create: 42 })),
      'definition.create',
      'number 42',
    ],
  ];

  it.each(cases)('%s', async (_label, run, argument, shown) => {
    const error = await thrown(run);
    expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
    const typed = error as InstanceType<typeof InvalidArgumentError>;
    expect(typed.argument).toBe(argument);
    expect(typed.message).toMatch(/^core: invalid /);
    expect(typed.message).toContain(shown);
  });

  it('names the URL in NoSuchDriverError', async () => {
    const error = await thrown(() => connect('zz-nothing://host/path'));
    expect(MqError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('"zz-nothing://host/path"');
    expect((error as { url?: string }).url).toBe('zz-nothing://host/path');
  });

  it('cuts long values short in the message and keeps them whole on the error', async () => {
    const long = 'x'.repeat(10_000);
    const error = (await thrown(() => prepareTaskConsume('core', handler, loose({ topic: long, segment: 's' })))) as InstanceType<
      typeof InvalidArgumentError
    >;
    expect(error.message.length).toBeLessThan(500);
    expect(error.message).toContain('(10002 characters)');
    expect(error.value).toBe(long);
  });
});

describe('unknown option keys are rejected, naming the key', () => {
  const cases: [label: string, run: () => unknown, argument: string][] = [
    ['taskPublish segmnet', () => prepareTaskPublish('core', capabilities, 1, loose({ segment: 's', segmnet: 't' })), 'segmnet'],
    ['taskPublish topic', () => prepareTaskPublish('core', capabilities, 1, loose({ segment: 's', topic: 'T' })), 'topic'],
    [
      'sharePublish header',
      () => prepareSharePublish('core', capabilities, 1, loose({ segment: 's', topic: 'T', header: {} })),
      'header',
    ],
    [
      'taskConsume prefech',
      () => prepareTaskConsume('core', handler, loose({ topic: 'K', segment: 's', prefech: 1 })),
      'prefech',
    ],
    [
      'taskConsume topics',
      () => prepareTaskConsume('core', handler, loose({ topic: 'K', segment: 's', topics: ['K'] })),
      'topics',
    ],
    [
      'shareConsume form',
      () => prepareShareConsume('core', capabilities, handler, loose({ topics: ['a'], segment: 's', form: 'earliest' })),
      'form',
    ],
    [
      'shareConsume topic',
      () => prepareShareConsume('core', capabilities, handler, loose({ topics: ['a'], segment: 's', topic: 'a' })),
      'topic',
    ],
    ['dead-letter target knd', () => prepareDeadLetterTarget('core', loose({ segment: 's', knd: 'K' })), 'target.knd'],
    ['close timeout', () => prepareCloseOptions('core', loose({ timeout: 5 })), 'timeout'],
    ['redrive id', () => prepareRedriveOptions('core', loose({ id: ['x'] })), 'id'],
    ['backoff factor', () => validateBackoffOptions('core', { baseMs: 1, maxMs: 2, factor: 3 }, 'backoff'), 'backoff.factor'],
    ['drivers resolvefrom', () => drivers(loose({ resolvefrom: '.' })), 'options.resolvefrom'],
  ];

  it.each(cases)('%s', async (_label, run, argument) => {
    const error = await thrown(run);
    expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true);
    const typed = error as InstanceType<typeof InvalidArgumentError>;
    expect(typed.argument).toBe(argument);
    expect(typed.message).toContain('is not a known option (known: ');
  });

  it('lets keys through whose value is undefined (they ask for nothing)', () => {
    expect(prepareTaskPublish('core', capabilities, 1, loose({ segment: 's', extra: undefined })).segment).toBe('s');
    expect(prepareCloseOptions('core', loose({ timeoutMs: 5, other: undefined }))).toBe(5);
  });
});
