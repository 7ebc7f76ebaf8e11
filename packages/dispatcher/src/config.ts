import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import {
  DEFAULT_MAX_ATTEMPTS,
  InvalidArgumentError,
  validateKind,
  validatePattern,
  validateSegment,
  validateSubscriptionName,
} from '@mq-drivers/core';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { z } from 'zod';
import type { ReadyHook, StartupHook, WorkerClass } from './types.js';

export const PACKAGE_NAME = 'dispatcher';

/** One thing wrong with a config file, with the line it is on (1-based) when it came from a file. */
export interface ConfigProblem {
  /** The config file, when the config came from one. */
  file?: string;
  /** 1-based line of the offending key or value. */
  line?: number;
  /** Where in the config, e.g. `consumers[0].prefetch`; empty for the whole file. */
  path: string;
  message: string;
}

/** `file:line: path: message`, the form `mq-dispatch --validate` prints. */
export function formatProblem(problem: ConfigProblem): string {
  const where = problem.file ? `${basename(problem.file)}${problem.line ? `:${problem.line}` : ''}: ` : '';
  return `${where}${problem.path ? `${problem.path}: ` : ''}${problem.message}`;
}

/** Thrown (an `InvalidArgumentError` from core) when a config has problems; `value` holds every {@link ConfigProblem}. */
export function configError(problems: ConfigProblem[]): InvalidArgumentError {
  return new InvalidArgumentError({
    driver: PACKAGE_NAME,
    argument: 'config',
    value: problems,
    message: `${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`,
  });
}

/** The problems carried by an error from {@link loadConfig} or `runWorkers`, or undefined for other errors. */
export function configProblems(error: unknown): ConfigProblem[] | undefined {
  if (!InvalidArgumentError.isInstance(error) || error.argument !== 'config' || !Array.isArray(error.value)) return undefined;
  return error.value as ConfigProblem[];
}

// ---------------------------------------------------------------------------------------------
// Schema

/** A core name rule (segment, kind, pattern...) as a zod string check with core's message. */
function coreRule(check: (driver: string, value: unknown, argument: string) => unknown) {
  return z.string().superRefine((value, ctx) => {
    try {
      check(PACKAGE_NAME, value, 'value');
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: error instanceof Error ? error.message.replace(/^dispatcher: invalid value: /, '') : String(error),
      });
    }
  });
}

/** `module#Export`: a module path or package, optionally `#` and an export name (default export when left out). */
export const MODULE_REF = /^[^#]+(#[A-Za-z_$][\w$]*)?$/;

/** `./path/to/module.js#ExportName` (or, in code, the class or function itself). */
function moduleRef(what: 'class' | 'function') {
  return z.any().superRefine((value, ctx) => {
    if (typeof value === 'function') return;
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: 'is required' });
      return;
    }
    if (typeof value !== 'string' || value.trim() === '' || !MODULE_REF.test(value)) {
      ctx.addIssue({
        code: 'custom',
        message: `must be "./path/to/module.js#Export" (a module and the exported ${what}), got ${JSON.stringify(value)}`,
      });
    }
  });
}

const positiveInt = (max: number) =>
  z
    .number({ error: `must be a whole number from 1 to ${max}` })
    .int(`must be a whole number from 1 to ${max}`)
    .min(1, `must be a whole number from 1 to ${max}`)
    .max(max, `must be a whole number from 1 to ${max}`);
const nonNegativeInt = z
  .number({ error: 'must be a whole number >= 0' })
  .int('must be a whole number >= 0')
  .min(0, 'must be a whole number >= 0');

const segment = coreRule(validateSegment);

const taskSchema = z.strictObject({
  /** The worker kind: every task published on the segment reaches one instance of each kind. */
  kind: coreRule(validateKind),
  segment,
});

const shareSchema = z.strictObject({
  topics: z
    .array(coreRule(validatePattern), { error: 'must be a list of topic patterns' })
    .min(1, 'must list at least one pattern'),
  segment,
  name: coreRule(validateSubscriptionName).optional(),
});

