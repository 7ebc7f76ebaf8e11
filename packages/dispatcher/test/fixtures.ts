/**
 * Worker module written into a temp folder for CLI tests. It appends one JSON line per event to
 * env RESULTS_FILE. Message bodies steer it: `{crash: true}` throws on attempt 1, `{ms}` sleeps.
 * `publish` (the `ready` hook) publishes env TASKS tasks on env SEGMENT.
 */
export const WORKER_MODULE = `import { appendFileSync } from 'node:fs';

const record = (event) => appendFileSync(process.env.RESULTS_FILE, JSON.stringify({ pid: process.pid, ...event }) + '\\n');

export class TestWorker {
  constructor({ instance, generation }) {
    this.me = { instance, generation };
    record({ event: 'construct', ...this.me });
  }

  async consume(message) {
    const seen = { id: message.id, attempt: message.attempt, ...this.me };
    record({ event: 'consume', ...seen });
    const { crash, ms } = message.body;
    if (ms) await new Promise((resolve) => setTimeout(resolve, ms));
    if (crash && message.attempt === 1) {
      record({ event: 'throw', ...seen });
      throw new Error('crash on purpose');
    }
    record({ event: 'handled', ...seen });
  }

  shutdown(error) {
    record({ event: 'shutdown', ...this.me, ...(error ? { error: error.message } : {}) });
  }
}

export async function publish({ driver }) {
  const count = Number(process.env.TASKS ?? 0);
  const ms = Number(process.env.TASK_MS ?? 0);
  const crash = Number(process.env.CRASH_AT ?? -1);
  for (let n = 0; n < count; n++) {
    const { id } = await driver.taskPublish({ n, ms, crash: n === crash }, { segment: process.env.SEGMENT });
    record({ event: 'published', id });
  }
}
`;

export function workersYaml(options: {
  segment: string;
  url?: string;
  ready?: boolean;
  instances?: number;
  prefetch?: number;
  graceMs?: number;
  extra?: string;
}): string {
  return [
    options.url ? `url: "${options.url}"` : '',
    options.ready === false ? '' : 'ready: ./worker.js#publish',
    `shutdownGraceMs: ${options.graceMs ?? 10_000}`,
    'driverOptions:',
    '  redeliveryBackoff: { baseMs: 10, maxMs: 50 }',
    'restart: { baseMs: 10, maxMs: 100 }',
    options.extra ?? '',
    'consumers:',
    '  - consumer: ./worker.js#TestWorker',
    `    task: { kind: Job, segment: ${options.segment} }`,
    `    consumer_count: ${options.instances ?? 1}`,
    `    prefetch_count: ${options.prefetch ?? 1}`,
    '    maxAttempts: 3',
    '',
  ]
    .filter((line) => line !== '')
    .join('\n');
}
