import { randomUUID } from 'node:crypto';
import { consume, type EngineSubscription, type Handler, type PreparedTaskConsume } from '@mq-drivers/core';
import type { Context } from './context.js';
import { DeletedCheck } from './deleted-check.js';
import { type LogRecord, type Registration, seqName, storedFromRecord } from './layout.js';
import { Lease, type LeaseBody } from './lease.js';
import { DRIVER_NAME } from './options.js';
import { PullTransport, type S3Received, toReceived } from './transport.js';

interface HeldClaim {
  seq: number;
  start: number;
  end: number;
  lease: Lease;
  pending: number;
}

/** A task as a worker delivers it: from a claimed log range, or from the retry area. */
interface TaskReceived extends S3Received {
  readonly claim?: HeldClaim;
}

/** While a worker is busy, it recounts the live workers of its kind at most this often (one LIST). */
const RECOUNT_BUSY_MS = 1000;

/** Longest pause between two scans of a worker, whatever its lease: it rewrites its presence at least this often. */
export const MAX_SCAN_EVERY_MS = 10_000;

/** Registers a kind on a segment (first registration wins) and returns its registration. */
async function register(ctx: Context, segment: string, kind: string): Promise<Registration> {
  const key = ctx.keys.registration(segment, kind);
  const existing = await ctx.store.getJson<Registration>(key);
  if (existing) return existing;
  const mine: Registration = { kind, seq: (await ctx.logs.head(segment, 'task')) + 1, registeredAt: new Date().toISOString() };
  const result = await ctx.store.create(key, JSON.stringify(mine));
  if (result.created) return mine;
  return (await ctx.store.getJson<Registration>(key)) ?? mine;
}

/**
 * Writes `workers/<owner>`: the presence of a live worker of this driver instance, rewritten every
 * half lease (at most every 10 s). Other processes count live workers from it, and `unregister`
 * refuses to remove a kind while one is fresh.
 */
export async function announceWorker(ctx: Context, segment: string, kind: string, prefetch: number): Promise<void> {
  await ctx.store.put(
    `${ctx.keys.workers(segment, kind)}${ctx.owner}`,
    JSON.stringify({ owner: ctx.owner, prefetch, at: new Date().toISOString() }),
  );
}

/**
 * Starts a worker of a kind: registers the kind (first worker ever), announces the worker (visible
 * to other processes before this resolves: `unregister` there refuses while it is fresh), and runs it
 * on core's engine from the kind's position (its registration, or its watermark when further on).
 * `stillOpen` throws when the driver closed meanwhile; `onClosed` runs once the worker has closed.
 */
export async function openTaskWorker(
  ctx: Context,
  handler: Handler,
  spec: PreparedTaskConsume,
  stillOpen: () => void,
  onClosed: () => void,
): Promise<EngineSubscription> {
  const registration = await register(ctx, spec.segment, spec.kind);
  const mark = (await ctx.store.getJson<{ seq?: number }>(ctx.keys.watermark(spec.segment, spec.kind)))?.seq ?? 0;
  await announceWorker(ctx, spec.segment, spec.kind, spec.prefetch);
  try {
    stillOpen();
  } catch (error) {
    await ctx.store.delete(`${ctx.keys.workers(spec.segment, spec.kind)}${ctx.owner}`).catch(() => undefined);
    throw error;
  }
  const worker = new TaskWorker(ctx, spec, Math.max(registration.seq, mark));
  return consume(worker, {
    driver: DRIVER_NAME,
    name: spec.kind,
    handler,
    prefetch: spec.prefetch,
    maxAttempts: spec.maxAttempts,
    backoff: ctx.options.redeliveryBackoff,
    onClosed,
  });
}

/**
 * One worker of a kind, the transport of a task subscription. Work is claimed from the task log in
 * ranges: `claims/<seq>-<start>-<epoch>` created with `If-None-Match: *` holds messages [start, end)
 * of log object `seq` (end in the body; the next range starts where this one ends, so ranges never
 * overlap). A claim is a lease renewed by creating the next epoch; an expired one is taken over the
 * same way. When every message of a range is resolved (acked, moved to the retry area,
 * dead-lettered or handed back), `done/<seq>-<start>-<end>` is written; the kind's watermark skips
 * fully done objects.
 */
