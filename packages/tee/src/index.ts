export {
  TeePublishError,
  type TeePublishFailureReason,
  type TeeTargetFailure,
} from './errors/tee-publish-error.js';
export type { TeeMode, TeeOptions } from './options.js';
export type { MirrorErrorEvent, UndeliveredCopy } from './outbox.js';
export { DRIVER_NAME, type TeeTargets } from './target.js';
export {
  type TeeCloseReport,
  type TeeDriver,
  type TeeFlushResult,
  type TeeStats,
  type TeeTargetStats,
  tee,
} from './tee.js';
