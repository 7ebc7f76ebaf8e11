// URLs are redacted with core's `redactUrl` (password up to the LAST `@`, so a secret holding an
// unencoded `/`, `?`, `#` or `@` is hidden too).
import { isSecretName, REDACTED, redactUrl } from '@mq-drivers/core';

export { isSecretName, REDACTED };

/** A value as an error message shows it: strings quoted, URLs with their password hidden. */
export function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(redactUrl(value));
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value, (key, inner) => (key !== '' && isSecretName(key) ? REDACTED : inner)) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