class TaskWorker extends PullTransport<TaskReceived> {
  private readonly claims = new Map<string, HeldClaim>();
  private readonly frontier = new Map<number, number>();
  private readonly counts = new Map<number, number>();
  private readonly deleted: DeletedCheck;
  private scanSeq: number;
  private watermark: number;
  private nextScan = 0;
  /** Owners of the live workers of this kind (from their presence objects), sorted; this one included. */
  private owners: string[] = [];
  /** Outcomes of this worker's recent claim races (true = won), newest last: its share of the work. */
  private readonly recent: boolean[] = [];
  private lastCount = 0;
  private counting: Promise<void> | undefined;
  private idleSince: number | undefined;
  /** Round trip of this worker's successful claims, in ms (smoothed). */
  private claimRtt = 0;
  /** Objects in a row we found already taken: a sign that other workers are ahead. */
  private behind = 0;

  constructor(
    ctx: Context,
    private readonly spec: PreparedTaskConsume,
    start: number,
  ) {
    super(ctx, ctx.keys.kind(spec.segment, spec.kind), ctx.keys.deadLetters(spec.segment, { kind: spec.kind }));
    this.scanSeq = start;
    this.watermark = start;
    this.deleted = new DeletedCheck(ctx.logs, spec.segment, 'task');
  }

  private get capacity(): number {
    return this.sink.capacity;
  }

  /** Claim more only when half the prefetch is free (or nothing is held): fewer, larger claims. */
  protected get wantsWork(): boolean {
    return this.capacity >= Math.ceil(this.spec.prefetch / 2);
  }

  /** Expired leases are looked for every half lease (so a dead worker's tasks move within 1.5 leases). */
  private get scanEvery(): number {
    return Math.min(MAX_SCAN_EVERY_MS, Math.max(250, Math.floor(this.ctx.options.leaseMs / 2)));
  }

  protected get busyWait(): number {
    return this.scanEvery;
  }

  protected override async housekeeping(): Promise<boolean> {
    if (Date.now() < this.nextScan) return false;
    this.nextScan = Date.now() + this.scanEvery;
    return this.scan();
  }

  protected readLog(): Promise<boolean> {
    return this.claimFromLog();
  }

  private async records(seq: number): Promise<LogRecord[] | undefined> {
    const records = await this.ctx.logs.read(this.spec.segment, 'task', seq);
    if (records) this.counts.set(seq, records.length);
    return records;
  }

  /** Where the claim chain of `seq` ends so far: the end of its last claim (0 when unclaimed). */
  private async discoverFrontier(seq: number): Promise<number> {
    const dir = this.ctx.keys.claims(this.spec.segment, this.spec.kind);
    const listed = await this.ctx.store.list(`${dir}${seqName(seq)}-`);
    let last = -1;
    for (const entry of listed) last = Math.max(last, this.ctx.keys.claimOf(entry.key)?.start ?? -1);
    if (last < 0) return 0;
    const body = await this.ctx.store.getJson<LeaseBody>(this.ctx.keys.claim(this.spec.segment, this.spec.kind, seq, last, 0));
    return body?.end ?? last;
  }

  /** The highest log object with a first-range claim (epoch 0) after `seq`; `seq` if none. */
  private async newestClaimedSeq(seq: number): Promise<number> {
    const dir = this.ctx.keys.claims(this.spec.segment, this.spec.kind);
    const listed = await this.ctx.store.list(dir, { startAfter: `${dir}${seqName(seq)}` });
    let newest = seq;
    for (const entry of listed) {
      const claim = this.ctx.keys.claimOf(entry.key);
      if (claim && claim.start === 0 && claim.epoch === 0) newest = Math.max(newest, claim.seq);
    }
    return newest;
  }

