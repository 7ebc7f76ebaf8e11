export { capabilities, createS3Driver, driver, MAX_MESSAGE_BYTES } from './driver.js';
export { DRIVER_NAME, parseS3Url, type S3DriverOptions } from './options.js';