export const DEFAULT_INSTANCES = 1;
/** One message at a time per instance unless asked: worker classes often keep per-instance state. */
export const DEFAULT_DISPATCH_PREFETCH = 1;
export const DEFAULT_SHUTDOWN_GRACE_MS = 30_000;
export const DEFAULT_RESTART = { baseMs: 100, maxMs: 30_000, crashLoopRestarts: 5, crashLoopWindowMs: 60_000 } as const;

const consumerSchema = z
  .strictObject({
    name: coreRule(validateSubscriptionName).optional(),
    consumer: moduleRef('class'),
    task: taskSchema.optional(),
    share: shareSchema.optional(),
    instances: positiveInt(1_000).default(DEFAULT_INSTANCES),
    prefetch: positiveInt(65_535).default(DEFAULT_DISPATCH_PREFETCH),
    maxAttempts: positiveInt(1_000).default(DEFAULT_MAX_ATTEMPTS),
  })
  .superRefine((entry, ctx) => {
    if (entry.task && entry.share) {
      ctx.addIssue({ code: 'custom', path: ['share'], message: 'give either `task` or `share`, not both' });
    } else if (!entry.task && !entry.share) {
      ctx.addIssue({ code: 'custom', path: [], message: 'needs `task: {kind, segment}` or `share: {topics, segment}`' });
    }
    if (entry.share && entry.share.name === undefined && entry.instances > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['instances'],
        message:
          'an unnamed share subscription gives every instance its own copy of each message; set `share.name` so instances compete, or use instances: 1',
      });
    }
  });

const configSchema = z.strictObject({
  url: z.string({ error: 'must be a broker URL such as memory: or amqp://host' }).min(1).optional(),
  driverOptions: z.record(z.string(), z.unknown(), { error: 'must be a mapping of driver options' }).optional(),
  startup: moduleRef('function').optional(),
  ready: moduleRef('function').optional(),
  shutdownGraceMs: nonNegativeInt.default(DEFAULT_SHUTDOWN_GRACE_MS),
  http: z
    .strictObject({
      port: z
        .number({ error: 'must be a port number from 0 to 65535' })
        .int('must be a port number from 0 to 65535')
        .min(0, 'must be a port number from 0 to 65535')
        .max(65_535, 'must be a port number from 0 to 65535'),
      host: z.string().min(1).optional(),
      defaultMetrics: z.boolean().default(true),
    })
    .optional(),
  restart: z
    .strictObject({
      baseMs: nonNegativeInt.default(DEFAULT_RESTART.baseMs),
      maxMs: nonNegativeInt.default(DEFAULT_RESTART.maxMs),
      crashLoopRestarts: positiveInt(1_000_000).default(DEFAULT_RESTART.crashLoopRestarts),
      crashLoopWindowMs: positiveInt(2 ** 31 - 1).default(DEFAULT_RESTART.crashLoopWindowMs),
    })
    .default({ ...DEFAULT_RESTART }),
  consumers: z.array(consumerSchema, { error: 'must be a list of consumers' }).min(1, 'must list at least one consumer'),
});

// ---------------------------------------------------------------------------------------------
// Types

export interface TaskSource {
  kind: string;
  segment: string;
}
export interface ShareSource {
  topics: string[];
  segment: string;
  /** A durable (named) subscription; instances of the consumer compete on it. */
  name?: string;
}

/** One consumer entry as written (in YAML or code). */
export interface ConsumerInput {
  /** Label in logs and metrics. Default: the export name (`EmailWorker`), suffixed `-2`, `-3`... when repeated. */
  name?: string;
  /** `./workers/email.js#EmailWorker` (relative to the config file), or the class itself in code. */
  consumer: string | WorkerClass;
  task?: TaskSource;
  share?: ShareSource;
  /** Worker instances, each its own subscription. Default 1. Alias `consumer_count`. */
  instances?: number;
  /** Messages one instance handles at once. Default 1. Alias `prefetch_count`. */
  prefetch?: number;
  /** Deliveries before a failing message is dead-lettered. Default 5. */
  maxAttempts?: number;
  consumer_count?: number;
  prefetch_count?: number;
}