  private async claimFromLog(): Promise<boolean> {
    const seq = this.scanSeq;
    const records = await this.records(seq);
    if (!records && !this.stopped) {
      // Retention deletes a task log object only once every kind's watermark is past it, so a
      // deleted number (and everything below it) is done for this kind too: move on.
      const next = await this.deleted.after(seq);
      if (next !== undefined && this.scanSeq === seq) {
        this.frontier.delete(seq);
        this.scanSeq = next;
        this.watermark = Math.max(this.watermark, next);
        return true;
      }
    }
    if (!records || this.stopped) {
      this.idleSince ??= Date.now();
      return false;
    }
    // In a backlog, read the next object while claiming this one: after a lost race the next claim
    // goes out without another round trip.
    if (this.idleSince === undefined) void this.records(seq + 1).catch(() => undefined);
    const afterQuiet = this.idleSince !== undefined;
    if (Date.now() - this.lastCount > RECOUNT_BUSY_MS) {
      // Recount the live workers (peers may have started or left since the last count, which the
      // fairness rules below need): before claiming when work arrives after a quiet spell, else
      // alongside. At most once a second, so a trickle of tasks does not cost a LIST each.
      if (afterQuiet) await this.recount();
      else void this.recount();
    }
    this.idleSince = undefined;
    this.poll.found();
    // Optimistic: try the first range we do not know to be taken; a 412 tells us otherwise.
    let start = this.frontier.get(seq) ?? 0;
    // Fairness among competing workers: every range has one preferred worker (the live workers take
    // turns by position), which claims it at once; the others let it go first. Timing alone cannot
    // be fair: under load one worker's round trips are slower than another's, and whoever is a
    // round trip ahead would win every race.
    // - Work arriving after a quiet spell (tasks trickling in): the others wait for a poll interval
    //   and two claim round trips, time for the preferred worker to see the object and claim it.
    // - In a backlog: the others first read the claim at their frontier (one round trip) and claim
    //   only if it is still free, so a busy or dead preferred worker costs nobody more than that.
    let look = false;
    if (this.owners.length > 1 && !this.prefers(seq, start)) {
      if (!afterQuiet) look = true;
      else {
        const grace = Math.min(500, Math.max(50, 2 * this.ctx.options.minPollIntervalMs + 2 * this.claimRtt));
        await this.sleeper.sleep(grace);
        if (this.stopped) return false;
      }
    }
    let lost = 0;
    for (;;) {
      if (this.stopped) return false;
      if (start >= records.length) {
        this.frontier.delete(seq);
        this.scanSeq = seq + 1;
        return true;
      }
      const end = Math.min(records.length, start + Math.max(1, this.capacity));
      const keyOf = (epoch: number): string => this.ctx.keys.claim(this.spec.segment, this.spec.kind, seq, start, epoch);
      const body: LeaseBody = {
        owner: this.ctx.owner,
        token: randomUUID(),
        epoch: 0,
        expiresAt: Date.now() + this.ctx.options.leaseMs,
        seq,
        start,
        end,
      };
      if (look) {
        look = false;
        const taken = await this.ctx.store.getJson<LeaseBody>(keyOf(0));
        if (taken) {
          this.raced(false);
          const next = taken.end ?? (await this.discoverFrontier(seq));
          if (next <= start) return false;
          start = next;
          this.frontier.set(seq, start);
          continue;
        }
        // Free, and not our turn. A worker that has had more than its share lately waits two claim
        // round trips first: a worker that fell behind (each lost race costs it round trips) catches
        // up instead of finding every range taken when it gets there.
        if (this.overShare()) {
          await this.sleeper.sleep(Math.min(500, Math.max(50, 2 * this.claimRtt)));
          if (this.stopped) return false;
        }
      }
      const sent = Date.now();
      const lease = await Lease.acquire(this.ctx, keyOf, body);
      this.raced(lease !== undefined);
      if (lease) {
        // Smoothed, so that one slow or fast answer does not decide the next wait.
        const rtt = Date.now() - sent;
        this.claimRtt = this.claimRtt === 0 ? rtt : 0.7 * this.claimRtt + 0.3 * rtt;
        this.behind = 0;
        this.frontier.set(seq, end);
        this.hold(seq, start, end, lease, records);
        return true;
      }
      // Taken. A claim at the last message covers it; otherwise read where the claim ends, and after a
      // few losses in a row jump to the end of the chain (others may be several claims ahead).
      lost++;
      this.poll.found(); // competition means traffic: keep polling fast
      let next: number;
      if (start === 0 && ++this.behind >= 8) {
        // Others are ahead of us: jump to the newest object someone started claiming (safe: a worker
        // starts claiming object M only after every object before M was fully claimed).
        this.behind = 0;
        const newest = await this.newestClaimedSeq(seq);
        if (newest > seq) {
          this.frontier.delete(seq);
          this.scanSeq = newest;
          return true;
        }
      }
      if (start + 1 === records.length) next = records.length;
      else if (lost % 3 === 0) next = await this.discoverFrontier(seq);
      else next = (await this.ctx.store.getJson<LeaseBody>(keyOf(0)))?.end ?? (await this.discoverFrontier(seq));
      if (next <= start) return false;
      start = next;
      this.frontier.set(seq, start);
    }
  }

