import {
  type Capabilities,
  type Driver,
  type Handler,
  InvalidArgumentError,
  MessageTooLargeError,
  MqError,
  UnsupportedError,
} from '@mq-drivers/core';
import { assertExactlyOnce, assertJsonEqual, ConformanceError, check, show } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import type { CaseContext } from '../harness.js';
import { watchQuiet, withDeadline } from '../wait.js';
import { headerCases } from './header-round-trip.js';
import { rejectionOf } from './lifecycle.js';
import { urlSecretCases } from './url-secrets.js';

const PROBE_KIND = 'conf.probe';
/** Bad consume calls use this kind / topic, so a wrongly accepted one would get the liveness messages. */
const BAD = 'conf.bad';

type Expected =
  | { error: 'InvalidArgumentError'; argument: string | ((argument: string) => boolean); describe?: string }
  | { error: 'MessageTooLargeError' }
  | { error: 'UnsupportedError'; feature: string };

interface BadCall {
  /** What is passed, e.g. `taskPublish segment "a.b"`. */
  label: string;
  call(driver: Driver, badHandler: Handler, segment: string): unknown;
  expected: Expected;
}

const invalid = (argument: string | ((argument: string) => boolean), describe?: string): Expected => ({
  error: 'InvalidArgumentError',
  argument,
  ...(describe === undefined ? {} : { describe }),
});
const startsWith = (prefix: string) => (argument: string) =>
  argument === prefix || argument.startsWith(`${prefix}.`) || argument.startsWith(`${prefix}[`);

/** Both publish methods with the same options patch. */
function publishes(label: string, body: unknown, patch: Record<string, unknown>, expected: Expected): BadCall[] {
  return [
    {
      label: `taskPublish ${label}`,
      call: (driver, _handler, segment) => driver.taskPublish(body as never, { segment, ...patch } as never),
      expected,
    },
    {
      label: `sharePublish ${label}`,
      call: (driver, _handler, segment) => driver.sharePublish(body as never, { segment, topic: BAD, ...patch } as never),
      expected,
    },
  ];
}

/** Both consume methods with the same options patch. */
function consumes(label: string, patch: Record<string, unknown>, expected: Expected): BadCall[] {
  return [
    {
      label: `taskConsume ${label}`,
      call: (driver, handler, segment) => driver.taskConsume(handler, { segment, topic: BAD, ...patch } as never),
      expected,
    },
    {
      label: `shareConsume ${label}`,
      call: (driver, handler, segment) => driver.shareConsume(handler, { segment, topics: [BAD], ...patch } as never),
      expected,
    },
  ];
}

function checkError(error: unknown, expected: Expected, driverName: string, capabilities: Capabilities): string | undefined {
  if (!MqError.isInstance(error)) return `rejected with ${show(error)}, not an MqError (${expected.error} expected)`;
  if (expected.error === 'InvalidArgumentError') {
    if (!InvalidArgumentError.isInstance(error))
      return `rejected with ${error.name} (${error.message}), not InvalidArgumentError`;
    const ok = typeof expected.argument === 'string' ? error.argument === expected.argument : expected.argument(error.argument);
    if (!ok) {
      const want = typeof expected.argument === 'string' ? show(expected.argument) : (expected.describe ?? 'the bad argument');
      return `InvalidArgumentError names argument ${show(error.argument)}; expected ${want}`;
    }
  } else if (expected.error === 'MessageTooLargeError') {
    if (!MessageTooLargeError.isInstance(error))
      return `rejected with ${error.name} (${error.message}), not MessageTooLargeError`;
    if (error.maxBytes !== capabilities.maxMessageBytes) {
      return `MessageTooLargeError.maxBytes is ${show(error.maxBytes)}; capabilities.maxMessageBytes is ${capabilities.maxMessageBytes}`;
    }
    if (!(error.bytes > error.maxBytes)) return `MessageTooLargeError.bytes (${show(error.bytes)}) is not above maxBytes`;
  } else {
    if (!UnsupportedError.isInstance(error)) return `rejected with ${error.name} (${error.message}), not UnsupportedError`;
    if (error.feature !== expected.feature)
      return `UnsupportedError.feature is ${show(error.feature)}; expected ${show(expected.feature)}`;
  }
  if (!error.message.startsWith(driverName))
    return `error message ${show(error.message)} does not start with the driver name ${driverName}`;
  return undefined;
}

