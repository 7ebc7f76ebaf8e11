import type { Capabilities } from '@mq-drivers/core';
import { ConformanceError, show } from './assert.js';
import type { CaseDefinition, GroupName } from './case.js';
import { ackCases } from './groups/acks.js';
import { badInputCases } from './groups/bad-input.js';
import { durableCases } from './groups/durable.js';
import { lifecycleCases } from './groups/lifecycle.js';
import { orderingCases } from './groups/ordering.js';
import { reconnectCases } from './groups/reconnect.js';
import { replayCases } from './groups/replay.js';
import { shareCases } from './groups/shares.js';
import { taskCases } from './groups/tasks.js';
import { unregisterCases } from './groups/unregister.js';
import { CaseContext } from './harness.js';
import { type ConformanceOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { withDeadline } from './wait.js';

/** Every group, in the order the suite runs them. */
export const GROUPS: Readonly<Record<GroupName, readonly CaseDefinition[]>> = {
  tasks: taskCases,
  shares: shareCases,
  ordering: orderingCases,
  acks: ackCases,
  lifecycle: lifecycleCases,
  'bad-input': badInputCases,
  replay: replayCases,
  durable: durableCases,
  unregister: unregisterCases,
  reconnect: reconnectCases,
};

/** One runnable case, independent of any test runner. */
export interface ConformanceCase {
  /** Stable id, `<group>.<slug>`. */
  id: string;
  group: GroupName;
  name: string;
  /** The test title: the name, plus `[skipped: reason]` when skipped. */
  title: string;
  /** Set when the case cannot run with this driver or harness; `run()` then rejects saying so. */
  skipReason?: string;
  /** Upper bound for the whole case (its own deadlines plus cleanup), in ms. */
  timeoutMs: number;
  /** Runs the case on fresh drivers; rejects with a ConformanceError naming the rule broken. */
  run(): Promise<void>;
}

/** Reads the capabilities from one driver made by `createDriver` (then closes it). */
export async function probeCapabilities(options: ResolvedOptions): Promise<Capabilities> {
  const driver = await withDeadline(
    Promise.resolve().then(() => options.createDriver()),
    options.timeoutMs,
    'createDriver() (reading capabilities)',
  );
  try {
    const capabilities = (driver as { capabilities?: unknown } | undefined)?.capabilities;
    if (capabilities === null || typeof capabilities !== 'object') {
      throw new ConformanceError(`driver.capabilities is ${show(capabilities)}; a driver must report its capabilities`);
    }
    return { ...(capabilities as Capabilities) };
  } finally {
    await withDeadline(Promise.resolve(driver?.close?.()), options.timeoutMs, 'driver.close() after reading capabilities').catch(
      () => undefined,
    );
  }
}

/** Builds runnable cases from definitions (used by `conformanceCases` and the vitest registration). */
export function buildCases(
  definitions: readonly CaseDefinition[],
  options: ResolvedOptions,
  capabilities: Capabilities,
): ConformanceCase[] {
  return definitions.map((definition) => {
    const skipReason = definition.skip?.(capabilities, options);
    const timeoutMs = (definition.budget ?? 4) * options.timeoutMs + 8 * options.quietMs + 5_000;
    return {
      id: definition.id,
      group: definition.group,
      name: definition.name,
      title: skipReason === undefined ? definition.name : `${definition.name} [skipped: ${skipReason}]`,
      ...(skipReason === undefined ? {} : { skipReason }),
      timeoutMs,
      run: async () => {
        if (skipReason !== undefined) throw new ConformanceError(`case ${definition.id} is skipped: ${skipReason}`);
        await runCase(definition, options, capabilities);
      },
    };
  });
}

async function runCase(definition: CaseDefinition, options: ResolvedOptions, capabilities: Capabilities): Promise<void> {
  const context = new CaseContext(options, capabilities);
  let failure: unknown;
  try {
    await definition.run(context);
  } catch (error) {
    failure = error;
  }
  const problems = await context.cleanup();
  if (failure !== undefined) throw failure;
  if (problems.length > 0) throw new ConformanceError(`${definition.id}: ${problems.join('; ')}`);
}

/**
 * The whole suite as data: every case of every group with its skip reason, runnable without
 * vitest. Reads the capabilities from one driver first.
 */
export async function conformanceCases(
  options: ConformanceOptions,
  groups: readonly GroupName[] = Object.keys(GROUPS) as GroupName[],
): Promise<ConformanceCase[]> {
  const resolved = resolveOptions(options);
  const capabilities = await probeCapabilities(resolved);
  return buildCases(
    groups.flatMap((group) => GROUPS[group]),
    resolved,
    capabilities,
  );
}
