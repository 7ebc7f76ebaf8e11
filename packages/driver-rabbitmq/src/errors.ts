import { AuthenticationError, ConnectionError, MqError, TopologyError } from '@mq-drivers/core';
import { DRIVER_NAME } from './options.js';

/** AMQP reply code of an amqplib error (channel or connection close), if any. */
export function replyCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function text(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The server's own words from an amqplib close error: `PRECONDITION_FAILED - inequivalent arg ...`. */
export function serverText(error: unknown): string {
  const message = text(error);
  const quoted = /with message "([^"]*)"/.exec(message);
  return quoted?.[1] ?? message;
}

/** Maps a failed connection attempt to `AuthenticationError` or `ConnectionError` naming `host`. */
export function connectError(error: unknown, host: string): MqError {
  if (MqError.isInstance(error)) return error;
  const message = text(error);
  if (/ACCESS[-_]REFUSED|\b403\b|PLAIN login refused|authentication failure/i.test(message)) {
    return new AuthenticationError({
      driver: DRIVER_NAME,
      message: `broker at ${host} refused the credentials: ${serverText(error)}`,
      cause: error,
    });
  }
  if (/NOT[-_]ALLOWED|\b530\b/.test(message) && /vhost/i.test(message)) {
    return new AuthenticationError({
      driver: DRIVER_NAME,
      message: `broker at ${host} refused access to the virtual host: ${serverText(error)}`,
      cause: error,
    });
  }
  const code = (error as { code?: unknown } | null)?.code;
  const reason = typeof code === 'string' && !message.includes(code) ? `${code} ${message}` : message;
  return new ConnectionError({ driver: DRIVER_NAME, host, message: `cannot connect to ${host}: ${reason}`, cause: error });
}

/** Maps a failed declaration (406 PRECONDITION_FAILED, 405 RESOURCE_LOCKED, 403 ...) to `TopologyError`. */
export function topologyError(error: unknown, kind: 'exchange' | 'queue' | 'binding', resource: string): MqError {
  if (MqError.isInstance(error)) return error;
  const code = replyCode(error);
  let why = serverText(error);
  if (code === 406) why = `it exists with different settings (${why}); delete it or use the same driver options`;
  else if (code === 405) why = `it is locked by another connection (${why})`;
  else if (code === 403) why = `access refused (${why})`;
  else if (code === undefined) {
    return new ConnectionError({
      driver: DRIVER_NAME,
      host: 'broker',
      message: `cannot declare ${kind} "${resource}": ${why}`,
      cause: error,
    });
  }
  return new TopologyError({
    driver: DRIVER_NAME,
    resource,
    message: `cannot declare ${kind} "${resource}": ${why}`,
    cause: error,
  });
}
