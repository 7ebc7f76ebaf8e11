import type { Driver } from '@mq-drivers/core';
import { GROUP_NAMES, type GroupName } from './case.js';

/**
 * The harness settings of a run: the suite-wide ones in {@link ConformanceOptions}, and the ones a
 * group may set for itself in {@link GroupOptions}. They describe the TEST SET-UP, never the
 * driver: what a driver can do is read from `driver.capabilities`.
 */
export interface HarnessSettings {
  /**
   * Returns a FRESH driver on the same broker every time it is called. The suite calls it many
   * times per case (the producer and every worker get their own driver) and closes every driver
   * it created, also when a case fails.
   */
  createDriver: () => Driver | Promise<Driver>;
  /** Deadline for every expected event (a delivery, a dead letter, a close). Default 10000. */
  timeoutMs?: number;
  /**
   * Length of the watch window in which UNexpected deliveries (duplicates, late redeliveries,
   * leaks) are looked for after the expected ones arrived. Default 500. Longer is stricter.
   */
  quietMs?: number;
  /** Messages per case in the bulk cases (tasks, shares, ordering). Default 30, minimum 6. */
  messageCount?: number;
  /**
   * Harness hook that breaks every connection to the broker (e.g. `rabbitmqctl
   * close_all_connections`) and resolves once it did. Only the reconnect group uses it; without
   * it that group is a visible skip.
   */
  reconnect?: () => Promise<void>;
  /**
   * The broker's URL as `connect()` takes it, with credentials where the broker uses them (e.g.
   * `amqp://guest:guest@127.0.0.1:5672`, `s3://KEY:SECRET@bucket/prefix?endpoint=…`). The bad-input
   * group derives broken and wrong-credential URLs holding a secret from it and checks that no
   * error carries the secret. Without it that case is a visible skip.
   */
  url?: string;
  /** Opens a driver from a URL, for the cases that use {@link url}. Default: core's `connect(url)`. */
  connect?: (url: string) => Driver | Promise<Driver>;
  /**
   * Run the cases of a group concurrently (the runner's `describe.concurrent`, when it has one).
   * Cases are isolated by segment, so this is safe for a correct driver. Default true. The
   * reconnect group always runs alone (`describe.sequential`), after the others.
   */
  concurrent?: boolean;
}

/**
 * Settings of one group, over the suite-wide ones: each setting given here (not `undefined`)
 * replaces the suite-wide one for that group's cases only. E.g. the reconnect group on drivers of
 * its own (another virtual host, a TCP proxy) that its `reconnect` hook breaks, while the other
 * groups keep their connections.
 */
export interface GroupOptions extends Partial<HarnessSettings> {
  /**
   * Registers every case of the group as a visible skip with this reason in its title (its
   * drivers are then never created). `undefined` runs the group.
   */
  skip?: string | undefined;
}

/** Harness settings for one run of the suite (unknown options are refused). */
export interface ConformanceOptions extends HarnessSettings {
  /** Shown in the suite title, e.g. `rabbitmq`. */
  name: string;
  /**
   * Registers every case as a visible skip with this reason in its title, e.g. why the broker
   * cannot be reached; no driver is created. `undefined` runs the suite.
   */
  skip?: string | undefined;
  /** Settings of single groups, by group name (see {@link GroupOptions}). */
  groups?: { readonly [G in GroupName]?: GroupOptions };
}

/** The settings one case runs with (the suite-wide ones, with its group's over them). */
export interface ResolvedOptions {
  name: string;
  createDriver: () => Driver | Promise<Driver>;
  timeoutMs: number;
  quietMs: number;
  messageCount: number;
  reconnect: (() => Promise<void>) | undefined;
  url: string | undefined;
  connect: ((url: string) => Driver | Promise<Driver>) | undefined;
  concurrent: boolean;
}

/** One group's resolved settings. */
export interface ResolvedGroup {
  options: ResolvedOptions;
  /** Why every case of the group is skipped (the suite's `skip`, else the group's), else undefined. */
  skip: string | undefined;
  /** Where its `createDriver` was given, for messages: `createDriver` or `groups.<name>.createDriver`. */
  createDriverOption: string;
}

/** Validated options: the suite-wide settings and every group's. */
export interface ResolvedSuite {
  name: string;
  groups: Readonly<Record<GroupName, ResolvedGroup>>;
}

const PREFIX = '@mq-drivers/conformance:';
const SETTINGS = ['createDriver', 'timeoutMs', 'quietMs', 'messageCount', 'reconnect', 'url', 'connect', 'concurrent'] as const;

