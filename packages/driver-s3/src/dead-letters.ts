import type { DeadLetter } from '@mq-drivers/core';
import type { Context, DeadLetterStore } from './context.js';
import { type Keys, type StoredMessage, toMessage } from './layout.js';
import type { Store } from './store.js';

/** What a dead-letter object holds. */
interface DeadLetterObject {
  message: StoredMessage;
  error: string;
  failedAt: string;
}

/**
 * Dead letters live at `<segment>/dead-letters/kinds/<kind>/` or `.../subscriptions/<name>/`, one
 * object per message, keyed `<failedAt ms>-<id>.json` so a listing is oldest first.
 */
export class DeadLetters implements DeadLetterStore {
  constructor(
    private readonly store: Store,
    private readonly keys: Keys,
  ) {}

  async add(dir: string, message: StoredMessage, error: string): Promise<void> {
    const failedAt = new Date();
    const body: DeadLetterObject = { message, error, failedAt: failedAt.toISOString() };
    await this.store.put(this.keys.deadLetter(dir, failedAt.getTime(), message.id), JSON.stringify(body));
  }

  private async read(dir: string): Promise<{ key: string; letter: DeadLetterObject }[]> {
    const listed = await this.store.list(dir);
    const found: { key: string; letter: DeadLetterObject }[] = [];
    for (let i = 0; i < listed.length; i += 16) {
      const chunk = await Promise.all(
        listed
          .slice(i, i + 16)
          .map(async (entry) => ({ key: entry.key, letter: await this.store.getJson<DeadLetterObject>(entry.key) })),
      );
      for (const { key, letter } of chunk) if (letter) found.push({ key, letter });
    }
    return found;
  }

  async list(dir: string): Promise<DeadLetter[]> {
    return (await this.read(dir)).map(({ letter }) => ({
      message: toMessage(letter.message),
      error: letter.error,
      failedAt: new Date(letter.failedAt),
    }));
  }

  /** Moves dead letters into the owner's retry area with attempt 1 (same id); returns how many. */
  async redrive(ctx: Context, dir: string, ownerDir: string, ids: readonly string[] | undefined): Promise<number> {
    const wanted = ids ? new Set(ids) : undefined;
    let count = 0;
    const now = Date.now();
    for (const { key, letter } of await this.read(dir)) {
      if (wanted && !wanted.has(letter.message.id)) continue;
      const message: StoredMessage = { ...letter.message, attempt: 1 };
      await this.store.put(ctx.keys.retry(ownerDir, now, 1, message.id), JSON.stringify(message));
      await this.store.delete(key);
      count++;
    }
    return count;
  }
}
