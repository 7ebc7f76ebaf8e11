import { randomBytes } from 'node:crypto';
import { connect as coreConnect, type Driver, InvalidArgumentError, MqError } from '@mq-drivers/core';
import { ConformanceError, check, show } from '../assert.js';
import type { CaseDefinition } from '../case.js';
import type { CaseContext } from '../harness.js';
import { findSecret } from '../secrets.js';
import { withDeadline } from '../wait.js';

interface SecretUrl {
  label: string;
  url: string;
  /** A malformed URL: it MUST be refused with InvalidArgumentError whose message names this text. */
  malformed?: string;
}

/**
 * URLs derived from the harness URL, each with `secret` as its password: the right URL with a
 * wrong secret, and malformed ones (a host with a space, no host, a port out of range, an
 * unknown option).
 */
export function secretUrls(url: string, secret: string): SecretUrl[] {
  const match = /^([a-z][a-z0-9+.-]*:)(?:\/\/(?:([^@/?#]*)@)?([^/?#]*))?(.*)$/i.exec(url);
  if (!match) throw new ConformanceError(`option url ${show(url)} is not a URL`);
  const [, scheme, userinfo, host = '', rest = ''] = match;
  const user = userinfo?.split(':')[0] || 'mq-user';
  const base = `${scheme}//${user}:${secret}@`;
  const hostname = host.replace(/:\d*$/, '') || 'localhost';
  const separator = rest.includes('?') ? '&' : '?';
  return [
    { label: 'a wrong secret', url: `${base}${host}${rest}` },
    { label: 'a host with a space', url: `${base}bad host${rest}`, malformed: 'bad host' },
    { label: 'no host', url: `${base}${rest}` },
    { label: 'port 99999', url: `${base}${hostname}:99999${rest}` },
    { label: 'an unknown option', url: `${base}${host}${rest}${separator}mqNoSuchOption=1` },
  ];
}

/** Settles `promise` within `timeoutMs`: its error, `undefined` when it resolved, or `'pending'`. */
async function errorOf(promise: Promise<unknown>, timeoutMs: number): Promise<unknown> {
  try {
    await withDeadline(promise, timeoutMs, 'settle');
    return undefined;
  } catch (error) {
    return error instanceof ConformanceError ? 'pending' : error;
  }
}

/** Every error a user can meet with this URL: from connect(), the first publish and close(). */
async function errorsOf(ctx: CaseContext, url: string): Promise<{ stage: string; error: unknown }[]> {
  const connect = ctx.options.connect ?? ((value: string) => coreConnect(value));
  let driver: Driver;
  try {
    driver = await withDeadline(
      Promise.resolve().then(() => connect(url)),
      ctx.timeoutMs,
      'connect(url)',
    );
  } catch (error) {
    if (error instanceof ConformanceError) throw error;
    return [{ stage: 'connect()', error }];
  }
  const found: { stage: string; error: unknown }[] = [];
  // A driver that connects lazily meets the broker (and the wrong secret) on first use.
  const publish = driver.taskPublish({ probe: true }, { segment: ctx.segment });
  publish.catch(() => undefined);
  const published = await errorOf(publish, ctx.timeoutMs);
  const closed = await errorOf(
    Promise.resolve().then(() => driver.close()),
    ctx.timeoutMs,
  );
  // A publish still waiting for the broker is settled by close(); its error counts too.
  const late = published === 'pending' ? await errorOf(publish, ctx.timeoutMs) : published;
  if (late !== undefined && late !== 'pending') found.push({ stage: 'taskPublish()', error: late });
  if (closed !== undefined && closed !== 'pending') found.push({ stage: 'close()', error: closed });
  return found;
}

export const urlSecretCases: CaseDefinition[] = [
  {
    id: 'bad-input.no-secret-in-errors',
    group: 'bad-input',
    name: 'no error carries the secret of a URL (malformed URLs, a wrong secret): not in any field, cause, inspect or JSON; malformed URLs are refused with InvalidArgumentError naming the bad part',
    skip: (_, options) => (options.url === undefined ? 'the harness gives no `url`' : undefined),
    budget: 12,
    async run(ctx) {
      const secret = `Sx${randomBytes(8).toString('hex')}q`;
      const problems: string[] = [];
      let errors = 0;
      for (const variant of secretUrls(ctx.options.url!, secret)) {
        const seen = await errorsOf(ctx, variant.url);
        errors += seen.length;
        for (const { stage, error } of seen) {
          const where = findSecret(error, secret);
          if (where !== undefined) problems.push(`${variant.label}: the error of ${stage} shows the secret in ${where}`);
          if (!MqError.isInstance(error))
            problems.push(`${variant.label}: ${stage} rejected with ${show(error)}, not an MqError`);
        }
        if (variant.malformed !== undefined) {
          const refusal = seen.find(({ error }) => InvalidArgumentError.isInstance(error))?.error as
            | InvalidArgumentError
            | undefined;
          if (refusal === undefined)
            problems.push(
              `${variant.label}: not refused with InvalidArgumentError (got ${seen.length === 0 ? 'no error' : seen.map(({ stage, error }) => `${stage}: ${show(error)}`).join('; ')})`,
            );
          else if (!refusal.message.includes(variant.malformed)) {
            problems.push(`${variant.label}: the message ${show(refusal.message)} does not name ${show(variant.malformed)}`);
          }
        }
      }
      check(errors > 0, 'none of the broken URLs produced an error');
      check(problems.length === 0, () => `${problems.length} problem(s): ${problems.join(' | ')}`);
    },
  },
];
