#!/usr/bin/env node
// Checks every publishable package (built dist required) and every changeset; fails on any problem:
// - publint and are-the-types-wrong: exports, types and built files agree;
// - every export of every entry point exists in both the ESM and the CommonJS build (except the
//   entry points stated ESM-only below, which must then have no CommonJS build at all);
// - LICENSE is shipped (`files`) and equal to the root LICENSE;
// - every changeset parses as `changeset version` parses it and names real packages.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { changesetProblem } from './changeset-check.mjs';

const root = new URL('..', import.meta.url).pathname;
const packagesDir = join(root, 'packages');
const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8');
let failed = false;
const report = (ok, what, detail = '') => {
  if (!ok) failed = true;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${!ok && detail ? `\n${detail}` : ''}`);
};

/**
 * Entry points that are ESM only on purpose, by package, each with its reason. Only these may lack
 * a `require` build: the export-parity check skips them, and are-the-types-wrong checks them with
 * its `esm-only` profile (which accepts exactly "cannot be resolved from CommonJS"). Every other
 * entry point of the package gets the strict checks. A stated entry point that is missing, or that
 * has a `require` build after all, fails.
 */
const ESM_ONLY = {
  '@mq-drivers/conformance': {
    './vitest': 'registers tests with vitest, and vitest cannot be loaded with require()',
  },
};

/** The ESM and CJS files of every entry point in an exports map (`./package.json` aside). */
function entryPoints(manifest) {
  return Object.entries(manifest.exports ?? {})
    .filter(([subpath, target]) => subpath !== './package.json' && typeof target === 'object')
    .map(([subpath, target]) => ({ subpath, esm: target.import?.default, cjs: target.require?.default }));
}

async function exportParity(dir, manifest) {
  const require = createRequire(join(dir, 'package.json'));
  const problems = [];
  const esmOnly = ESM_ONLY[manifest.name] ?? {};
  const entries = entryPoints(manifest);
  for (const subpath of Object.keys(esmOnly)) {
    const entry = entries.find((candidate) => candidate.subpath === subpath);
    if (!entry?.esm) problems.push(`${subpath}: stated ESM-only in scripts/check-packages.mjs but has no import build`);
    else if (entry.cjs) problems.push(`${subpath}: stated ESM-only in scripts/check-packages.mjs but has a require build`);
  }
  for (const { subpath, esm, cjs } of entries) {
    if (subpath in esmOnly) continue;
    if (!esm || !cjs) {
      problems.push(`${subpath}: exports map has no ${esm ? 'require' : 'import'} build`);
      continue;
    }
    const esmKeys = Object.keys(await import(pathToFileURL(join(dir, esm)).href)).filter((key) => key !== 'default');
    const cjsModule = require(join(dir, cjs));
    const cjsKeys = Object.keys(cjsModule).filter((key) => key !== 'default' && key !== '__esModule');
    const onlyEsm = esmKeys.filter((key) => !cjsKeys.includes(key));
    const onlyCjs = cjsKeys.filter((key) => !esmKeys.includes(key));
    if (onlyEsm.length > 0) problems.push(`${subpath}: missing from the CommonJS build: ${onlyEsm.join(', ')}`);
    if (onlyCjs.length > 0) problems.push(`${subpath}: missing from the ESM build: ${onlyCjs.join(', ')}`);
    for (const key of esmKeys.filter((k) => cjsKeys.includes(k))) {
      if (cjsModule[key] === undefined) problems.push(`${subpath}: ${key} is undefined in the CommonJS build`);
    }
  }
  return problems;
}

// `engines.node` is written once (the root's) and every package says the same; CI (.ci/run,
// which exports MQ_NODE_LINES) tests exactly the lines from its minimum up.
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const engines = rootManifest.engines.node;
const lowest = Number(/^>=(\d+)$/.exec(engines)?.[1]);
if (process.env.MQ_NODE_LINES) {
  const lines = process.env.MQ_NODE_LINES.split(' ').map(Number);
  report(Math.min(...lines) === lowest, `CI Node lines ${lines.join(', ')} start at engines ${engines}`);
}

const published = new Set();
for (const dir of readdirSync(packagesDir).sort()) {
  const packageDir = join(packagesDir, dir);
  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
  if (manifest.private) continue;
  published.add(manifest.name);
  const esmOnly = Object.keys(ESM_ONLY[manifest.name] ?? {});
  const attw = ['--pack', '.', '--format', 'ascii'];
  for (const [tool, args, what = ''] of [
    ['publint', ['--strict']],
    ['attw', esmOnly.length > 0 ? [...attw, '--exclude-entrypoints', ...esmOnly] : attw],
    ...(esmOnly.length > 0
      ? [['attw', [...attw, '--entrypoints', ...esmOnly, '--profile', 'esm-only'], ` (ESM-only ${esmOnly.join(', ')})`]]
      : []),
  ]) {
    try {
      execFileSync(join(root, 'node_modules/.bin', tool), args, { cwd: packageDir, stdio: 'pipe' });
      report(true, `${tool} ${manifest.name}${what}`);
    } catch (error) {
      report(false, `${tool} ${manifest.name}${what}`, `${error.stdout ?? ''}${error.stderr ?? ''}`);
    }
  }
  report(
    manifest.engines?.node === engines,
    `engines ${manifest.name}`,
    `says ${manifest.engines?.node}; the root says ${engines}`,
  );
  const parity = await exportParity(packageDir, manifest);
  report(parity.length === 0, `esm/cjs exports ${manifest.name}`, parity.join('\n'));
  let license = '';
  try {
    license = readFileSync(join(packageDir, 'LICENSE'), 'utf8');
  } catch {}
  report(
    manifest.files?.includes('LICENSE') && license === rootLicense && manifest.license === 'MIT',
    `license ${manifest.name}`,
    'needs a LICENSE equal to the root one, "LICENSE" in `files` and "license": "MIT"',
  );
}

// `changeset version` reads the front matter with @changesets/parse; a formatter that rewrites
// it (say, as a Markdown heading) makes that fail, so the same parser checks it here.
const changesetDir = join(root, '.changeset');
for (const file of readdirSync(changesetDir).filter((name) => name.endsWith('.md') && name !== 'README.md')) {
  const problem = changesetProblem(readFileSync(join(changesetDir, file), 'utf8'), published);
  report(problem === undefined, `changeset .changeset/${file}`, problem);
}
process.exit(failed ? 1 : 0);
