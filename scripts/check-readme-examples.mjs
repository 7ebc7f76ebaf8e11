#!/usr/bin/env node
// Type-checks README examples: every ```ts block of README.md and packages/*/README.md is
// written to examples/readme-check/generated/ and compiled against the built packages.
// A block that starts with `// not type-checked: <reason>` is left out.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'examples/readme-check/generated');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const readmes = [['root', join(root, 'README.md')]];
for (const dir of readdirSync(join(root, 'packages')).sort()) readmes.push([dir, join(root, 'packages', dir, 'README.md')]);

let count = 0;
for (const [name, file] of readmes) {
  if (!existsSync(file)) continue;
  const blocks = [...readFileSync(file, 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  blocks.forEach((code, index) => {
    if (code.startsWith('// not type-checked')) return;
    // Each block is its own module; top-level await is allowed as in an ESM entry file.
    writeFileSync(join(out, `${name}-${index + 1}.ts`), `${code}\nexport {};\n`);
    count++;
  });
}
console.log(`type-checking ${count} README examples`);
try {
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'examples/readme-check/tsconfig.json')], {
    stdio: 'inherit',
  });
} catch {
  process.exit(1);
}
