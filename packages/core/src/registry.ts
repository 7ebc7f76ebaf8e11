import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Driver, SPECIFICATION_VERSION } from './contract.js';
import { InvalidArgumentError, NoSuchDriverError, UnsupportedError } from './errors/index.js';
import { describeValue } from './names.js';
import { rejectUnknownKeys } from './options.js';
import { redactUrl } from './redact.js';

/**
 * How a driver package makes itself known. A package exports it as `driver` (or default) and
 * declares `"mqDriver": {"name": "...", "schemes": [...]}` in its package.json so `connect`
 * finds it without importing every installed package.
 */
export interface DriverDefinition<Options = Record<string, unknown>> {
  /** Short name, e.g. `rabbitmq`; also the suffix of its package (`@mq-drivers/<name>`, `mq-driver-<name>`). */
  name: string;
  /** URL schemes without the colon, e.g. `['amqp', 'amqps']`. */
  schemes: readonly string[];
  create(url: string, options?: Options): Driver | Promise<Driver>;
}

export interface DriverInfo {
  name: string;
  schemes: readonly string[];
  /** `registered`: by registerDriver (or already loaded); `installed`: found in node_modules, not loaded yet. */
  source: 'registered' | 'installed';
  packageName?: string;
}

export interface ConnectOptions {
  /**
   * The one folder to find installed driver packages from (its `node_modules` and those of its
   * parents). Default: as Node resolves the application's own imports — from the folder of the
   * entry script (`process.argv[1]`, `require.main`), then from core's own installed location,
   * then from `process.cwd()`; so a service started from another working directory (systemd,
   * cron, a container) still finds the drivers installed beside core.
   */
  resolveFrom?: string;
  /** Options handed to the driver's factory. */
  [option: string]: unknown;
}

/** Official drivers, so an unknown-but-known scheme says exactly what to install. */
const OFFICIAL: Record<string, string> = {
  memory: '@mq-drivers/memory',
  amqp: '@mq-drivers/rabbitmq',
  amqps: '@mq-drivers/rabbitmq',
  s3: '@mq-drivers/s3',
};

interface RegistryState {
  byName: Map<string, DriverDefinition<never>>;
  byScheme: Map<string, DriverDefinition<never>>;
}

// One registry per process, even with several copies of core installed.
const registryKey = Symbol.for('mq-drivers.registry.v1');
const globalStore = globalThis as unknown as Record<symbol, RegistryState | undefined>;
const state: RegistryState = globalStore[registryKey] ?? { byName: new Map(), byScheme: new Map() };
globalStore[registryKey] = state;

const SCHEME = /^[a-z][a-z0-9+.-]*$/;

/** Adds (or replaces) a driver for its schemes. */
export function registerDriver<Options>(definition: DriverDefinition<Options>): void {
  if (!definition || typeof definition.name !== 'string' || definition.name.length === 0) {
    throw new InvalidArgumentError({
      driver: 'core',
      argument: 'definition.name',
      value: definition?.name,
      message: `${describeValue(definition?.name)} must be a non-empty string`,
    });
  }
  if (!Array.isArray(definition.schemes) || definition.schemes.length === 0) {
    throw new InvalidArgumentError({
      driver: 'core',
      argument: 'definition.schemes',
      value: definition.schemes,
      message: `${describeValue(definition.schemes)} must be a non-empty array`,
    });
  }
  for (const scheme of definition.schemes) {
    if (typeof scheme !== 'string' || !SCHEME.test(scheme)) {
      throw new InvalidArgumentError({
        driver: 'core',
        argument: 'definition.schemes',
        value: scheme,
        message: `${describeValue(scheme)} is not a lower-case URL scheme without ":"`,
      });
    }
  }
  if (typeof definition.create !== 'function') {
    throw new InvalidArgumentError({
      driver: 'core',
      argument: 'definition.create',
      value: definition.create,
      message: `${describeValue(definition.create)} must be a function`,
    });
  }
  const stored = definition as DriverDefinition<never>;
  state.byName.set(definition.name, stored);
  for (const scheme of definition.schemes) state.byScheme.set(scheme, stored);
}

interface InstalledPackage {
  packageName: string;
  dir: string;
  name: string;
  schemes: string[];
}

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function nodeModulesDirs(from: string): string[] {
  const dirs: string[] = [];
  let dir = resolve(from);
  for (;;) {
    const candidate = join(dir, 'node_modules');
    // As Node does: never `node_modules/node_modules`.
    if (basename(dir) !== 'node_modules' && existsSync(candidate)) dirs.push(candidate);
    const parent = dirname(dir);
    if (parent === dir) return dirs;
    dir = parent;
  }
}

