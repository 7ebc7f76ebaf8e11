// Whether a changeset file is one `changeset version` accepts: parsed with the parser it uses
// (@changesets/parse, so any YAML quoting works), naming only published packages, with a text.
import parseChangeset from '@changesets/parse';

/** Undefined when the changeset is fine, else what is wrong with it. */
export function changesetProblem(text, publishedNames) {
  let parsed;
  try {
    parsed = parseChangeset(text);
  } catch (error) {
    return error.message.split('\n')[0];
  }
  const unknown = parsed.releases.map((release) => release.name).filter((name) => !publishedNames.has(name));
  if (parsed.releases.length === 0) return 'names no package';
  if (unknown.length > 0) return `unknown packages ${unknown.join(', ')}`;
  if (parsed.summary.trim() === '') return 'has no text';
  return undefined;
}