/** The config as written in YAML or passed to `runWorkers` in code. */
export interface DispatcherConfigInput {
  /** Broker URL. Default: env `MQ_URL`, else `memory:`. */
  url?: string;
  /** Options handed to the driver (e.g. `{redeliveryBackoff: {baseMs: 100, maxMs: 10000}}`). */
  driverOptions?: Record<string, unknown>;
  /** Run before connecting: `./startup.js#init`, or the function in code. */
  startup?: string | StartupHook;
  /** Run once every consumer is subscribed, with the driver: `./startup.js#ready`, or the function. */
  ready?: string | ReadyHook;
  /** How long SIGTERM waits for in-flight messages. Default 30000. */
  shutdownGraceMs?: number;
  /** Serve `/healthz` and `/metrics` on this port (0: any free port). */
  http?: { port: number; host?: string; defaultMetrics?: boolean };
  /** Restart backoff of crashed worker instances and the crash-loop warning threshold. */
  restart?: Partial<RestartOptions>;
  consumers: ConsumerInput[];
}

export interface RestartOptions {
  /** First restart delay; doubles per consecutive crash of one instance. Default 100. */
  baseMs: number;
  /** Largest restart delay. Default 30000. */
  maxMs: number;
  /** This many restarts of one instance within `crashLoopWindowMs` is logged as a crash loop. Default 5. */
  crashLoopRestarts: number;
  /** Default 60000. */
  crashLoopWindowMs: number;
}

export interface ConsumerConfig {
  name: string;
  consumer: string | WorkerClass;
  task?: TaskSource;
  share?: ShareSource;
  instances: number;
  prefetch: number;
  maxAttempts: number;
  /** 1-based line of this entry in the config file. */
  line?: number;
}

/** A checked config with every default filled in. */
export interface DispatcherConfig {
  url: string;
  driverOptions: Record<string, unknown>;
  startup?: string | StartupHook;
  ready?: string | ReadyHook;
  shutdownGraceMs: number;
  http?: { port: number; host?: string; defaultMetrics: boolean };
  restart: RestartOptions;
  consumers: ConsumerConfig[];
  /** Folder that relative module paths and driver packages are resolved from. */
  baseDir: string;
  /** The config file, when loaded from one. */
  file?: string;
  /** Lines of top-level keys and entries (for problems found after parsing, e.g. a missing export). */
  lines: { url?: number; startup?: number; ready?: number };
}

// ---------------------------------------------------------------------------------------------
// Parsing

const ALIASES: Record<string, string> = { consumer_count: 'instances', prefetch_count: 'prefetch' };

type PathKey = string | number;

function pathText(path: readonly PathKey[]): string {
  let text = '';
  for (const key of path) text += typeof key === 'number' ? `[${key}]` : text ? `.${key}` : key;
  return text;
}

/** Renames alias keys; reports entries that use both spellings. */
function applyAliases(raw: unknown, problems: (path: PathKey[], message: string) => void): void {
  if (!raw || typeof raw !== 'object') return;
  const consumers = (raw as { consumers?: unknown }).consumers;
  if (!Array.isArray(consumers)) return;
  consumers.forEach((entry, index) => {
    if (!entry || typeof entry !== 'object') return;
    const record = entry as Record<string, unknown>;
    for (const [alias, canonical] of Object.entries(ALIASES)) {
      if (!(alias in record)) continue;
      if (canonical in record) {
        problems(['consumers', index, alias], `give either \`${canonical}\` or \`${alias}\`, not both`);
      } else {
        record[canonical] = record[alias];
      }
      delete record[alias];
    }
  });
}

function exportName(ref: string | WorkerClass): string {
  if (typeof ref === 'function') return ref.name || 'Worker';
  const hash = ref.lastIndexOf('#');
  if (hash >= 0) return ref.slice(hash + 1);
  const file = basename(ref).replace(/\.[cm]?js$/, '');
  return file || 'Worker';
}

