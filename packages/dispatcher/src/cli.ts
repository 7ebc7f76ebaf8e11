#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { errorText } from '@mq-drivers/core';
import { configProblems, formatProblem, readConfigFile } from './config.js';
import { createLogger } from './logger.js';
import { ownDir, validateConfigFile } from './modules.js';
import { type Dispatcher, runWorkers } from './runner.js';

const USAGE = `Usage: mq-dispatch --config workers.yml [--validate]

Runs the worker classes listed in a YAML config on the broker at its \`url\`
(default: env MQ_URL, else memory:).

Options:
  -c, --config <file>  the config file (required)
      --validate       load the config, every module and class; list every problem
                       with its line; exit 1 if there is any, 0 if none
  -h, --help           show this help
  -v, --version        print the version

Signals: SIGTERM/SIGINT stop fetching, let in-flight messages finish within
shutdownGraceMs, call every worker's shutdown() and exit 0 (1 if anything was left
unfinished and handed back). A second signal exits at once with 128+signal.
Logs: JSON lines on stdout; level from MQ_LOG_LEVEL or LOG_LEVEL (default info).`;

/** Exit codes: 0 clean stop or valid config; 1 bad config, start failure or unclean stop; 2 bad usage; 128+n second signal. */
async function main(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parse>;
  const parse = (list: string[]) =>
    parseArgs({
      args: list,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        validate: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    });
  try {
    args = parse(argv);
  } catch (error) {
    process.stderr.write(`mq-dispatch: ${errorText(error)}\n\n${USAGE}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.values.version) {
    const manifest = JSON.parse(readFileSync(join(ownDir(), '..', 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`${manifest.version}\n`);
    return 0;
  }
  const configPath = args.values.config ?? args.positionals[0];
  if (!configPath || args.positionals.length > (args.values.config ? 0 : 1)) {
    process.stderr.write(`mq-dispatch: ${configPath ? 'unexpected arguments' : '--config <file> is required'}\n\n${USAGE}\n`);
    return 2;
  }

  if (args.values.validate) {
    const problems = await validateConfigFile(configPath);
    if (problems.length === 0) {
      const { config } = await readConfigFile(configPath);
      const count = config?.consumers.length ?? 0;
      process.stdout.write(`${configPath}: OK (${count} consumer${count === 1 ? '' : 's'}, url ${config?.url})\n`);
      return 0;
    }
    for (const problem of problems) process.stderr.write(`${formatProblem(problem)}\n`);
    process.stderr.write(`${configPath}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
    return 1;
  }

  const logger = createLogger();
  let dispatcher: Dispatcher | undefined;
  let signalled: NodeJS.Signals | undefined;
  let fatal = false;
  let finish: ((code: number) => void) | undefined;
  const exitCode = new Promise<number>((resolve) => {
    finish = resolve;
  });

  const stop = async (reason: string) => {
    if (!dispatcher) return;
    const result = await dispatcher.stop({ reason });
    finish?.(result.clean && !fatal ? 0 : 1);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      // Second signal: do not wait any longer. What is still unacknowledged goes back to the
      // broker (the connection closes with the process); nothing unfinished was acknowledged.
      const code = 128 + (signal === 'SIGINT' ? 2 : 15);
      logger.warn({ signal }, `second signal (${signal}): exiting now with ${code}; unfinished messages are not acknowledged`);
      const driverClose = dispatcher ? dispatcher.driver.close().catch(() => undefined) : Promise.resolve();
      void Promise.race([driverClose, new Promise((r) => setTimeout(r, 1_000))]).then(() => process.exit(code));
      return;
    }
    signalled = signal;
    logger.info({ signal }, `received ${signal}`);
    void stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, `uncaught exception: ${errorText(error)}`);
    fatal = true;
    if (dispatcher) void stop('uncaught exception');
    else finish?.(1);
  });
  // Drivers report what no call can (a lost connection being re-established) as process warnings.
  process.on('warning', (warning) => {
    logger.warn({ err: warning }, `warning: ${warning.message}`);
  });
  process.on('unhandledRejection', (error) => {
    logger.error({ err: error }, `unhandled rejection: ${errorText(error)}`);
  });

  try {
    dispatcher = await runWorkers(configPath, { logger });
  } catch (error) {
    const problems = configProblems(error);
    if (problems) {
      for (const problem of problems) process.stderr.write(`${formatProblem(problem)}\n`);
      logger.error({ problems }, `config has ${problems.length} problem(s)`);
    } else {
      logger.fatal({ err: error }, `could not start: ${errorText(error)}`);
    }
    return 1;
  }
  if (signalled) void stop(signalled);
  return exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Let stdout drain, then leave even if a worker left a timer or socket open.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (error: unknown) => {
    process.stderr.write(`mq-dispatch: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
