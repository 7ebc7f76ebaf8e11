import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { idDiff, serviceSkipReason, testRabbitMqUrl } from '@mq-drivers/conformance/services';

export const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cliPath = join(packageDir, 'dist', 'cli.js');

/** Polls until `check` is true; fails naming what it waited for. Never a bare sleep. */
export async function until(check: () => boolean, what: string | (() => string), timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** A fresh folder with the given files (config, worker modules), removed by `cleanup()`. */
export function tempProject(files: Record<string, string>): { dir: string; path(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'mq-dispatch-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** JSON lines appended by test workers (`{"event": ..., ...}`); missing file = none yet. */
export function readEvents(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Names the missing and extra ids of `actual` against `expected` (duplicates: see `duplicates`). */
export function diffIds(expected: Iterable<string>, actual: Iterable<string>): { missing: string[]; extra: string[] } {
  const { missing, extra } = idDiff(expected, actual);
  return { missing, extra };
}

/** Ids that occur more than once. */
export function duplicates(ids: readonly string[]): string[] {
  return idDiff(ids, ids).duplicated.map(({ id }) => id);
}

/** A running `mq-dispatch` child process with its stdout parsed as JSON log lines. */
export interface Cli {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  stderr(): string;
  /** Resolves with the exit code (or 128+n when killed by a signal). */
  exited: Promise<number>;
  exitCode(): number | undefined;
  hasLog(pattern: RegExp): boolean;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Cli {
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: packageDir,
    env: { ...process.env, MQ_LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let buffer = '';
  let errText = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line, unparsed: true });
      }
      newline = buffer.indexOf('\n');
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    errText += chunk;
  });
  let code: number | undefined;
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (exitCode, signal) => {
      code = exitCode ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15);
      resolve(code);
    });
  });
  return {
    child,
    logs,
    stderr: () => errText,
    exited,
    exitCode: () => code,
    hasLog: (pattern) => logs.some((entry) => pattern.test(String(entry.msg))),
  };
}

/** Waits for the child to exit (killing it past the deadline) and returns its code. */
export async function exitOf(cli: Cli, timeoutMs = 20_000): Promise<number> {
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), timeoutMs);
  try {
    return await cli.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Why the RabbitMQ suites cannot run, or undefined. In CI (`CI=true`) an unreachable broker throws: a failure, never a skip. */
export function rabbitSkipReason(): Promise<string | undefined> {
  return serviceSkipReason('dispatcher tests', [{ name: 'RabbitMQ', url: testRabbitMqUrl }]);
}
