import { randomUUID } from 'node:crypto';
import type { Keys, StoredMessage } from './layout.js';
import type { LogReader } from './log.js';
import type { ResolvedOptions } from './options.js';
import type { Store } from './store.js';

/** What every part of one driver instance shares. */
export interface Context {
  readonly options: ResolvedOptions;
  readonly store: Store;
  readonly keys: Keys;
  readonly logs: LogReader;
  /** Identifies this driver instance in claims (for people reading the bucket). */
  readonly owner: string;
  /** Bucket checked and conditional writes verified (once). */
  ready(): Promise<void>;
  readonly deadLetters: DeadLetterStore;
}

export interface DeadLetterStore {
  add(dir: string, message: StoredMessage, error: string): Promise<void>;
}

export function newOwner(): string {
  return `${process.pid}-${randomUUID().slice(0, 8)}`;
}
