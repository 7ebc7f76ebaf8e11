import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect, type Driver, drivers, NoSuchDriverError } from '@mq-drivers/core';
import { type ConfigProblem, type DispatcherConfig, MODULE_REF, type ParsedConfigFile, parseConfigFile } from './config.js';
import type { ReadyHook, StartupHook, WorkerClass } from './types.js';

/** The dispatcher's own folder: its bundled `@mq-drivers/memory` is found from here. */
export function ownDir(): string {
  return dirname(fileURLToPath(import.meta.url));
}

/** Splits `./workers/email.js#EmailWorker` into the module and the export (default: `default`). */
export function splitRef(ref: string): { specifier: string; exportName: string } {
  const hash = ref.lastIndexOf('#');
  if (hash <= 0) return { specifier: ref, exportName: 'default' };
  return { specifier: ref.slice(0, hash), exportName: ref.slice(hash + 1) };
}

/** A relative or absolute path is taken from `baseDir`; anything else is a package, resolved from `baseDir`. */
function moduleUrl(specifier: string, baseDir: string): string {
  if (specifier.startsWith('file:')) return specifier;
  if (specifier.startsWith('./') || specifier.startsWith('../') || isAbsolute(specifier) || specifier === '.') {
    return pathToFileURL(resolve(baseDir, specifier)).href;
  }
  return pathToFileURL(createRequire(join(baseDir, 'noop.js')).resolve(specifier)).href;
}

