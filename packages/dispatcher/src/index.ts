export {
  type ConfigProblem,
  type ConsumerConfig,
  type ConsumerInput,
  checkConfig,
  configProblems,
  DEFAULT_DISPATCH_PREFETCH,
  DEFAULT_INSTANCES,
  DEFAULT_RESTART,
  DEFAULT_SHUTDOWN_GRACE_MS,
  type DispatcherConfig,
  type DispatcherConfigInput,
  formatProblem,
  loadConfig,
  type RestartOptions,
  readConfigFile,
  type ShareSource,
  type TaskSource,
} from './config.js';
export { createLogger, logLevelFromEnv } from './logger.js';
export { DispatcherMetrics, type Health } from './metrics.js';
export { validateConfigFile } from './modules.js';
export { type Dispatcher, type RunOptions, runWorkers, type StopOptions, type StopResult } from './runner.js';
export type {
  Logger,
  ReadyContext,
  ReadyHook,
  StartupContext,
  StartupHook,
  Worker,
  WorkerClass,
  WorkerContext,
} from './types.js';
