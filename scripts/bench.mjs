#!/usr/bin/env node
// Runs every package benchmark (`packages/*/bench/*.bench.mjs`) one after another, so cases
// never compete for the 2 cores. Pass a package folder name to run only its benchmarks.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv[2];
let failed = false;
for (const pkg of readdirSync(join(root, 'packages')).sort()) {
  if (only && pkg !== only) continue;
  const dir = join(root, 'packages', pkg, 'bench');
  if (!existsSync(dir)) continue;
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.bench.mjs'))
    .sort()) {
    console.log(`\n=== ${pkg}/bench/${file} ===`);
    const run = spawnSync(process.execPath, [join(dir, file)], { stdio: 'inherit', cwd: join(root, 'packages', pkg) });
    if (run.status !== 0) failed = true;
  }
}
process.exit(failed ? 1 : 0);