function positive(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new TypeError(`${PREFIX} option \`${name}\` must be a number >= ${min}, got ${String(value)}`);
  }
  return value;
}

function refuseUnknown(where: string, value: object, known: readonly string[]): void {
  const unknown = Object.keys(value).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw new TypeError(
      `${PREFIX} unknown option(s) ${unknown.map((key) => `\`${where}${key}\``).join(', ')} (known: ${known.join(', ')})`,
    );
  }
}

function checkSkip(name: string, value: unknown): string | undefined {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
    throw new TypeError(`${PREFIX} option \`${name}\` must be a non-empty reason (string) or undefined`);
  }
  return value;
}

/** Checks the harness settings; `where` prefixes option names in errors (`groups.reconnect.`). */
function resolveSettings(name: string, settings: HarnessSettings, where: string): ResolvedOptions {
  if (typeof settings.createDriver !== 'function') {
    throw new TypeError(`${PREFIX} missing required option \`${where}createDriver\` (a function returning a fresh driver)`);
  }
  if (settings.reconnect !== undefined && typeof settings.reconnect !== 'function') {
    throw new TypeError(`${PREFIX} option \`${where}reconnect\` must be a function`);
  }
  if (settings.url !== undefined && (typeof settings.url !== 'string' || !/^[a-z][a-z0-9+.-]*:/i.test(settings.url))) {
    throw new TypeError(`${PREFIX} option \`${where}url\` must be a URL string with a scheme, e.g. amqp://guest:guest@127.0.0.1`);
  }
  if (settings.connect !== undefined && typeof settings.connect !== 'function') {
    throw new TypeError(`${PREFIX} option \`${where}connect\` must be a function (url) => driver`);
  }
  if (settings.concurrent !== undefined && typeof settings.concurrent !== 'boolean') {
    throw new TypeError(`${PREFIX} option \`${where}concurrent\` must be a boolean`);
  }
  return {
    name,
    createDriver: settings.createDriver,
    timeoutMs: positive(`${where}timeoutMs`, settings.timeoutMs, 10_000, 50),
    quietMs: positive(`${where}quietMs`, settings.quietMs, 500, 10),
    messageCount: Math.floor(positive(`${where}messageCount`, settings.messageCount, 30, 6)),
    reconnect: settings.reconnect,
    url: settings.url,
    connect: settings.connect,
    concurrent: settings.concurrent ?? true,
  };
}

/** Validates every option (throws a TypeError naming the first bad one) and applies the defaults. */
export function resolveOptions(options: ConformanceOptions): ResolvedSuite {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${PREFIX} options must be an object with \`name\` and \`createDriver\``);
  }
  if (typeof options.name !== 'string' || options.name.length === 0) {
    throw new TypeError(`${PREFIX} missing required option \`name\` (a non-empty string)`);
  }
  refuseUnknown('', options, ['name', ...SETTINGS, 'skip', 'groups']);
  const skip = checkSkip('skip', options.skip);
  const suite = resolveSettings(options.name, options, '');
  const own = options.groups ?? {};
  if (own === null || typeof own !== 'object' || Array.isArray(own)) {
    throw new TypeError(`${PREFIX} option \`groups\` must be an object keyed by group name (${GROUP_NAMES.join(', ')})`);
  }
  const unknownGroups = Object.keys(own).filter((key) => !(GROUP_NAMES as readonly string[]).includes(key));
  if (unknownGroups.length > 0) {
    throw new TypeError(
      `${PREFIX} unknown group(s) ${unknownGroups.map((key) => `\`groups.${key}\``).join(', ')} (groups: ${GROUP_NAMES.join(', ')})`,
    );
  }
  const groups = {} as Record<GroupName, ResolvedGroup>;
  for (const group of GROUP_NAMES) {
    const settings = own[group];
    if (settings === undefined) {
      groups[group] = { options: suite, skip, createDriverOption: 'createDriver' };
      continue;
    }
    const where = `groups.${group}.`;
    if (settings === null || typeof settings !== 'object')
      throw new TypeError(`${PREFIX} option \`groups.${group}\` must be an object`);
    refuseUnknown(where, settings, [...SETTINGS, 'skip']);
    const groupSkip = checkSkip(`${where}skip`, settings.skip);
    const given = Object.fromEntries(SETTINGS.filter((key) => settings[key] !== undefined).map((key) => [key, settings[key]]));
    groups[group] = {
      options: resolveSettings(options.name, { ...options, ...given }, where),
      skip: skip ?? groupSkip,
      createDriverOption: settings.createDriver === undefined ? 'createDriver' : `${where}createDriver`,
    };
  }
  return { name: options.name, groups };
}
