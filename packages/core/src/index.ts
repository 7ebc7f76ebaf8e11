export { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF, validateBackoffOptions } from './backoff.js';
export { decodeBody, encodeBody, MAX_BODY_DEPTH } from './body.js';
export * from './contract.js';
export { Deque } from './deque.js';
export { type ConsumeSettings, consume, type EngineSubscription } from './engine.js';
export * from './errors/index.js';
export { newMessageId } from './message-id.js';
export {
  describeValue,
  validateHeaders,
  validateKind,
  validateMessageId,
  validateNonNegativeNumber,
  validatePattern,
  validatePatterns,
  validatePositiveInteger,
  validateSegment,
  validateSubscriptionName,
  validateTopic,
} from './names.js';
export {
  backoffOption,
  booleanOption,
  integerOption,
  isSecretName,
  type NumberOptionReader,
  nearestName,
  numberOption,
  REDACTED,
  readOptions,
  redactValue,
  rejectUnknownKeys,
} from './options.js';
export {
  errorText,
  type PreparedPublish,
  type PreparedShareConsume,
  type PreparedTaskConsume,
  prepareCloseOptions,
  prepareDeadLetterTarget,
  prepareRedriveOptions,
  prepareShareConsume,
  prepareSharePublish,
  prepareTaskConsume,
  prepareTaskPublish,
  refusedHeaderEntry,
} from './prepare.js';
export { redactUrl } from './redact.js';
export {
  assertDriver,
  type ConnectOptions,
  connect,
  type DriverDefinition,
  type DriverInfo,
  drivers,
  registerDriver,
} from './registry.js';
export { anyTopicMatches, compileTopicPattern, type TopicMatcher, topicMatches } from './topic-match.js';
export type { DeliverySink, Received, SubscriptionTransport } from './transport.js';