/**
 * Runs bad calls against a live segment: a probe worker (kind `conf.probe`) and a probe
 * subscriber (`#`) watch the segment. Every call must reject with the expected typed error;
 * then, during the watch window, nothing may reach the probes or any handler given to a bad
 * consume call; finally a valid task and share must reach the probes (so the probes were live)
 * and still not the bad handlers.
 */
export async function expectRejected(ctx: CaseContext, calls: readonly BadCall[]): Promise<void> {
  const producer = await ctx.driver();
  const probe = await ctx.driver();
  await ctx.taskConsume(probe, ctx.recorder.handler('probe-worker'), { segment: ctx.segment, topic: PROBE_KIND });
  await ctx.shareConsume(probe, ctx.recorder.handler('probe-subscriber'), { segment: ctx.segment, topics: ['#'] });
  const consumer = await ctx.driver();
  const badHandler = ctx.recorder.handler('bad-consume-handler');
  const problems: string[] = [];
  for (const bad of calls) {
    let result: unknown;
    try {
      result = bad.call(bad.label.includes('Consume') ? consumer : producer, badHandler, ctx.segment);
    } catch (error) {
      problems.push(`${bad.label}: threw synchronously (${show(error)}); driver methods must return a rejected promise`);
      continue;
    }
    if (result === null || typeof (result as Promise<unknown>)?.then !== 'function') {
      problems.push(`${bad.label}: returned ${show(result)} instead of a promise`);
      continue;
    }
    try {
      const value = await withDeadline(Promise.resolve(result), ctx.timeoutMs, bad.label);
      ctx.track(value);
      problems.push(`${bad.label}: was accepted (resolved to ${show(value)}); expected ${bad.expected.error}`);
    } catch (error) {
      if (error instanceof ConformanceError) {
        problems.push(error.message);
        continue;
      }
      const problem = checkError(error, bad.expected, producer.name, ctx.capabilities);
      if (problem !== undefined) problems.push(`${bad.label}: ${problem}`);
    }
  }
  const consumers = ['probe-worker', 'probe-subscriber', 'bad-consume-handler'];
  const delivered = () =>
    ctx.recorder
      .of(consumers)
      .map((delivery) => `${delivery.consumer} got ${delivery.message.id} ${show(delivery.message.body)}`);
  await watchQuiet(
    ctx.quietMs,
    () => check(delivered().length === 0, () => `rejected input was delivered: ${delivered().join('; ')}`),
    'nothing from rejected calls may arrive',
  ).catch((error: Error) => problems.push(error.message));
  check(problems.length === 0, () => `${problems.length} bad input problem(s): ${problems.join(' | ')}`);
  const task = await producer.taskPublish({ valid: true }, { segment: ctx.segment });
  const share = await producer.sharePublish({ valid: true }, { segment: ctx.segment, topic: BAD });
  await ctx.recorder.waitForIds([task.id], {
    consumer: 'probe-worker',
    timeoutMs: ctx.timeoutMs,
    description: 'a valid task after the bad calls',
  });
  await ctx.recorder.waitForIds([share.id], {
    consumer: 'probe-subscriber',
    timeoutMs: ctx.timeoutMs,
    description: 'a valid share after the bad calls',
  });
  await watchQuiet(
    ctx.quietMs,
    () => {
      assertExactlyOnce([task.id], ctx.recorder.ids('probe-worker'), 'probe worker');
      assertExactlyOnce([share.id], ctx.recorder.ids('probe-subscriber'), 'probe subscriber');
      assertExactlyOnce([], ctx.recorder.ids('bad-consume-handler'), 'handler passed to a rejected consume call');
    },
    'after a valid publish',
  );
}

const badSegments: unknown[] = [
  '',
  'a.b',
  'has space',
  '-leading',
  '_leading',
  'x'.repeat(65),
  'ümlaut',
  'a/b',
  5,
  null,
  undefined,
];
const badTopics: unknown[] = ['', 'a.*', 'a.#', '*', '#', 'a..b', '.a', 'a.', 'a b', 'a/b', 'x'.repeat(256), 7, null, undefined];

