import type { LogType } from './layout.js';
import type { LogReader } from './log.js';

/** While a reader waits at one number, the head hint is read at most this often. */
const STUCK_CHECK_MS = 5000;

/**
 * Tells a reader that gets 404 at log number `seq` whether the number was deleted by retention
 * (some driver's sweep; this one may have no `retentionMs`) or is just not written yet. Numbers are
 * gap-free, so `seq` was deleted exactly when a higher number exists or existed. A waiting reader
 * 404s at the head all the time, so the check must cost next to nothing: free when this driver has
 * seen a higher number; else one GET of `head.json` (which a sweep raises to the head it keeps)
 * at the first 404 and then at most every {@link STUCK_CHECK_MS} while stuck at the same number.
 * Only a positive answer costs a LIST (of one key).
 */
export class DeletedCheck {
  private seq = -1;
  private since = 0;
  private started = false;
  private suspected = false;

  constructor(
    private readonly logs: LogReader,
    private readonly segment: string,
    private readonly type: LogType,
  ) {}

  /** After a 404 at `seq`: the lowest number stored after it when `seq` was deleted, else undefined. */
  async after(seq: number): Promise<number | undefined> {
    const now = Date.now();
    if (seq !== this.seq) {
      this.seq = seq;
      this.since = now;
      this.suspected = false;
    }
    // A higher number seen by this driver settles it at once (once per number: if the LIST finds
    // nothing, the periodic check takes over).
    let deleted = !this.suspected && this.logs.highestSeen(this.segment, this.type) > seq;
    if (deleted) this.suspected = true;
    else {
      if (this.started && now - this.since < STUCK_CHECK_MS) return undefined;
      this.started = true;
      this.since = now;
      deleted = (await this.logs.hint(this.segment, this.type)) > seq;
    }
    return deleted ? this.logs.firstAfter(this.segment, this.type, seq) : undefined;
  }
}
