/** What a secret is replaced with wherever the driver shows a URL or a value. */
export const REDACTED = '***';

/**
 * `url` with the password of its user info replaced by `***` (`s3://KEY:***@bucket/p`), also when
 * the URL does not parse: everything between `://` and the last `@` before the query is taken as
 * user info, as a URL parser would (a secret holding an unencoded `/` is hidden too).
 */
export function redactUrl(url: string): string {
  const scheme = url.indexOf('://');
  if (scheme < 0) return url;
  const authorityStart = scheme + 3;
  const queryStart = url.slice(authorityStart).search(/[?#]/);
  const authorityEnd = queryStart < 0 ? url.length : authorityStart + queryStart;
  const at = url.lastIndexOf('@', authorityEnd - 1);
  if (at < authorityStart) return url;
  const colon = url.indexOf(':', authorityStart);
  if (colon < 0 || colon > at) return url;
  return `${url.slice(0, colon + 1)}${REDACTED}${url.slice(at)}`;
}

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
