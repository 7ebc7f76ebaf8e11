/**
 * AMQP topic matching: `*` matches exactly one word, `#` zero or more words.
 * Both arguments must already be valid (see names.ts).
 *
 * A pattern is compiled once into a small automaton (one state per pattern word) that reads the
 * topic word by word, tracking every pattern position a prefix of the topic can reach: at most
 * pattern words × topic words steps, whatever the pattern. (Backtracking over the split points of
 * every `#` took time exponential in the number of `#`: a hostile subscriber could stall a
 * process.) Compiled matchers are cached per pattern; matching is on every delivery's path.
 */
export type TopicMatcher = (topic: string) => boolean;

/** Compiles one pattern; the matcher is reusable and pure. */
export function compileTopicPattern(pattern: string): TopicMatcher {
  const words: string[] = [];
  for (const word of pattern.split('.')) {
    // `#.#` matches exactly what `#` does.
    if (word === '#' && words[words.length - 1] === '#') continue;
    words.push(word);
  }
  if (words.length === 1 && words[0] === '#') return () => true;
  if (!words.includes('#')) return exactLength(words);
  return automaton(words);
}

/** No `#`: the topic has as many words as the pattern, each equal or matched by `*`. */
function exactLength(words: readonly string[]): TopicMatcher {
  return (topic) => {
    const parts = topic.split('.');
    if (parts.length !== words.length) return false;
    for (let i = 0; i < words.length; i++) {
      if (words[i] !== '*' && words[i] !== parts[i]) return false;
    }
    return true;
  };
}

/**
 * With `#`: `reach[i]` says the topic words read so far can be matched by pattern words `0..i-1`.
 * A `#` at position i lets position i be skipped (zero words) and stays put on any word.
 */
function automaton(words: readonly string[]): TopicMatcher {
  const size = words.length;
  const isHash = words.map((word) => word === '#');
  // Two state rows, reused: matching is synchronous, so calls never overlap.
  let reach = new Uint8Array(size + 1);
  let next = new Uint8Array(size + 1);
  return (topic) => {
    reach.fill(0);
    reach[0] = 1;
    skipHashes(reach);
    for (const word of topic.split('.')) {
      next.fill(0);
      let any = false;
      for (let i = 0; i < size; i++) {
        if (reach[i] === 0) continue;
        if (isHash[i]) {
          next[i] = 1;
          any = true;
        } else if (words[i] === '*' || words[i] === word) {
          next[i + 1] = 1;
          any = true;
        }
      }
      if (!any) return false;
      skipHashes(next);
      [reach, next] = [next, reach];
    }
    return reach[size] === 1;
  };

  function skipHashes(states: Uint8Array): void {
    for (let i = 0; i < size; i++) if (states[i] === 1 && isHash[i]) states[i + 1] = 1;
  }
}

/** Compiled matchers by pattern; the oldest is dropped past the limit (patterns may be hostile). */
const cache = new Map<string, TopicMatcher>();
const CACHE_LIMIT = 1_000;

function matcherFor(pattern: string): TopicMatcher {
  let matcher = cache.get(pattern);
  if (!matcher) {
    matcher = compileTopicPattern(pattern);
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
    cache.set(pattern, matcher);
  }
  return matcher;
}

/** True when the topic matches the pattern (AMQP rules); linear in pattern × topic words. */
export function topicMatches(pattern: string, topic: string): boolean {
  return matcherFor(pattern)(topic);
}

/** True when any of the patterns matches: a message matching several arrives once. */
export function anyTopicMatches(patterns: readonly string[], topic: string): boolean {
  for (const pattern of patterns) if (matcherFor(pattern)(topic)) return true;
  return false;
}
