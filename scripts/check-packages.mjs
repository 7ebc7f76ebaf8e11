#!/usr/bin/env node
// Runs publint and are-the-types-wrong on every publishable package (built dist required), and
// checks that every changeset names real packages in the front matter `changeset version` parses.
// Fails when any reports a problem: exports, types and built files must agree.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const packagesDir = join(root, 'packages');
let failed = false;
const published = new Set();
for (const dir of readdirSync(packagesDir).sort()) {
  const manifest = JSON.parse(readFileSync(join(packagesDir, dir, 'package.json'), 'utf8'));
  if (manifest.private) continue;
  published.add(manifest.name);
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
// A changeset is `---`, one `"package": major|minor|patch` line per package, `---`, then the text.
// (A formatter that rewrites the front matter as a Markdown heading breaks `changeset version`.)
const changesetDir = join(root, '.changeset');
for (const file of readdirSync(changesetDir).filter((name) => name.endsWith('.md') && name !== 'README.md')) {
  const text = readFileSync(join(changesetDir, file), 'utf8');
  const front = /^---\n((?:"[^"\n]+": (?:major|minor|patch)\n)+)---\n\s*\S/.exec(text);
  const unknown = front ? [...front[1].matchAll(/^"([^"]+)"/gm)].map((m) => m[1]).filter((name) => !published.has(name)) : [];
  if (!front || unknown.length > 0) {
    failed = true;
    console.log(
      `FAIL changeset .changeset/${file}: ${front ? `unknown packages ${unknown.join(', ')}` : 'front matter is not `---` / "package": bump lines / `---`'}`,
    );
  } else console.log(`ok   changeset .changeset/${file}`);
}
process.exit(failed ? 1 : 0);