  private hold(seq: number, start: number, end: number, lease: Lease, records: LogRecord[]): void {
    const claim: HeldClaim = { seq, start, end, lease, pending: end - start };
    this.claims.set(`${seq}-${start}`, claim);
    lease.startRenewing();
    for (let i = start; i < end; i++) {
      const record = records[i];
      if (record) this.sink.deliver(toReceived(storedFromRecord(record, this.spec.segment, this.spec.kind, 1), { claim }));
      else this.resolveLog({ claim } as TaskReceived);
    }
  }

  /** One more message of its claim is resolved; the last one writes the claim's done marker. */
  protected resolveLog({ claim }: TaskReceived): void {
    if (!claim || --claim.pending > 0) return;
    claim.lease.stop();
    const marker = this.ctx.keys.doneMarker(this.spec.segment, this.spec.kind, claim.seq, claim.start, claim.end);
    void this.writes.track(
      this.persist(() =>
        this.ctx.store.put(marker, JSON.stringify({ owner: this.ctx.owner, at: new Date().toISOString() })),
      ).finally(() => this.claims.delete(`${claim.seq}-${claim.start}`)),
    );
  }

  /** Back to the retry area, due now, with the same attempt; its range can then be marked done. */
  protected async handBackLog(received: TaskReceived): Promise<void> {
    if (await this.persist(() => this.retries.add(received.stored, Date.now()))) this.resolveLog(received);
  }

  /** Writes this worker's presence and counts the live workers of the kind. */
  private async heartbeat(): Promise<void> {
    await announceWorker(this.ctx, this.spec.segment, this.spec.kind, this.spec.prefetch);
    await this.countWorkers();
  }

  /** One count of the live workers at a time; callers that come meanwhile share it. */
  private recount(): Promise<void> {
    this.counting ??= this.countWorkers()
      .catch(() => undefined)
      .finally(() => {
        this.counting = undefined;
      });
    return this.counting;
  }

  private async countWorkers(): Promise<void> {
    const dir = this.ctx.keys.workers(this.spec.segment, this.spec.kind);
    this.lastCount = Date.now();
    const listed = await this.ctx.store.list(dir);
    const newest = Math.max(...listed.map((e) => e.lastModified?.getTime() ?? 0));
    this.owners = listed
      .filter((e) => newest - (e.lastModified?.getTime() ?? 0) < 3 * this.scanEvery + 1000)
      .map((e) => e.key.slice(dir.length))
      .sort();
  }

  private raced(won: boolean): void {
    this.recent.push(won);
    if (this.recent.length > 30) this.recent.shift();
  }

  /** Whether this worker won more of its recent races than an even share among the live workers. */
  private overShare(): boolean {
    const n = this.owners.length;
    if (n < 2 || this.recent.length < n) return false;
    const won = this.recent.filter(Boolean).length;
    return won > Math.ceil(this.recent.length / n);
  }

  /** Whether this worker is the one whose turn range `start` of log object `seq` is. */
  private prefers(seq: number, start: number): boolean {
    return this.owners[(seq + start) % this.owners.length] === this.ctx.owner;
  }

