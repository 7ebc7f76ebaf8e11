import { type Logger, levels, pino } from 'pino';

/** The level from env `MQ_LOG_LEVEL`, else `LOG_LEVEL`, else `info`; an unknown level falls back to `info`. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): { level: string; invalid?: string } {
  const wanted = (env.MQ_LOG_LEVEL || env.LOG_LEVEL || 'info').trim().toLowerCase();
  if (wanted === 'silent' || wanted in levels.values) return { level: wanted };
  return { level: 'info', invalid: wanted };
}

/** A pino logger writing JSON lines to stdout, named `mq-dispatch`. */
export function createLogger(env: NodeJS.ProcessEnv = process.env): Logger {
  const { level, invalid } = logLevelFromEnv(env);
  const logger = pino({ name: 'mq-dispatch', level });
  if (invalid) logger.warn({ level: invalid }, `unknown log level "${invalid}"; using info`);
  return logger;
}

/** The URL with its password replaced, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}