/** A folder driver packages are looked up from, and why. */
interface SearchRoot {
  dir: string;
  label: 'resolveFrom' | 'application' | 'core' | 'working directory';
}

/** The folder of the entry script, as Node sees it (symlinks resolved); undefined for `node -e`, a REPL. */
function applicationDir(): string | undefined {
  const main =
    (typeof require === 'function' ? require.main?.filename : undefined) ??
    (typeof process.argv[1] === 'string' && process.argv[1] !== '' ? process.argv[1] : undefined);
  if (main === undefined) return undefined;
  try {
    const real = realpathSync(main);
    return statSync(real).isDirectory() ? real : dirname(real);
  } catch {
    return undefined;
  }
}

/** Where this copy of core is installed: its driver packages are usually installed beside it. */
function coreDir(): string | undefined {
  try {
    // CommonJS build: __dirname; ES module build: import.meta.url.
    return typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
  } catch {
    return undefined;
  }
}

function searchRoots(resolveFrom: string | undefined): SearchRoot[] {
  if (resolveFrom !== undefined) return [{ dir: resolve(resolveFrom), label: 'resolveFrom' }];
  const roots: SearchRoot[] = [];
  const add = (dir: string | undefined, label: SearchRoot['label']) => {
    if (dir !== undefined && !roots.some((root) => root.dir === dir)) roots.push({ dir, label });
  };
  add(applicationDir(), 'application');
  add(coreDir(), 'core');
  add(process.cwd(), 'working directory');
  return roots;
}

/** Every node_modules folder of the roots, in order, each once. */
function moduleDirs(roots: readonly SearchRoot[]): string[] {
  return [...new Set(roots.flatMap((root) => nodeModulesDirs(root.dir)))];
}

function describePackage(packageName: string, dir: string): InstalledPackage | undefined {
  const manifest = readJson(join(dir, 'package.json'));
  if (!manifest) return undefined;
  const declared = manifest.mqDriver as { name?: unknown; schemes?: unknown } | undefined;
  const fallbackName = packageName.replace(/^@mq-drivers\//, '').replace(/^mq-driver-/, '');
  if (packageName.startsWith('@mq-drivers/') && !declared) return undefined; // core, conformance, tee...
  const name = typeof declared?.name === 'string' ? declared.name : fallbackName;
  const schemes = Array.isArray(declared?.schemes)
    ? declared.schemes.filter((s): s is string => typeof s === 'string')
    : [fallbackName];
  return { packageName, dir, name, schemes };
}

/** Driver packages installed for the application: `@mq-drivers/*` with `mqDriver`, and `mq-driver-*`. */
function findInstalled(roots: readonly SearchRoot[]): InstalledPackage[] {
  const found = new Map<string, InstalledPackage>();
  for (const modules of moduleDirs(roots)) {
    const candidates: string[] = [];
    const scoped = join(modules, '@mq-drivers');
    if (existsSync(scoped)) for (const entry of readdirSync(scoped)) candidates.push(`@mq-drivers/${entry}`);
    for (const entry of readdirSync(modules)) if (entry.startsWith('mq-driver-')) candidates.push(entry);
    for (const packageName of candidates) {
      if (found.has(packageName)) continue; // nearest wins, as in Node's resolution
      const info = describePackage(packageName, join(modules, packageName));
      if (info) found.set(packageName, info);
    }
  }
  return [...found.values()];
}

function findPackageDir(roots: readonly SearchRoot[], packageName: string): string | undefined {
  for (const modules of moduleDirs(roots)) {
    const dir = join(modules, packageName);
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  return undefined;
}

/** The ESM entry of a package, read from its exports map (or `module`/`main`). */
function esmEntry(dir: string): string {
  const manifest = readJson(join(dir, 'package.json')) ?? {};
  const pick = (target: unknown): string | undefined => {
    if (typeof target === 'string') return target;
    if (target && typeof target === 'object') {
      const conditions = target as Record<string, unknown>;
      return pick(conditions['.']) ?? pick(conditions.import) ?? pick(conditions.node) ?? pick(conditions.default);
    }
    return undefined;
  };
  const entry =
    pick(manifest.exports) ?? (manifest.module as string | undefined) ?? (manifest.main as string | undefined) ?? 'index.js';
  return join(dir, entry);
}

async function loadPackage(packageName: string, dir: string): Promise<DriverDefinition<never>> {
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(esmEntry(dir)).href)) as Record<string, unknown>;
  } catch (cause) {
    throw new UnsupportedError({
      driver: 'core',
      feature: packageName,
      message: `driver package ${packageName} failed to load`,
      cause,
    });
  }
  const definition = (module.driver ?? module.default) as DriverDefinition<never> | undefined;
  if (!definition || typeof definition.create !== 'function') {
    throw new UnsupportedError({
      driver: 'core',
      feature: packageName,
      message: `package ${packageName} does not export a driver definition as \`driver\` or default`,
    });
  }
  registerDriver(definition);
  return definition;
}

