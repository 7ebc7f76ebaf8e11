#!/usr/bin/env node
// Runs publint and are-the-types-wrong on every publishable package (built dist required).
// Fails when either reports a problem: exports, types and built files must agree.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const packagesDir = join(root, 'packages');
let failed = false;
for (const dir of readdirSync(packagesDir).sort()) {
  const manifest = JSON.parse(readFileSync(join(packagesDir, dir, 'package.json'), 'utf8'));
  if (manifest.private) continue;
  for (const [tool, args] of [
    ['publint', ['--strict']],
    ['attw', ['--pack', '.', '--format', 'ascii']],
  ]) {
    try {
      execFileSync(join(root, 'node_modules/.bin', tool), args, { cwd: join(packagesDir, dir), stdio: 'pipe' });
      console.log(`ok   ${tool} ${manifest.name}`);
    } catch (error) {
      failed = true;
      console.log(`FAIL ${tool} ${manifest.name}\n${error.stdout ?? ''}${error.stderr ?? ''}`);
    }
  }
}
process.exit(failed ? 1 : 0);
