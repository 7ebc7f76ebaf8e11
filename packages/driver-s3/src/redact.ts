// URLs are redacted with core's `redactUrl` (password up to the LAST `@`, so a secret holding an
// unencoded `/`, `?`, `#` or `@` is hidden too).
import { redactUrl } from '@mq-drivers/core';

/** What a secret is replaced with wherever the driver shows a URL or a value. */
export const REDACTED = '***';

/** Option and query names whose values are never shown (an unknown key might still hold a secret). */
export function isSecretName(name: string): boolean {
  return /secret|passw|token|credential|signature|auth/i.test(name);
}

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
