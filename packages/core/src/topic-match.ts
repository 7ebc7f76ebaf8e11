/**
 * AMQP topic matching: `*` matches exactly one word, `#` zero or more words.
 * Both arguments must already be valid (see names.ts).
 */
export function topicMatches(pattern: string, topic: string): boolean {
  return matchWords(pattern.split('.'), 0, topic.split('.'), 0);
}

function matchWords(pattern: string[], p: number, topic: string[], t: number): boolean {
  while (p < pattern.length) {
    const word = pattern[p];
    if (word === '#') {
      // Collapse runs of `#`, then try every split point for the rest.
      while (pattern[p + 1] === '#') p++;
      if (p === pattern.length - 1) return true;
      for (let skip = t; skip <= topic.length; skip++) {
        if (matchWords(pattern, p + 1, topic, skip)) return true;
      }
      return false;
    }
    if (t >= topic.length) return false;
    if (word !== '*' && word !== topic[t]) return false;
    p++;
    t++;
  }
  return t === topic.length;
}

/** True when any of the patterns matches: a message matching several arrives once. */
export function anyTopicMatches(patterns: readonly string[], topic: string): boolean {
  return patterns.some((pattern) => topicMatches(pattern, topic));
}
