import { inspect } from 'node:util';

/**
 * Where `secret` shows in `value`, or undefined. Looks everywhere a logged error can show it:
 * every own property (enumerable or not, string or symbol keys) at any depth, the `cause` chain,
 * `String(value)`, `util.inspect` with hidden properties, and `JSON.stringify`. Also finds the
 * secret percent-encoded, as it stands in a URL.
 */
export function findSecret(value: unknown, secret: string): string | undefined {
  const forms = [...new Set([secret, encodeURIComponent(secret)])];
  const holds = (text: string) => forms.some((form) => text.includes(form));
  const seen = new Set<unknown>();
  const walk = (node: unknown, path: string): string | undefined => {
    if (typeof node === 'string') return holds(node) ? path : undefined;
    if (node === null || (typeof node !== 'object' && typeof node !== 'function')) return undefined;
    if (seen.has(node)) return undefined;
    seen.add(node);
    for (const key of Reflect.ownKeys(node)) {
      let child: unknown;
      try {
        child = (node as Record<PropertyKey, unknown>)[key];
      } catch {
        continue;
      }
      const found = walk(child, `${path}.${String(key)}`);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const inFields = walk(value, 'error');
  if (inFields !== undefined) return inFields;
  const renderings: [string, () => string | undefined][] = [
    ['String(error)', () => String(value)],
    [
      'util.inspect(error, {showHidden: true, depth: Infinity})',
      () => inspect(value, { showHidden: true, depth: Number.POSITIVE_INFINITY }),
    ],
    ['JSON.stringify(error)', () => JSON.stringify(value)],
  ];
  for (const [name, render] of renderings) {
    let text: string | undefined;
    try {
      text = render();
    } catch {
      continue;
    }
    if (text !== undefined && holds(text)) return name;
  }
  return undefined;
}
