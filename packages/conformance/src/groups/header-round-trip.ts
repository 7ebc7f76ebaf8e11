import { InvalidArgumentError, type MessageHeaders } from '@mq-drivers/core';
import { assertJsonEqual, ConformanceError, check, show } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import { waitFor, withDeadline } from '../wait.js';

const KIND = 'conf.headers';

/** Must round-trip on every driver. */
const ordinary: MessageHeaders[] = [
  { 'trace-id': 'abc-123' },
  { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'rojo=00f067aa0ba902b7' },
  { 'Mixed-Case': 'Value', upper: 'lower', UPPER: 'other' },
  { 'dots.in.key': 'v', number: '42', bool: 'true', json: '{"a":1}' },
];

/** Names a broker, a protocol or our wire format may own: each round-trips or is refused. */
const tricky: MessageHeaders[] = [
  { 'x-death': 'x' },
  { 'x-delivery-count': '3' },
  { 'x-first-death-reason': 'rejected' },
  { 'x-first-death-queue': 'q' },
  { 'x-first-death-exchange': 'e' },
  { 'x-last-death-reason': 'expired' },
  { 'x-last-death-queue': 'q' },
  { 'x-last-death-exchange': 'e' },
  { 'x-received-from': 'x' },
  { CC: 'conf.other' },
  { BCC: 'conf.other' },
  { 'x-match': 'all' },
  { 'x-delay': '1000' },
  { 'x-message-ttl': '1' },
  { 'x-expires': '1' },
  { 'x-dead-letter-exchange': 'x' },
  { 'content-type': 'text/plain' },
  { 'content-encoding': 'gzip' },
  { id: 'x', topic: 'other', attempt: '7', segment: 'other', timestamp: '1' },
  { empty: '' },
  { unicode: 'ключ ✓ 🎉' },
  { spaces: '  padded  ' },
  { newline: 'a\nb' },
  { long: 'v'.repeat(4096) },
];

export const headerCases: CaseDefinition[] = [
  {
    id: 'bad-input.headers-round-trip',
    group: 'bad-input',
    name: 'every header is either refused at publish with InvalidArgumentError naming it, or arrives unchanged (also on redelivery); ordinary headers are accepted',
    budget: 8,
    async run(ctx) {
      const producer = await ctx.driver();
      const consumer = await ctx.driver();
      await ctx.taskConsume(
        consumer,
        ctx.recorder.handler('worker', (message) => {
          if (message.attempt === 1) throw new Error('conformance: fails once to see the headers of the redelivery');
        }),
        { segment: ctx.segment, topic: KIND, maxAttempts: 3 },
      );
      await ctx.shareConsume(consumer, ctx.recorder.handler('subscriber'), { segment: ctx.segment, topics: ['#'] });
      const sent = new Map<string, MessageHeaders>();
      const problems: string[] = [];
      for (const headers of [...ordinary, ...tricky]) {
        for (const pattern of ['task', 'share'] as const) {
          const label = `${pattern}Publish headers ${show(headers)}`;
          try {
            const publish =
              pattern === 'task'
                ? producer.taskPublish({ headers: true }, { segment: ctx.segment, headers })
                : producer.sharePublish({ headers: true }, { segment: ctx.segment, topic: KIND, headers });
            sent.set((await withDeadline(publish, ctx.timeoutMs, label)).id, headers);
          } catch (error) {
            if (error instanceof ConformanceError) throw error;
            if (ordinary.includes(headers)) problems.push(`${label}: ordinary headers were refused (${show(error)})`);
            else if (!InvalidArgumentError.isInstance(error) || !error.argument.startsWith('headers')) {
              problems.push(`${label}: rejected with ${show(error)}; expected InvalidArgumentError(headers…)`);
            } else if (!Object.keys(headers).some((key) => error.message.includes(key))) {
              problems.push(`${label}: the refusal ${show(error.message)} does not name the header`);
            }
          }
        }
      }
      check(problems.length === 0, () => `${problems.length} problem(s): ${problems.join(' | ')}`);
      const ids = [...sent.keys()];
      const arrived = () =>
        ids.every((id) =>
          ctx.recorder.deliveries.some(
            (d) => d.message.id === id && (d.consumer === 'subscriber' || (d.consumer === 'worker' && d.message.attempt === 2)),
          ),
        );
      await waitFor(arrived, {
        timeoutMs: ctx.timeoutMs * 2,
        description: 'every accepted message (tasks on their redelivery, shares once)',
        details: () => `missing: ${ids.filter((id) => !ctx.recorder.ids().includes(id)).join(', ')}`,
      });
      for (const delivery of ctx.recorder.deliveries) {
        const headers = sent.get(delivery.message.id);
        if (headers === undefined) continue; // a task copy of another kind's probe; none here
        assertJsonEqual(
          { ...delivery.message.headers },
          headers,
          `headers of ${delivery.message.id} at the ${delivery.consumer} (attempt ${delivery.message.attempt})`,
        );
      }
    },
  },
];
