export {
  TeePublishError,
  type TeePublishFailureReason,
  type TeeTargetFailure,
} from './errors/tee-publish-error.js';
export {
  DRIVER_NAME,
  type MirrorErrorEvent,
  type TeeCloseReport,
  type TeeMode,
  type TeeOptions,
  type TeeTargets,
  type UndeliveredCopy,
} from './options.js';
export { type TeeDriver, type TeeFlushResult, type TeeStats, type TeeTargetStats, tee } from './tee.js';
