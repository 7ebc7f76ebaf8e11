import type { Context } from './context.js';

/** Body of a claim object: a lease on a log range or on a retry object. */
export interface LeaseBody {
  owner: string;
  token: string;
  epoch: number;
  /** Lease end, ms since the epoch, by the owner's clock. */
  expiresAt: number;
  seq?: number;
  start?: number;
  end?: number;
}

/**
 * A lease kept alive by creating the next epoch's object (`If-None-Match: *`) every third of the
 * lease. Whoever creates epoch e+1 owns the lease; an owner that finds e+1 taken has lost it.
 */
export class Lease {
  lost = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: Context,
    private readonly keyOf: (epoch: number) => string,
    public body: LeaseBody,
  ) {}

  get epoch(): number {
    return this.body.epoch;
  }

  /** Keys of every epoch this lease has had so far. */
  keys(): string[] {
    return Array.from({ length: this.body.epoch + 1 }, (_, epoch) => this.keyOf(epoch));
  }

  /** Tries to create epoch `body.epoch`; true when this process owns it. */
  static async acquire(ctx: Context, keyOf: (epoch: number) => string, body: LeaseBody): Promise<Lease | undefined> {
    const key = keyOf(body.epoch);
    const result = await ctx.store.create(key, JSON.stringify(body));
    if (!result.created) {
      // A 412 answers someone else's claim, unless the SDK retried ours: then the token tells.
      if (!result.retried) return undefined;
      const existing = await ctx.store.getJson<LeaseBody>(key);
      if (existing?.token !== body.token) return undefined;
    }
    return new Lease(ctx, keyOf, body);
  }

  startRenewing(): void {
    const every = Math.max(50, Math.floor(this.ctx.options.leaseMs / 3));
    this.timer = setInterval(() => void this.renew(), every);
    this.timer.unref?.();
  }

  private async renew(): Promise<void> {
    if (this.lost || this.stopped) return;
    const next: LeaseBody = { ...this.body, epoch: this.body.epoch + 1, expiresAt: Date.now() + this.ctx.options.leaseMs };
    try {
      const acquired = await Lease.acquire(this.ctx, this.keyOf, next);
      if (acquired) {
        this.body = next;
        if (this.stopped) await this.ctx.store.delete(this.keyOf(next.epoch)).catch(() => undefined);
      } else {
        this.lost = true;
        this.stop();
      }
    } catch {
      // Endpoint trouble: try again at the next tick; the lease may expire meanwhile.
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