function checkResolveFrom(resolveFrom: unknown): asserts resolveFrom is string | undefined {
  if (resolveFrom !== undefined && (typeof resolveFrom !== 'string' || resolveFrom === '')) {
    throw new InvalidArgumentError({
      driver: 'core',
      argument: 'options.resolveFrom',
      value: resolveFrom,
      message: `${describeValue(resolveFrom)} must be a folder path`,
    });
  }
}

/** Every driver known to this process: registered ones first, then installed, not yet loaded ones. */
export function drivers(options: { resolveFrom?: string } = {}): DriverInfo[] {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError({
      driver: 'core',
      argument: 'options',
      value: options,
      message: `${describeValue(options)} must be an object`,
    });
  }
  rejectUnknownKeys('core', options, ['resolveFrom'], 'options.');
  checkResolveFrom(options.resolveFrom);
  const list: DriverInfo[] = [...state.byName.values()].map((d) => ({
    name: d.name,
    schemes: [...d.schemes],
    source: 'registered',
  }));
  for (const info of findInstalled(searchRoots(options.resolveFrom))) {
    if (state.byName.has(info.name)) continue;
    list.push({ name: info.name, schemes: info.schemes, source: 'installed', packageName: info.packageName });
  }
  return list;
}

function schemeOf(url: string): string {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url);
  if (!match?.[1]) {
    const safe = redactUrl(url);
    throw new InvalidArgumentError({
      driver: 'core',
      argument: 'url',
      value: safe,
      message: `${describeValue(safe)} must start with a scheme such as memory:, amqp:// or s3://`,
    });
  }
  return match[1].toLowerCase();
}

async function findDefinition(url: string, scheme: string, resolveFrom: string | undefined): Promise<DriverDefinition<never>> {
  const registered = state.byScheme.get(scheme);
  if (registered) return registered;
  const official = OFFICIAL[scheme];
  const candidates = [official, `mq-driver-${scheme}`].filter((p): p is string => p !== undefined);
  const roots = searchRoots(resolveFrom);
  for (const packageName of candidates) {
    const dir = findPackageDir(roots, packageName);
    if (dir) return loadPackage(packageName, dir);
  }
  const declared = findInstalled(roots).find((info) => info.schemes.includes(scheme));
  if (declared) return loadPackage(declared.packageName, declared.dir);
  const available = drivers({ resolveFrom }).map((d) => `${d.name} (${d.schemes.map((s) => `${s}:`).join(' ')})`);
  throw new NoSuchDriverError({
    scheme,
    url,
    searched: roots.map((root) => `${root.dir} (${root.label})`),
    availableDrivers: available,
    installCommand: official
      ? `npm install ${official}`
      : `npm install mq-driver-${scheme} (if such a package exists), or call registerDriver()`,
  });
}

/** Checks that a driver speaks this version of the contract. */
export function assertDriver(driver: Driver, source: string): Driver {
  if (!driver || driver.specificationVersion !== SPECIFICATION_VERSION) {
    throw new UnsupportedError({
      driver: 'core',
      feature: 'specificationVersion',
      message: `${source} returned a driver with specificationVersion ${JSON.stringify(driver?.specificationVersion)}; this core speaks "${SPECIFICATION_VERSION}"`,
    });
  }
  return driver;
}

/**
 * Opens a driver chosen by the URL's scheme: `memory:`, `amqp://`/`amqps://`, `s3://bucket/prefix`,
 * or any scheme of a registered or installed driver. Installed packages are found as Node finds
 * the application's imports (see {@link ConnectOptions.resolveFrom}) without the user importing them.
 */
export async function connect(url: string, options: ConnectOptions = {}): Promise<Driver> {
  if (typeof url !== 'string') {
    // A URL object would carry its password into the error: keep only its redacted text.
    const given: unknown = url;
    const value = given instanceof URL ? redactUrl(given.href) : given;
    throw new InvalidArgumentError({
      driver: 'core',
      argument: 'url',
      value,
      message: `${given instanceof URL ? `a URL object ${JSON.stringify(value)}` : describeValue(value)} must be a string such as "memory:", "amqp://host" or "s3://bucket/prefix"`,
    });
  }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError({
      driver: 'core',
      argument: 'options',
      value: options,
      message: `${describeValue(options)} must be an object`,
    });
  }
  const { resolveFrom, ...driverOptions } = options;
  checkResolveFrom(resolveFrom);
  const definition = await findDefinition(url, schemeOf(url), resolveFrom);
  return assertDriver(await definition.create(url, driverOptions as never), `driver ${definition.name}`);
}
