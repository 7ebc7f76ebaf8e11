import type { Capabilities } from '@mq-drivers/core';
import type { CaseContext } from './harness.js';
import type { ResolvedOptions } from './options.js';

/** The groups of the suite, one file each under `src/groups/`, in the order the suite runs them. */
export const GROUP_NAMES = [
  'tasks',
  'shares',
  'ordering',
  'acks',
  'lifecycle',
  'bad-input',
  'replay',
  'durable',
  'unregister',
  'reconnect',
] as const;

export type GroupName = (typeof GROUP_NAMES)[number];

/** A case as written in a group file. */
export interface CaseDefinition {
  /** Stable id, `<group>.<slug>`, e.g. `tasks.competing-workers`. */
  id: string;
  group: GroupName;
  /** What the case proves, as a sentence. */
  name: string;
  /** Why the case cannot run with this driver or harness (shown in the title), else undefined. */
  skip?: (capabilities: Capabilities, options: ResolvedOptions) => string | undefined;
  /** Extra time the case may need beyond its own deadlines, in units of `timeoutMs`. Default 4. */
  budget?: number;
  run(context: CaseContext): Promise<void>;
}

export const needs = {
  durable: (capabilities: Capabilities) => (capabilities.durable ? undefined : 'driver has no durable capability'),
  replay: (capabilities: Capabilities) => (capabilities.replay ? undefined : 'driver has no replay capability'),
  deadLetter: (capabilities: Capabilities) => (capabilities.deadLetter ? undefined : 'driver has no deadLetter capability'),
  unregister: (capabilities: Capabilities) => (capabilities.unregister ? undefined : 'driver has no unregister capability'),
  ordering: (capabilities: Capabilities) =>
    capabilities.ordering === 'per-publisher' ? undefined : `driver declares ordering ${JSON.stringify(capabilities.ordering)}`,
} as const;