function cycle(): unknown {
  const value: Record<string, unknown> = { a: 1 };
  value.self = value;
  return value;
}

function deepCycle(): unknown {
  const list: unknown[] = [1];
  list.push({ inner: list });
  return list;
}

class Custom {
  x = 1;
}

// biome-ignore lint/suspicious/noSparseArray: a hole is exactly what is tested
const sparse = [1, , 3];

const badBodies: [string, () => unknown][] = [
  ['undefined', () => undefined],
  ['a function', () => () => 1],
  ['a BigInt', () => 10n],
  ['a symbol', () => Symbol('s')],
  ['NaN', () => Number.NaN],
  ['Infinity', () => Number.POSITIVE_INFINITY],
  ['-Infinity', () => Number.NEGATIVE_INFINITY],
  ['a Date', () => new Date(0)],
  ['a Map', () => new Map([['a', 1]])],
  ['a Set', () => new Set([1])],
  ['a class instance', () => new Custom()],
  ['a cycle', cycle],
  ['a cycle through an array', deepCycle],
  ['{a: undefined}', () => ({ a: undefined })],
  ['[1, undefined]', () => [1, undefined]],
  ['{n: NaN}', () => ({ n: Number.NaN })],
  ['{nested: {f: function}}', () => ({ nested: { f() {} } })],
  ['{big: BigInt}', () => ({ big: 1n })],
  ['a sparse array', () => sparse],
  ['a Buffer', () => Buffer.from('x')],
];

