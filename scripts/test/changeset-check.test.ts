import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs script without types
import { changesetProblem } from '../changeset-check.mjs';

const published = new Set(['@mq-drivers/core', '@mq-drivers/s3']);

describe('changeset check (scripts/check-packages.mjs)', () => {
  it.each([
    ['double quotes', '---\n"@mq-drivers/core": patch\n---\n\nText.\n'],
    ['single quotes', "---\n'@mq-drivers/core': patch\n---\n\nText.\n"],
    ['two packages, mixed quoting', '---\n\'@mq-drivers/core\': minor\n"@mq-drivers/s3": patch\n---\n\nText.\n'],
  ])('accepts valid front matter: %s', (_, text) => {
    expect(changesetProblem(text, published)).toBeUndefined();
  });

  it.each([
    ['front matter rewritten as a heading', '## "@mq-drivers/core": patch\n\nText.\n', /frontmatter/],
    ['an unknown package', '---\n"@mq-drivers/nope": patch\n---\n\nText.\n', /unknown packages @mq-drivers\/nope/],
    ['a bad bump', '---\n"@mq-drivers/core": huge\n---\n\nText.\n', /invalid version type/],
    ['no text', '---\n"@mq-drivers/core": patch\n---\n', /no text/],
  ])('rejects %s', (_, text, problem) => {
    expect(changesetProblem(text, published)).toMatch(problem);
  });
});
