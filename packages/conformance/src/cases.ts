import type { Capabilities } from '@mq-drivers/core';
import { ConformanceError, show } from './assert.js';
import { type CaseDefinition, GROUP_NAMES, type GroupName } from './case.js';
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
import { type ConformanceOptions, type ResolvedOptions, type ResolvedSuite, resolveOptions } from './options.js';
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
  /**
   * Set when the case cannot run with this driver or harness (or its group or the suite is
   * skipped by option); `run()` then rejects saying so.
   */
  skipReason?: string;
  /** Upper bound for the whole case (its own deadlines plus cleanup), in ms. */
  timeoutMs: number;
  /** Runs the case on fresh drivers; rejects with a ConformanceError naming the rule broken. */
  run(): Promise<void>;
}

/**
 * Reads the capabilities from one driver made by `createDriver` (then closes it). `option` names
 * the factory in errors (`createDriver`, `groups.reconnect.createDriver`).
 */
export async function probeCapabilities(options: ResolvedOptions, option = 'createDriver'): Promise<Capabilities> {
  const driver = await withDeadline(
    Promise.resolve().then(() => options.createDriver()),
    options.timeoutMs,
    `${option}() (reading capabilities)`,
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

/**
 * Builds runnable cases from definitions (used by `conformanceCases` and the registration).
 * With `skipAll` every case is a skip with that reason and `capabilities` is not read.
 */
export function buildCases(
  definitions: readonly CaseDefinition[],
  options: ResolvedOptions,
  capabilities: Capabilities | undefined,
  skipAll?: string,
): ConformanceCase[] {
  return definitions.map((definition) => {
    const skipReason = skipAll ?? definition.skip?.(capabilities!, options);
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
        await runCase(definition, options, capabilities!);
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

/** The cases of one group, ready to register or run. */
export interface GroupCases {
  group: GroupName;
  /** The settings its cases run with (the suite-wide ones, with the group's over them). */
  options: ResolvedOptions;
  cases: ConformanceCase[];
}

/**
 * Builds the cases of `groups` from validated options. Capabilities are read once per distinct
 * `createDriver` (a group with a factory of its own gets its own reading); skipped groups create
 * no driver at all.
 */
export async function groupCases(suite: ResolvedSuite, groups: readonly GroupName[]): Promise<GroupCases[]> {
  const readings = new Map<ResolvedOptions['createDriver'], Promise<Capabilities>>();
  const capabilitiesOf = (options: ResolvedOptions, option: string) => {
    let reading = readings.get(options.createDriver);
    if (reading === undefined) {
      reading = probeCapabilities(options, option);
      readings.set(options.createDriver, reading);
    }
    return reading;
  };
  return Promise.all(
    groups.map(async (group) => {
      const { options, skip, createDriverOption } = suite.groups[group];
      const capabilities = skip === undefined ? await capabilitiesOf(options, createDriverOption) : undefined;
      return { group, options, cases: buildCases(GROUPS[group], options, capabilities, skip) };
    }),
  );
}

/**
 * The whole suite as data: every case of every group (or of `groups`) with its skip reason,
 * runnable without any test runner. Reads the capabilities from one driver first (one per
 * group with a `createDriver` of its own). Applies `skip` and the per-group `groups` options.
 */
export async function conformanceCases(
  options: ConformanceOptions,
  groups: readonly GroupName[] = GROUP_NAMES,
): Promise<ConformanceCase[]> {
  const perGroup = await groupCases(resolveOptions(options), checkGroups(groups));
  return perGroup.flatMap(({ cases }) => cases);
}

/** Refuses an unknown group name (a typo would otherwise register nothing). */
export function checkGroups(groups: readonly GroupName[]): readonly GroupName[] {
  const unknown = Array.isArray(groups) ? groups.filter((group) => !Object.hasOwn(GROUPS, group)) : [String(groups)];
  if (unknown.length > 0) {
    throw new TypeError(`@mq-drivers/conformance: unknown group(s) ${unknown.join(', ')} (groups: ${GROUP_NAMES.join(', ')})`);
  }
  return groups;
}