export const badInputCases: CaseDefinition[] = [
  {
    id: 'bad-input.segment',
    group: 'bad-input',
    name: 'a bad segment is rejected with InvalidArgumentError(segment) by every method; nothing delivered',
    async run(ctx) {
      const calls: BadCall[] = [];
      for (const segment of badSegments) {
        calls.push(...publishes(`segment ${show(segment)}`, { x: 1 }, { segment }, invalid('segment')));
        calls.push(...consumes(`segment ${show(segment)}`, { segment }, invalid('segment')));
      }
      calls.push({
        label: 'listDeadLetters segment "a.b"',
        call: (driver) => driver.listDeadLetters({ segment: 'a.b', kind: BAD }),
        expected: invalid(startsWith('target'), 'target.segment'),
      });
      await expectRejected(ctx, calls);
    },
  },
  {
    id: 'bad-input.publish-topic',
    group: 'bad-input',
    name: 'sharePublish with a wildcard, empty or malformed topic is rejected with InvalidArgumentError(topic); nothing delivered',
    async run(ctx) {
      await expectRejected(
        ctx,
        badTopics.map((topic) => ({
          label: `sharePublish topic ${show(topic)}`,
          call: (driver, _handler, segment) => driver.sharePublish({ x: 1 }, { segment, topic } as never),
          expected: invalid('topic'),
        })),
      );
    },
  },
  {
    id: 'bad-input.kind',
    group: 'bad-input',
    name: 'taskConsume with a wildcard, empty or malformed kind is rejected with InvalidArgumentError(topic)',
    async run(ctx) {
      await expectRejected(
        ctx,
        badTopics.map((topic) => ({
          label: `taskConsume kind ${show(topic)}`,
          call: (driver, handler, segment) => driver.taskConsume(handler, { segment, topic } as never),
          expected: invalid('topic'),
        })),
      );
    },
  },
  {
    id: 'bad-input.patterns',
    group: 'bad-input',
    name: 'shareConsume with no patterns or a malformed pattern is rejected with InvalidArgumentError(topics…)',
    async run(ctx) {
      const patterns: unknown[] = [
        [],
        'conf.bad',
        undefined,
        null,
        [''],
        ['a..b'],
        ['a.b*'],
        ['a.#b'],
        ['*a'],
        [BAD, 'x.#y'],
        [5],
        ['x'.repeat(256)],
      ];
      await expectRejected(
        ctx,
        patterns.map((topics) => ({
          label: `shareConsume topics ${show(topics)}`,
          call: (driver, handler, segment) => driver.shareConsume(handler, { segment, topics } as never),
          expected: invalid(startsWith('topics'), 'topics or topics[i]'),
        })),
      );
    },
  },
  {
    id: 'bad-input.body',
    group: 'bad-input',
    name: 'bodies that do not survive JSON (undefined, function, BigInt, cycle, NaN, Infinity, Date, Map, …) are rejected with InvalidArgumentError(body…); nothing delivered',
    async run(ctx) {
      await expectRejected(
        ctx,
        badBodies.flatMap(([label, make]) =>
          publishes(`body ${label}`, make(), {}, invalid(startsWith('body'), 'body or body.<path>')),
        ),
      );
    },
  },
  {
    id: 'bad-input.too-large',
    group: 'bad-input',
    name: 'a message over maxMessageBytes (body, or body plus headers) is rejected with MessageTooLargeError; nothing delivered',
    skip: (capabilities) =>
      capabilities.maxMessageBytes > 64 * 1024 * 1024 ? 'maxMessageBytes over 64 MiB is too large to build in a test' : undefined,
    async run(ctx) {
      const max = ctx.capabilities.maxMessageBytes;
      await expectRejected(ctx, [
        ...publishes('body of maxMessageBytes + 1', 'x'.repeat(max - 1), {}, { error: 'MessageTooLargeError' }),
        ...publishes(
          'body of maxMessageBytes - 10 plus 11 bytes of headers',
          'x'.repeat(max - 12),
          { headers: { k12345: 'v2345' } },
          { error: 'MessageTooLargeError' },
        ),
        ...publishes('body of 2 × maxMessageBytes', { big: 'é'.repeat(max) }, {}, { error: 'MessageTooLargeError' }),
      ]);
    },
  },
  {
    id: 'bad-input.at-limit',
    group: 'bad-input',
    name: 'a message of exactly maxMessageBytes (JSON body plus headers) is accepted and arrives intact',
    skip: (capabilities) =>
      capabilities.maxMessageBytes > 16 * 1024 * 1024 ? 'maxMessageBytes over 16 MiB is too large to send in a test' : undefined,
    async run(ctx) {
      const max = ctx.capabilities.maxMessageBytes;
      const producer = await ctx.driver();
      await ctx.taskConsume(await ctx.driver(), ctx.recorder.handler('worker'), { segment: ctx.segment, topic: PROBE_KIND });
      const body = 'x'.repeat(max - 2 - 11);
      const headers = { k12345: 'v2345' };
      const receipt = await withDeadline(
        producer.taskPublish(body, { segment: ctx.segment, headers }),
        ctx.timeoutMs,
        `taskPublish of exactly ${max} bytes`,
      );
      await ctx.expectExactlyOnce([receipt.id], { label: 'the worker' });
      const message = ctx.recorder.deliveries[0]!.message;
      check(message.body === body, `the ${max}-byte body arrived changed (length ${show((message.body as string)?.length)})`);
      assertJsonEqual({ ...message.headers }, headers, 'headers');
    },
  },
  {
    id: 'bad-input.headers',
    group: 'bad-input',
    name: 'bad headers (not an object, bad key, non-string value) are rejected with InvalidArgumentError(headers…); nothing delivered',
    async run(ctx) {
      const headers: unknown[] = [
        'text',
        ['a'],
        null,
        5,
        { '': 'v' },
        { 'has space': 'v' },
        { 'a:b': 'v' },
        { ['k'.repeat(129)]: 'v' },
        { ümlaut: 'v' },
        { ok: 5 },
        { ok: null },
        { ok: undefined },
        { ok: { nested: 'v' } },
        { ok: ['v'] },
      ];
      await expectRejected(
        ctx,
        headers.flatMap((value) =>
          publishes(`headers ${show(value)}`, { x: 1 }, { headers: value }, invalid(startsWith('headers'))),
        ),
      );
    },
  },
  {
    id: 'bad-input.reserved-headers',
    group: 'bad-input',
    name: 'headers starting with the reserved `x-mq-` prefix (any case) are rejected with InvalidArgumentError(headers…)',
    async run(ctx) {
      const keys = ['x-mq-attempt', 'x-mq-id', 'X-MQ-Anything', 'x-Mq-', 'x-mq-'];
      await expectRejected(
        ctx,
        keys.flatMap((key) =>
          publishes(`header ${show(key)}`, { x: 1 }, { headers: { fine: 'yes', [key]: '1' } }, invalid(startsWith('headers'))),
        ),
      );
    },
  },
  {
    id: 'bad-input.message-id',
    group: 'bad-input',
    name: 'a bad message id (empty, spaces, non-ASCII, over 128 characters, not a string) is rejected with InvalidArgumentError(id)',
    async run(ctx) {
      const ids: unknown[] = ['', 'has space', 'tab\tid', 'ümlaut', 'x'.repeat(129), 5, null, {}];
      await expectRejected(
        ctx,
        ids.flatMap((id) => publishes(`id ${show(id)}`, { x: 1 }, { id }, invalid('id'))),
      );
    },
  },
  {
    id: 'bad-input.options',
    group: 'bad-input',
    name: 'missing or non-object options are rejected with InvalidArgumentError',
    async run(ctx) {
      const optionArgument = (argument: string) => ['options', 'segment', 'topic', 'topics'].includes(argument);
      const calls: BadCall[] = [];
      for (const options of [undefined, null, 'conf-seg', 5]) {
        const expected = invalid(optionArgument, 'options (or the first missing field)');
        calls.push(
          {
            label: `taskPublish options ${show(options)}`,
            call: (driver) => driver.taskPublish({ x: 1 }, options as never),
            expected,
          },
          {
            label: `sharePublish options ${show(options)}`,
            call: (driver) => driver.sharePublish({ x: 1 }, options as never),
            expected,
          },
          {
            label: `taskConsume options ${show(options)}`,
            call: (driver, handler) => driver.taskConsume(handler, options as never),
            expected,
          },
          {
            label: `shareConsume options ${show(options)}`,
            call: (driver, handler) => driver.shareConsume(handler, options as never),
            expected,
          },
        );
      }
      await expectRejected(ctx, calls);
    },
  },
  {
    id: 'bad-input.prefetch',
    group: 'bad-input',
    name: 'prefetch 0, 1.5, -1, NaN, Infinity or "3" is rejected with InvalidArgumentError(prefetch); the handler is never called',
    async run(ctx) {
      const values: unknown[] = [0, 1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, '3', null];
      await expectRejected(
        ctx,
        values.flatMap((prefetch) => consumes(`prefetch ${show(prefetch)}`, { prefetch }, invalid('prefetch'))),
      );
    },
  },
  {
    id: 'bad-input.max-attempts',
    group: 'bad-input',
    name: 'maxAttempts 0, 1.5, -2 or "5" is rejected with InvalidArgumentError(maxAttempts); the handler is never called',
    async run(ctx) {
      const values: unknown[] = [0, 1.5, -2, '5', Number.NaN, null];
      await expectRejected(
        ctx,
        values.flatMap((maxAttempts) => consumes(`maxAttempts ${show(maxAttempts)}`, { maxAttempts }, invalid('maxAttempts'))),
      );
    },
  },
  {
    id: 'bad-input.handler',
    group: 'bad-input',
    name: 'a handler that is not a function is rejected with InvalidArgumentError(handler)',
    async run(ctx) {
      const handlers: unknown[] = [undefined, null, 'handler', {}, 5];
      await expectRejected(
        ctx,
        handlers.flatMap((handler): BadCall[] => [
          {
            label: `taskConsume handler ${show(handler)}`,
            call: (driver, _handler, segment) => driver.taskConsume(handler as never, { segment, topic: BAD }),
            expected: invalid('handler'),
          },
          {
            label: `shareConsume handler ${show(handler)}`,
            call: (driver, _handler, segment) => driver.shareConsume(handler as never, { segment, topics: [BAD] }),
            expected: invalid('handler'),
          },
        ]),
      );
    },
  },
  {
    id: 'bad-input.subscription-name',
    group: 'bad-input',
    name: 'a bad share subscription name is rejected with InvalidArgumentError(name)',
    async run(ctx) {
      const names: unknown[] = ['', 'a.b', 'has space', '-x', 'x'.repeat(65), 5, null];
      await expectRejected(
        ctx,
        names.map((name) => ({
          label: `shareConsume name ${show(name)}`,
          call: (driver, handler, segment) => driver.shareConsume(handler, { segment, topics: [BAD], name } as never),
          expected: invalid('name'),
        })),
      );
    },
  },
  {
    id: 'bad-input.from',
    group: 'bad-input',
    name: 'a malformed `from` is rejected with InvalidArgumentError(from)',
    async run(ctx) {
      const values: unknown[] = ['yesterday', 'EARLIEST', new Date('not a date'), { cursor: 5 }, {}, 5, null];
      await expectRejected(
        ctx,
        values.map((from) => ({
          label: `shareConsume from ${show(from)}`,
          call: (driver, handler, segment) => driver.shareConsume(handler, { segment, topics: [BAD], from } as never),
          expected: invalid(startsWith('from'), 'from or from.<field>'),
        })),
      );
    },
  },
  {
    id: 'bad-input.replay-unsupported',
    group: 'bad-input',
    name: "without the replay capability, `from: 'earliest' | Date | {cursor}` is rejected with UnsupportedError(replay)",
    skip: (capabilities) => (capabilities.replay ? 'driver has the replay capability' : undefined),
    async run(ctx) {
      await expectRejected(
        ctx,
        (['earliest', new Date(0), { cursor: 'c' }] as const).map((from) => ({
          label: `shareConsume from ${show(from)}`,
          call: (driver, handler, segment) => driver.shareConsume(handler, { segment, topics: [BAD], from }),
          expected: { error: 'UnsupportedError', feature: 'replay' },
        })),
      );
    },
  },
  {
    id: 'bad-input.dead-letter-target',
    group: 'bad-input',
    name: 'a bad dead-letter target is rejected with InvalidArgumentError(target…) by listDeadLetters and redriveDeadLetters',
    async run(ctx) {
      const segment = ctx.segment;
      const targets: unknown[] = [
        { segment },
        { segment: 'a.b', kind: BAD },
        { segment, kind: 'a.*' },
        { segment, kind: '' },
        { segment, subscription: 'a.b' },
        { segment, subscription: '' },
        { kind: BAD },
      ];
      const expected = invalid(
        (argument) => argument === 'options' || startsWith('target')(argument),
        'target or target.<field>',
      );
      await expectRejected(
        ctx,
        targets.flatMap((target): BadCall[] => [
          { label: `listDeadLetters ${show(target)}`, call: (driver) => driver.listDeadLetters(target as never), expected },
          { label: `redriveDeadLetters ${show(target)}`, call: (driver) => driver.redriveDeadLetters(target as never), expected },
        ]),
      );
    },
  },
  {
    id: 'bad-input.close-timeout',
    group: 'bad-input',
    name: 'subscription.close({timeoutMs}) with a negative, NaN or non-number timeout rejects with InvalidArgumentError and leaves the subscription open',
    async run(ctx) {
      const producer = await ctx.driver();
      const subscription = await ctx.taskConsume(await ctx.driver(), ctx.recorder.handler('worker'), {
        segment: ctx.segment,
        topic: PROBE_KIND,
      });
      const problems: string[] = [];
      for (const timeoutMs of [-1, Number.NaN, '100', null]) {
        const label = `subscription.close({timeoutMs: ${show(timeoutMs)}})`;
        try {
          const error = await rejectionOf(() => subscription.close({ timeoutMs } as never), ctx.timeoutMs, label);
          if (!InvalidArgumentError.isInstance(error) || !/timeoutMs$/.test(error.argument)) {
            problems.push(`${label}: rejected with ${show(error)}; expected InvalidArgumentError(timeoutMs)`);
          }
        } catch (error) {
          problems.push(error instanceof Error ? error.message : String(error));
        }
      }
      check(problems.length === 0, () => problems.join('; '));
      check(subscription.closed === false, 'a close() rejected for a bad timeout closed the subscription anyway');
      const ids = await ctx.publishTasks(producer, 2);
      await ctx.expectExactlyOnce(ids, { label: 'the worker whose bad close() was rejected' });
    },
  },
  ...headerCases,
  ...urlSecretCases,
];