/** Imports `module#export` from `baseDir`; throws an Error whose message says what is wrong. */
export async function importRef(ref: string, baseDir: string): Promise<unknown> {
  const { specifier, exportName } = splitRef(ref);
  let url: string;
  try {
    url = moduleUrl(specifier, baseDir);
  } catch (error) {
    throw new Error(
      `cannot find module ${JSON.stringify(specifier)} from ${baseDir}: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    let reason = code === 'ERR_MODULE_NOT_FOUND' ? 'module not found' : String((error as Error)?.message).split('\n')[0];
    if (error instanceof SyntaxError && /\b(export|import)\b/.test(error.message)) {
      reason += ' (ES module syntax in a CommonJS file: name it .mjs or add "type": "module" to its package.json)';
    }
    throw new Error(`cannot load ${JSON.stringify(specifier)}: ${reason}`, { cause: error });
  }
  if (!(exportName in module) || module[exportName] === undefined) {
    const available = Object.keys(module)
      .filter((k) => k !== '__esModule')
      .sort();
    throw new Error(
      `${JSON.stringify(specifier)} has no export ${JSON.stringify(exportName)} (exports: ${available.length ? available.join(', ') : 'none'})`,
    );
  }
  return module[exportName];
}

/** Problem text when `value` is not a worker class, else undefined. */
export function workerClassProblem(value: unknown): string | undefined {
  if (typeof value !== 'function') return `must be a class with a consume(message) method, got ${typeof value}`;
  const proto = (value as { prototype?: Record<string, unknown> }).prototype;
  if (!proto) return 'must be a class (an arrow function cannot be constructed)';
  if (typeof proto.consume !== 'function') return `${value.name || 'the class'} has no consume(message) method`;
  if (proto.shutdown !== undefined && typeof proto.shutdown !== 'function') {
    return `${value.name || 'the class'}.shutdown must be a method`;
  }
  return undefined;
}

export interface LoadedModules {
  classes: WorkerClass[];
  startup: StartupHook | undefined;
  ready: ReadyHook | undefined;
}

interface Ref {
  path: string;
  line: number | undefined;
  ref: unknown;
  kind: 'class' | 'function';
}

/** Imports each reference and checks it is a worker class or a function; every failure is a problem. */
async function importRefs(
  refs: Ref[],
  baseDir: string,
  file: string | undefined,
): Promise<{ values: unknown[]; problems: ConfigProblem[] }> {
  const problems: ConfigProblem[] = [];
  const values: unknown[] = [];
  for (const { path, line, ref, kind } of refs) {
    const problem = (message: string) => {
      const entry: ConfigProblem = { path, message };
      if (file !== undefined) entry.file = file;
      if (line !== undefined) entry.line = line;
      problems.push(entry);
    };
    let value = ref;
    if (typeof ref === 'string') {
      try {
        value = await importRef(ref, baseDir);
      } catch (error) {
        problem((error as Error).message);
        values.push(undefined);
        continue;
      }
    }
    const wrong =
      kind === 'class'
        ? workerClassProblem(value)
        : typeof value === 'function'
          ? undefined
          : `must name a function, got ${typeof value}`;
    if (wrong) problem(wrong);
    values.push(wrong ? undefined : value);
  }
  return { values, problems };
}

/** Loads every worker class and hook of a config; returns them or every problem, with lines. */
export async function loadModules(
  config: DispatcherConfig,
): Promise<{ modules: LoadedModules; problems: [] } | { modules: undefined; problems: ConfigProblem[] }> {
  const refs: Ref[] = [
    { path: 'startup', line: config.lines.startup, ref: config.startup, kind: 'function' },
    { path: 'ready', line: config.lines.ready, ref: config.ready, kind: 'function' },
    ...config.consumers.map(
      (entry, index): Ref => ({ path: `consumers[${index}].consumer`, line: entry.line, ref: entry.consumer, kind: 'class' }),
    ),
  ];
  const present = refs.filter((r) => r.ref !== undefined);
  const { values, problems } = await importRefs(present, config.baseDir, config.file);
  if (problems.length > 0) return { modules: undefined, problems };
  const byPath = new Map(present.map((r, i) => [r.path, values[i]]));
  return {
    modules: {
      startup: byPath.get('startup') as StartupHook | undefined,
      ready: byPath.get('ready') as ReadyHook | undefined,
      classes: config.consumers.map((_, index) => byPath.get(`consumers[${index}].consumer`) as WorkerClass),
    },
    problems: [],
  };
}

/** When the schema check failed: still load every well-formed module reference, so one run lists every problem. */
async function looseModuleProblems(parsed: ParsedConfigFile): Promise<ConfigProblem[]> {
  const raw = parsed.raw as Record<string, unknown> | undefined;
  if (!raw || typeof raw !== 'object') return [];
  const flagged = new Set(parsed.problems.map((p) => p.path));
  const refs: Ref[] = [];
  const add = (keys: (string | number)[], path: string, ref: unknown, kind: Ref['kind']) => {
    if (typeof ref !== 'string' || !MODULE_REF.test(ref) || flagged.has(path)) return;
    refs.push({ path, line: parsed.lines?.lineOf(keys), ref, kind });
  };
  add(['startup'], 'startup', raw.startup, 'function');
  add(['ready'], 'ready', raw.ready, 'function');
  if (Array.isArray(raw.consumers)) {
    raw.consumers.forEach((entry, index) => {
      if (entry && typeof entry === 'object') {
        const keys = ['consumers', index, 'consumer'];
        add(keys, `consumers[${index}].consumer`, (entry as Record<string, unknown>).consumer, 'class');
      }
    });
  }
  return (await importRefs(refs, dirname(parsed.file), parsed.file)).problems;
}

function schemeOf(url: string): string | undefined {
  return /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
}

/** A problem when no registered or installed driver serves the config's URL scheme. */
export function driverProblem(config: {
  url: string;
  baseDir: string;
  file?: string | undefined;
  line?: number | undefined;
  hasStartup: boolean;
}): ConfigProblem | undefined {
  const scheme = schemeOf(config.url);
  const where: Partial<ConfigProblem> = {};
  if (config.file !== undefined) where.file = config.file;
  if (config.line !== undefined) where.line = config.line;
  const path = config.line === undefined && config.url !== 'memory:' ? 'url (from env MQ_URL)' : 'url';
  if (!scheme) {
    return { ...where, path, message: `${JSON.stringify(config.url)} must start with a scheme such as memory: or amqp://` };
  }
  const known = [...drivers({ resolveFrom: config.baseDir }), ...drivers({ resolveFrom: ownDir() })];
  if (known.some((d) => d.schemes.includes(scheme))) return undefined;
  if (config.hasStartup) return undefined; // the startup module may registerDriver() it
  const official: Record<string, string> = { amqp: '@mq-drivers/rabbitmq', amqps: '@mq-drivers/rabbitmq', s3: '@mq-drivers/s3' };
  const hint = official[scheme] ? `npm install ${official[scheme]}` : `install a driver for ${scheme}:`;
  return {
    ...where,
    path,
    message: `no driver for ${scheme}: is installed (${hint}; found: ${[...new Set(known.map((d) => d.name))].join(', ') || 'none'})`,
  };
}

/**
 * Everything `mq-dispatch --validate` checks: the YAML, the schema, every module, class and hook,
 * and that a driver for the URL is installed. Returns every problem (empty when the file is good).
 */
export async function validateConfigFile(path: string, options: { env?: NodeJS.ProcessEnv } = {}): Promise<ConfigProblem[]> {
  const parsed = await parseConfigFile(path, options);
  const { config } = parsed;
  if (!config) {
    const all = [...parsed.problems, ...(await looseModuleProblems(parsed))];
    const raw = (parsed.raw ?? {}) as Record<string, unknown>;
    const url = raw.url ?? ((options.env ?? process.env).MQ_URL || 'memory:');
    if (typeof url === 'string' && !all.some((p) => p.path === 'url')) {
      const driver = driverProblem({
        url,
        baseDir: dirname(parsed.file),
        file: parsed.file,
        line: raw.url === undefined ? undefined : parsed.lines?.lineOf(['url']),
        hasStartup: raw.startup !== undefined,
      });
      if (driver) all.push(driver);
    }
    return all.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  }
  const loaded = await loadModules(config);
  const all = [...loaded.problems];
  const driver = driverProblem({
    url: config.url,
    baseDir: config.baseDir,
    file: config.file,
    line: config.lines.url,
    hasStartup: config.startup !== undefined,
  });
  if (driver) all.push(driver);
  return all.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

/** `connect` from the config's folder first (the application's drivers), then from the dispatcher's own. */
export async function connectFor(config: DispatcherConfig): Promise<Driver> {
  try {
    return await connect(config.url, { ...config.driverOptions, resolveFrom: config.baseDir });
  } catch (error) {
    if (!NoSuchDriverError.isInstance(error)) throw error;
    try {
      return await connect(config.url, { ...config.driverOptions, resolveFrom: ownDir() });
    } catch (second) {
      if (NoSuchDriverError.isInstance(second)) throw error;
      throw second;
    }
  }
}