/** Names each consumer: explicit `name`, else the export name, suffixed when repeated. */
function nameConsumers(entries: z.infer<typeof consumerSchema>[], problem: (path: PathKey[], message: string) => void): string[] {
  const names: string[] = [];
  const taken = new Set(entries.map((e) => e.name).filter((n): n is string => n !== undefined));
  const seen = new Set<string>();
  entries.forEach((entry, index) => {
    if (entry.name !== undefined) {
      if (seen.has(entry.name)) problem(['consumers', index, 'name'], `"${entry.name}" is used by another consumer`);
      seen.add(entry.name);
      names.push(entry.name);
      return;
    }
    const base = exportName(entry.consumer).replace(/[^A-Za-z0-9_-]/g, '_');
    let name = base;
    for (let n = 2; taken.has(name) || seen.has(name); n++) name = `${base}-${n}`;
    seen.add(name);
    names.push(name);
  });
  return names;
}

export interface LineMap {
  /** Line of the key or item at `path` (or of its nearest existing parent). */
  lineOf(path: readonly PathKey[]): number | undefined;
}

function yamlLines(doc: ReturnType<typeof parseDocument>, counter: LineCounter): LineMap {
  const lineAt = (offset: number | undefined) => (offset === undefined ? undefined : counter.linePos(offset).line);
  return {
    lineOf(path) {
      let node: unknown = doc.contents;
      let line = lineAt((node as Node | null)?.range?.[0]) ?? 1;
      for (const key of path) {
        if (isMap(node)) {
          let pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === key);
          if (!pair && typeof key === 'string') {
            const alias = Object.keys(ALIASES).find((a) => ALIASES[a] === key);
            if (alias) pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === alias);
          }
          if (!pair) break;
          line = lineAt((pair.key as Node | null)?.range?.[0]) ?? line;
          node = pair.value;
        } else if (isSeq(node) && typeof key === 'number') {
          const item = node.items[key];
          if (!item) break;
          line = lineAt((item as Node).range?.[0]) ?? line;
          node = item;
        } else {
          break;
        }
      }
      return line;
    },
  };
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let value = raw;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/**
 * Checks a config object (from YAML or code) against the schema and fills in defaults. Returns the
 * config or every problem found; `lines` maps problems to lines of the file they came from.
 */
export function checkConfig(
  raw: unknown,
  options: { baseDir: string; file?: string; lines?: LineMap; env?: NodeJS.ProcessEnv },
): { config: DispatcherConfig; problems: [] } | { config: undefined; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const add = (path: readonly PropertyKey[], message: string) => {
    const keys = path.filter((k): k is PathKey => typeof k === 'string' || typeof k === 'number');
    const problem: ConfigProblem = { path: pathText(keys), message };
    if (options.file !== undefined) problem.file = options.file;
    const line = options.lines?.lineOf(keys);
    if (line !== undefined) problem.line = line;
    problems.push(problem);
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    add([], 'must be a mapping with at least `consumers:`');
    return { config: undefined, problems };
  }
  const input = structuredCloneLoose(raw as Record<string, unknown>);
  applyAliases(input, add);
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) add([...issue.path, key], `unknown key \`${key}\``);
        continue;
      }
      const missing = valueAt(input, issue.path) === undefined && issue.code === 'invalid_type';
      add(issue.path, missing ? 'is required' : issue.message);
    }
  }
  if (!parsed.success || problems.length > 0) {
    return { config: undefined, problems: sortProblems(problems) };
  }
  const data = parsed.data;
  const names = nameConsumers(data.consumers, add);
  if (problems.length > 0) return { config: undefined, problems: sortProblems(problems) };
  const env = options.env ?? process.env;
  const lines: DispatcherConfig['lines'] = {};
  for (const key of ['url', 'startup', 'ready'] as const) {
    if (data[key] !== undefined) {
      const line = options.lines?.lineOf([key]);
      if (line !== undefined) lines[key] = line;
    }
  }
  const config: DispatcherConfig = {
    url: data.url ?? (env.MQ_URL || 'memory:'),
    driverOptions: data.driverOptions ?? {},
    shutdownGraceMs: data.shutdownGraceMs,
    restart: data.restart,
    consumers: data.consumers.map((entry, index) => {
      const consumer: ConsumerConfig = {
        name: names[index] as string,
        consumer: entry.consumer as string | WorkerClass,
        instances: entry.instances,
        prefetch: entry.prefetch,
        maxAttempts: entry.maxAttempts,
      };
      if (entry.task) consumer.task = entry.task;
      if (entry.share) {
        consumer.share = { topics: entry.share.topics, segment: entry.share.segment };
        if (entry.share.name !== undefined) consumer.share.name = entry.share.name;
      }
      const line = options.lines?.lineOf(['consumers', index]);
      if (line !== undefined) consumer.line = line;
      return consumer;
    }),
    baseDir: options.baseDir,
    lines,
  };
  if (data.startup !== undefined) config.startup = data.startup as string | StartupHook;
  if (data.ready !== undefined) config.ready = data.ready as string | ReadyHook;
  if (data.http) {
    config.http = { port: data.http.port, defaultMetrics: data.http.defaultMetrics };
    if (data.http.host !== undefined) config.http.host = data.http.host;
  }
  if (options.file !== undefined) config.file = options.file;
  return { config, problems: [] };
}

