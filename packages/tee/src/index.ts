export { TeePublishError, type TeePublishFailureReason, type TeeTargetFailure } from './errors/tee-publish-error.js';
export { DRIVER_NAME } from './target.js';
export { tee } from './tee.js';
export type * from './types.js';
