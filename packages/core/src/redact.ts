/**
 * A URL with its password replaced by `***`, for error messages and error fields: a password
 * must never reach a log. Works on text that is not a valid URL too, and errs on the side of
 * hiding: everything between the first `:` of the user part and the LAST `@` is replaced, so a
 * password holding an unescaped `@`, `/`, `?` or `#` is hidden as a whole. Without an `@` the text
 * is returned unchanged; so is a user name without a password (`amqp://guest@host`).
 *
 * `amqp://user:secret@host:5672/vhost` → `amqp://user:***@host:5672/vhost`;
 * `user:secret@host` (no scheme) → `user:***@host`. Non-strings are returned as they are.
 */
export function redactUrl(url: string): string {
  if (typeof url !== 'string') return url;
  const at = url.lastIndexOf('@');
  if (at === -1) return url;
  // After `scheme://` comes the user part; without `//` the whole text may be user part.
  const authority = /^\s*[A-Za-z][A-Za-z0-9+.-]*:[\\/]{2}/.exec(url);
  const colon = url.indexOf(':', authority ? authority[0].length : 0);
  if (colon === -1 || colon > at) return url;
  return `${url.slice(0, colon + 1)}***${url.slice(at)}`;
}