/** Copies plain objects and arrays (so alias renaming does not touch the caller's object); keeps functions. */
function structuredCloneLoose<T>(value: T): T {
  if (Array.isArray(value)) return value.map(structuredCloneLoose) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, structuredCloneLoose(v)])) as T;
  }
  return value;
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

/**
 * Reads and checks a YAML config file (schema only; {@link validateConfigFile} also loads the
 * modules). Throws an `InvalidArgumentError` listing every problem with its line.
 */
export async function loadConfig(path: string, options: { env?: NodeJS.ProcessEnv } = {}): Promise<DispatcherConfig> {
  const { config, problems } = await readConfigFile(path, options);
  if (!config) throw configError(problems);
  return config;
}

/** Like {@link loadConfig} but returns the problems instead of throwing. */
export async function readConfigFile(
  path: string,
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<{ config: DispatcherConfig; problems: [] } | { config: undefined; problems: ConfigProblem[] }> {
  const { config, problems } = await parseConfigFile(path, options);
  return config ? { config, problems: [] } : { config: undefined, problems };
}

/** A parsed file: the checked config or its problems, plus the raw data and line map when the YAML parsed. */
export interface ParsedConfigFile {
  file: string;
  config: DispatcherConfig | undefined;
  problems: ConfigProblem[];
  raw?: unknown;
  lines?: LineMap;
}

export async function parseConfigFile(path: string, options: { env?: NodeJS.ProcessEnv } = {}): Promise<ParsedConfigFile> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : String(error);
    return { file, config: undefined, problems: [{ file, path: '', message: `cannot read config: ${reason}` }] };
  }
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      file,
      config: undefined,
      problems: doc.errors.map((error) => {
        let message = `YAML: ${error.message.split('\n')[0]}`;
        if (error.code === 'BAD_INDENT' || /compact mappings/.test(message)) {
          message += ' (quote values that end with ":" or contain ": ", e.g. url: "memory:")';
        }
        const problem: ConfigProblem = { file, path: '', message };
        const offset = error.pos?.[0];
        if (offset !== undefined) problem.line = counter.linePos(offset).line;
        return problem;
      }),
    };
  }
  const raw = (doc.toJS({ maxAliasCount: 100 }) as unknown) ?? {};
  const lines = yamlLines(doc, counter);
  const checkOptions: Parameters<typeof checkConfig>[1] = { baseDir: dirname(file), file, lines };
  if (options.env) checkOptions.env = options.env;
  const { config, problems } = checkConfig(raw, checkOptions);
  return { file, config, problems, raw, lines };
}
