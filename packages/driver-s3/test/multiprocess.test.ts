import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describeIdDiff } from '@mq-drivers/conformance/services';
import { afterEach, describe, expect, it } from 'vitest';
import { s3Unavailable, segmentName, waitFor } from './helpers.js';

const unavailable = await s3Unavailable();
const FIXTURE = fileURLToPath(new URL('./fixtures/process.mjs', import.meta.url));

interface Event {
  event: 'ready' | 'start' | 'ack' | 'published';
  worker?: string;
  id?: string;
  ids?: string[];
}

const children: ChildProcess[] = [];
const events: Event[] = [];

function run(args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--no-warnings', FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as Event);
    } catch {
      // not ours
    }
  });
  return child;
}

const acks = (worker?: (w: string) => boolean) =>
  events.filter((e) => e.event === 'ack' && (!worker || worker(e.worker!))).map((e) => e.id!);
const published = () => events.filter((e) => e.event === 'published').flatMap((e) => e.ids!);

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((resolve) => child.once('exit', resolve));
}

describe.skipIf(unavailable !== undefined)(`s3 across processes${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  afterEach(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(children.splice(0).map(exited));
    events.length = 0;
  });

  it('3 publishers, 3 workers of one kind and 1 of another: each kind gets every task exactly once; a worker killed mid-batch loses nothing', async () => {
    const segment = segmentName('multiprocess');
    // Register both kinds and start the workers first.
    const workers = ['a1', 'a2', 'a3'].map((label) => run(['work', segment, 'resize', label, '10', '5']));
    run(['work', segment, 'audit', 'b1', '1', '10']);
    await waitFor(
      () => events.filter((e) => e.event === 'ready').length === 4,
      30_000,
      () => 'workers not ready',
    );

    const publishers = ['p1', 'p2', 'p3'].map((label) => run(['publish', segment, '60', label]));
    await Promise.all(publishers.map(exited));
    const ids = published();
    expect(ids).toHaveLength(180);
    const kindA = () => acks((w) => w.startsWith('a'));
    const kindB = () => acks((w) => w === 'b1');
    await waitFor(
      () => kindA().length >= 180 && kindB().length >= 180,
      60_000,
      () => `resize: ${describeIdDiff(ids, kindA())}; audit: ${describeIdDiff(ids, kindB())}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect([...kindA()].sort(), `resize: ${describeIdDiff(ids, kindA())}`).toEqual([...ids].sort());
    expect([...kindB()].sort(), `audit: ${describeIdDiff(ids, kindB())}`).toEqual([...ids].sort());

    // Phase 2: the kind's workers stop; a slow worker takes the next tasks and is killed (kill -9)
    // mid-batch; a new worker gets what the victim had not acked once the lease ran out.
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map(exited));
    events.length = 0;
    const victim = run(['work', segment, 'resize', 'victim', '300', '10']);
    await waitFor(
      () => events.some((e) => e.event === 'ready' && e.worker === 'victim'),
      30_000,
      () => 'victim not ready',
    );
    const more = ['p4', 'p5'].map((label) => run(['publish', segment, '20', label]));
    await Promise.all(more.map(exited));
    const ids2 = published();
    await waitFor(
      () => events.filter((e) => e.event === 'start' && e.worker === 'victim').length >= 5,
      30_000,
      () => 'victim never started a task',
    );
    victim.kill('SIGKILL');
    await exited(victim);
    run(['work', segment, 'resize', 'a4', '5', '10']);
    const victimAcked = new Set(acks((w) => w === 'victim'));
    const victimStarted = events.filter((e) => e.event === 'start' && e.worker === 'victim').map((e) => e.id!);
    const unacked = victimStarted.filter((id) => !victimAcked.has(id));
    expect(unacked.length, 'the victim was killed mid-batch').toBeGreaterThan(0);
    const resize = () => acks((w) => w !== 'b1');
    const done = () => new Set(resize());
    await waitFor(
      () => ids2.every((id) => done().has(id)),
      60_000,
      () => `after kill: ${describeIdDiff(ids2, [...done()])}`,
    );
    await waitFor(
      () => new Set(acks((w) => w === 'b1')).size >= ids2.length,
      30_000,
      () =>
        `audit after kill: ${describeIdDiff(
          ids2,
          acks((w) => w === 'b1'),
        )}`,
    );
    expect([...acks((w) => w === 'b1')].sort()).toEqual([...ids2].sort());
    // The victim's unacked tasks went to the other workers.
    const survivors = new Set(acks((w) => w !== 'victim' && w !== 'b1'));
    for (const id of unacked) expect(survivors.has(id), `unacked ${id} redelivered`).toBe(true);
    // Duplicates only where a crash can cause them: tasks the victim had claimed.
    const counts = new Map<string, number>();
    for (const id of resize()) counts.set(id, (counts.get(id) ?? 0) + 1);
    const dup = [...counts].filter(([id, n]) => n > 1 && !victimStarted.includes(id) && !victimAcked.has(id));
    expect(dup, "duplicates outside the victim's claims").toEqual([]);
  }, 180_000);
});
