import { randomUUID } from 'node:crypto';
import type { Context } from './context.js';
import type { StoredMessage } from './layout.js';
import { Lease, type LeaseBody } from './lease.js';

/** A retry object this process holds a lease on. */
export interface RetryItem {
  key: string;
  name: string;
  lease: Lease;
  stored: StoredMessage;
}

/**
 * The retry area of a task kind or a share subscription (`<owner>/retry/`): messages waiting for
 * redelivery (failed attempts, handed-back messages, re-driven dead letters). Keys sort by due time.
 * Workers claim a due object with a lease (`retry-claims/<name>~<epoch>`, create-if-absent), deliver it,
 * and delete it once resolved; an expired lease is taken over by the next epoch.
 */
export class RetryArea {
  private readonly held = new Map<string, RetryItem>();

  constructor(
    private readonly ctx: Context,
    /** `<segment>/tasks/kinds/<kind>/` or `<segment>/shares/subscriptions/<name>/`. */
    readonly ownerDir: string,
  ) {}

  /** Stores a message for redelivery at `dueMs`. */
  async add(stored: StoredMessage, dueMs: number): Promise<void> {
    await this.ctx.store.put(this.ctx.keys.retry(this.ownerDir, dueMs, stored.attempt, stored.id), JSON.stringify(stored));
  }

  private claimKey(name: string): (epoch: number) => string {
    return (epoch) => this.ctx.keys.retryClaim(this.ownerDir, name, epoch);
  }

  /**
   * Claims up to `capacity` due retry objects, unclaimed ones or those whose lease expired.
   * Returns the items now held.
   */
  async claim(capacity: number): Promise<RetryItem[]> {
    if (capacity <= 0) return [];
    const dir = this.ctx.keys.retryDir(this.ownerDir);
    const listed = await this.ctx.store.list(dir, { limit: 1000 });
    const now = Date.now();
    const due = listed
      .map((entry) => ({ key: entry.key, name: entry.key.slice(dir.length) }))
      .filter((entry) => !this.held.has(entry.name) && (this.ctx.keys.retryDueOf(entry.name) ?? 0) <= now);
    if (due.length === 0) return [];
    // Current claims: the newest epoch of each, and when it was written (server clock).
    const claimDir = this.ctx.keys.retryClaimDir(this.ownerDir);
    const claimed = new Map<string, { epoch: number; written: number }>();
    for (const entry of await this.ctx.store.list(claimDir)) {
      const claim = this.ctx.keys.retryClaimOf(entry.key.slice(claimDir.length));
      if (claim && (claimed.get(claim.retryName)?.epoch ?? -1) < claim.epoch) {
        claimed.set(claim.retryName, { epoch: claim.epoch, written: entry.lastModified?.getTime() ?? now });
      }
    }
    const items: RetryItem[] = [];
    for (const entry of due) {
      if (items.length >= capacity) break;
      let epoch = 0;
      const current = claimed.get(entry.name);
      if (current) {
        // Renewed within half a lease: surely alive, skip without reading it.
        if (current.written > now - this.ctx.options.leaseMs / 2) continue;
        const body = await this.ctx.store.getJson<LeaseBody>(this.claimKey(entry.name)(current.epoch));
        if (body && body.expiresAt > now) continue;
        epoch = current.epoch + 1;
      }
      const lease = await Lease.acquire(this.ctx, this.claimKey(entry.name), {
        owner: this.ctx.owner,
        token: randomUUID(),
        epoch,
        expiresAt: Date.now() + this.ctx.options.leaseMs,
      });
      if (!lease) continue;
      const stored = await this.ctx.store.getJson<StoredMessage>(entry.key);
      if (!stored) {
        // Resolved by someone else meanwhile.
        await this.deleteClaims(lease);
        continue;
      }
      lease.startRenewing();
      const item: RetryItem = { key: entry.key, name: entry.name, lease, stored };
      this.held.set(entry.name, item);
      items.push(item);
    }
    return items;
  }

  /** The message is resolved (acked, re-queued or dead-lettered elsewhere): delete it and its claims. */
  async finish(item: RetryItem): Promise<void> {
    item.lease.stop();
    await this.ctx.store.delete(item.key);
    this.held.delete(item.name);
    await this.deleteClaims(item.lease);
  }

  /** Gives the message back without resolving it: drop our claim so another worker can take it now. */
  async release(item: RetryItem): Promise<void> {
    item.lease.stop();
    this.held.delete(item.name);
    await this.deleteClaims(item.lease);
  }

  /** Releases every object still held (its outcome could not be stored): another consumer takes it. */
  async releaseAll(): Promise<void> {
    await Promise.all([...this.held.values()].map((item) => this.release(item).catch(() => undefined)));
  }

  private async deleteClaims(lease: Lease): Promise<void> {
    lease.stop();
    // Newest first: until epoch 0 is gone nobody can claim anew, so no one sees a half-deleted chain.
    for (const key of lease.keys().reverse()) await this.ctx.store.delete(key).catch(() => undefined);
  }
}