  /**
   * Takes over expired claims of this kind and moves the watermark past log objects whose every
   * range is done. Claims and done markers below the watermark are never listed again.
   */
  private async scan(): Promise<boolean> {
    await this.heartbeat().catch(() => undefined);
    const claimsDir = this.ctx.keys.claims(this.spec.segment, this.spec.kind);
    const doneDir = this.ctx.keys.done(this.spec.segment, this.spec.kind);
    const since = seqName(this.watermark);
    const [claimList, doneList] = await Promise.all([
      this.ctx.store.list(claimsDir, { startAfter: `${claimsDir}${since}` }),
      this.ctx.store.list(doneDir, { startAfter: `${doneDir}${since}` }),
    ]);
    const done = new Map<string, number>();
    const doneBySeq = new Map<number, [number, number][]>();
    for (const entry of doneList) {
      const marker = this.ctx.keys.doneOf(entry.key);
      if (!marker) continue;
      const { seq, start, end } = marker;
      done.set(`${seq}-${start}`, end);
      const ranges = doneBySeq.get(seq) ?? [];
      ranges.push([start, end]);
      doneBySeq.set(seq, ranges);
    }
    const latest = new Map<string, { seq: number; start: number; epoch: number; written: number }>();
    const now = Date.now();
    for (const entry of claimList) {
      const claim = this.ctx.keys.claimOf(entry.key);
      const id = `${claim?.seq}-${claim?.start}`;
      if (claim && (latest.get(id)?.epoch ?? -1) < claim.epoch) {
        latest.set(id, { ...claim, written: entry.lastModified?.getTime() ?? now });
      }
    }
    let tookOver = false;
    for (const [id, claim] of latest) {
      if (this.stopped || this.capacity <= 0) break;
      if (done.has(id) || this.claims.has(id)) continue;
      if (claim.written > now - this.ctx.options.leaseMs / 2) continue; // renewed lately: alive
      const keyOf = (epoch: number): string =>
        this.ctx.keys.claim(this.spec.segment, this.spec.kind, claim.seq, claim.start, epoch);
      const body = await this.ctx.store.getJson<LeaseBody>(keyOf(claim.epoch));
      if (!body || body.end === undefined || body.expiresAt > Date.now()) continue;
      const lease = await Lease.acquire(this.ctx, keyOf, {
        ...body,
        owner: this.ctx.owner,
        token: randomUUID(),
        epoch: claim.epoch + 1,
        expiresAt: Date.now() + this.ctx.options.leaseMs,
      });
      if (!lease) continue;
      const records = await this.records(claim.seq);
      if (!records) {
        lease.stop();
        continue;
      }
      this.hold(claim.seq, claim.start, body.end, lease, records);
      tookOver = true;
    }
    await this.advanceWatermark(doneBySeq);
    return tookOver;
  }

  private async advanceWatermark(doneBySeq: Map<number, [number, number][]>): Promise<void> {
    let mark = this.watermark;
    // Only objects this worker has walked past are fully claimed; check their done ranges.
    while (mark < this.scanSeq) {
      const ranges = (doneBySeq.get(mark) ?? []).sort((a, b) => a[0] - b[0]);
      const count = this.counts.get(mark) ?? (await this.records(mark))?.length;
      if (count === undefined) {
        // Below scanSeq every number was written (gap-free), so a missing one was deleted by
        // retention, which deletes only what every kind has done: skip the deleted run.
        this.counts.delete(mark);
        mark = Math.min(this.scanSeq, (await this.ctx.logs.firstAfter(this.spec.segment, 'task', mark)) ?? this.scanSeq);
        continue;
      }
      let covered = 0;
      for (const [start, end] of ranges) if (start === covered) covered = end;
      if (covered < count) break;
      this.counts.delete(mark);
      mark++;
    }
    if (mark > this.watermark) {
      this.watermark = mark;
      await this.ctx.store
        .put(
          this.ctx.keys.watermark(this.spec.segment, this.spec.kind),
          JSON.stringify({ seq: mark, at: new Date().toISOString() }),
        )
        .catch(() => undefined);
    }
  }

  /** After the engine settled or handed back every delivery: lets go of the claims and the presence. */
  override async close(): Promise<void> {
    await super.close();
    for (const claim of this.claims.values()) claim.lease.stop();
    await this.ctx.store
      .delete(`${this.ctx.keys.workers(this.spec.segment, this.spec.kind)}${this.ctx.owner}`)
      .catch(() => undefined);
  }
}
