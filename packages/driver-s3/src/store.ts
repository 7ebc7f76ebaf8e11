import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandInput,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { AuthenticationError, ConnectionError, MqError, TopologyError, UnsupportedError } from '@mq-drivers/core';
import { DRIVER_NAME } from './options.js';

interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

function statusOf(error: unknown): number | undefined {
  return (error as SdkError | undefined)?.$metadata?.httpStatusCode;
}

function nameOf(error: unknown): string {
  const e = error as SdkError | undefined;
  return e?.name ?? e?.Code ?? 'Error';
}

export function isMissing(error: unknown): boolean {
  const name = nameOf(error);
  return name === 'NoSuchKey' || name === 'NotFound' || (statusOf(error) === 404 && name !== 'NoSuchBucket');
}

export function isPreconditionFailed(error: unknown): boolean {
  return statusOf(error) === 412 || nameOf(error) === 'PreconditionFailed';
}

/** AWS answers 409 ConditionalRequestConflict when two conditional writes of one key overlap: try again. */
function isConflict(error: unknown): boolean {
  return statusOf(error) === 409 || nameOf(error) === 'ConditionalRequestConflict';
}

export interface ListedObject {
  key: string;
  lastModified: Date | undefined;
}

export interface StoredObject {
  text: string;
  metadata: Record<string, string>;
}

/** Thin wrapper over the S3 client: bounded requests, S3 failures turned into core errors. */
export class Store {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    readonly endpointLabel: string,
    readonly timeoutMs: number,
    /** Called when a request got no answer in time (the driver drops its idle pooled connections). */
    private readonly onTimeout: () => void = () => undefined,
  ) {}

  /** Turns an SDK failure into a core error whose message names what was being done. */
  toError(error: unknown, action: string, timeoutMs = this.timeoutMs): MqError {
    if (MqError.isInstance(error)) return error;
    const status = statusOf(error);
    const name = nameOf(error);
    const detail = (error as SdkError | undefined)?.message;
    const why = `${name}${status ? ` (HTTP ${status})` : ''}${detail && detail !== 'UnknownError' ? `: ${detail}` : ''}`;
    if (name === 'NoSuchBucket') {
      return new TopologyError({
        driver: DRIVER_NAME,
        resource: this.bucket,
        message: `bucket "${this.bucket}" does not exist at ${this.endpointLabel} (create it, or pass createBucket: true)`,
        cause: error,
      });
    }
    if (
      status === 401 ||
      status === 403 ||
      ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'CredentialsProviderError', 'ExpiredToken'].includes(name)
    ) {
      return new AuthenticationError({
        driver: DRIVER_NAME,
        message: `${this.endpointLabel} refused the credentials while trying to ${action}${action.includes(`"${this.bucket}"`) ? '' : ` in bucket "${this.bucket}"`}: ${why}`,
        cause: error,
      });
    }
    if (name === 'AbortError' || name === 'TimeoutError') {
      this.onTimeout();
      return new ConnectionError({
        driver: DRIVER_NAME,
        host: this.endpointLabel,
        message: `no answer from ${this.endpointLabel} within ${timeoutMs} ms while trying to ${action}`,
        cause: error,
      });
    }
    return new ConnectionError({
      driver: DRIVER_NAME,
      host: this.endpointLabel,
      message: `could not ${action} at ${this.endpointLabel}: ${why}`,
      cause: error,
    });
  }

  private signal(timeoutMs = this.timeoutMs): { abortSignal: AbortSignal } {
    return { abortSignal: AbortSignal.timeout(timeoutMs) };
  }

  /**
   * Creates `key` only if it does not exist (`If-None-Match: *`). Resolves `created`, or `exists`
   * when another writer got there first. `retried` tells that the SDK sent the request more than once
   * (so an `exists` may be our own earlier attempt). `timeoutMs` bounds it (default: `requestTimeoutMs`).
   */
  async create(
    key: string,
    body: string,
    metadata?: Record<string, string>,
    timeoutMs = this.timeoutMs,
  ): Promise<{ created: boolean; retried: boolean }> {
    const started = Date.now();
    for (let conflict = 0; ; conflict++) {
      try {
        const out = await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: body,
            IfNoneMatch: '*',
            ContentType: key.endsWith('.jsonl') ? 'application/x-ndjson' : 'application/json',
            Metadata: metadata,
          }),
          this.signal(Math.max(1, timeoutMs - (Date.now() - started))),
        );
        return { created: true, retried: (out.$metadata.attempts ?? 1) > 1 };
      } catch (error) {
        if (isPreconditionFailed(error)) {
          return { created: false, retried: ((error as SdkError).$metadata?.attempts ?? 1) > 1 };
        }
        if (isConflict(error) && conflict < 5) {
          await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 50));
          continue;
        }
        throw this.toError(error, `create ${key}`, timeoutMs);
      }
    }
  }

  /** Writes `key` unconditionally. */
  async put(key: string, body: string): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/json' }),
        this.signal(),
      );
    } catch (error) {
      throw this.toError(error, `write ${key}`);
    }
  }

  /** Reads `key`; undefined when it does not exist. */
  async get(key: string): Promise<StoredObject | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), this.signal());
      const text = (await out.Body?.transformToString('utf8')) ?? '';
      return { text, metadata: out.Metadata ?? {} };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.toError(error, `read ${key}`);
    }
  }

  /** The metadata of `key` without its body (HEAD); undefined when it does not exist. */
  async head(key: string): Promise<Record<string, string> | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), this.signal());
      return out.Metadata ?? {};
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.toError(error, `read ${key}`);
    }
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    const object = await this.get(key);
    if (object === undefined) return undefined;
    try {
      return JSON.parse(object.text) as T;
    } catch (cause) {
      throw new TopologyError({ driver: DRIVER_NAME, resource: key, message: `object ${key} is not valid JSON`, cause });
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), this.signal());
    } catch (error) {
      if (isMissing(error)) return;
      throw this.toError(error, `delete ${key}`);
    }
  }

  /**
   * Lists keys under `prefix` in key order, after `startAfter`, up to `limit` keys. With `until`,
   * stops after the page (up to 1000 keys) holding the first key it accepts.
   */
  async list(
    prefix: string,
    options: { startAfter?: string; limit?: number; until?: (entry: ListedObject) => boolean } = {},
  ): Promise<ListedObject[]> {
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const found: ListedObject[] = [];
    let stop = false;
    await this.pages(
      prefix,
      (token) => ({
        StartAfter: token ? undefined : options.startAfter,
        MaxKeys: Math.min(1000, limit - found.length),
      }),
      (out) => {
        for (const entry of out.Contents ?? []) {
          if (entry.Key === undefined) continue;
          const listed = { key: entry.Key, lastModified: entry.LastModified };
          found.push(listed);
          if (options.until?.(listed)) stop = true;
        }
        return found.length < limit && !stop;
      },
    );
    return found;
  }

  /** The "folders" right under `prefix` (keys grouped at the next `/`), each ending with `/`. */
  async listDirs(prefix: string): Promise<string[]> {
    const found: string[] = [];
    await this.pages(
      prefix,
      () => ({ Delimiter: '/' }),
      (out) => {
        for (const entry of out.CommonPrefixes ?? []) if (entry.Prefix !== undefined) found.push(entry.Prefix);
        return true;
      },
    );
    return found;
  }

  /**
   * ListObjectsV2 under `prefix`, page after page, while there are more and `page` returns true.
   * `input` adds the page's own parameters (it gets the continuation token, none for the first).
   */
  private async pages(
    prefix: string,
    input: (token: string | undefined) => Partial<ListObjectsV2CommandInput>,
    page: (out: ListObjectsV2CommandOutput) => boolean,
  ): Promise<void> {
    let token: string | undefined;
    do {
      let out: ListObjectsV2CommandOutput;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token, ...input(token) }),
          this.signal(),
        );
      } catch (error) {
        throw this.toError(error, `list ${prefix}`);
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
      if (!page(out)) return;
    } while (token);
  }

  /** Checks the bucket exists; creates it when asked to. */
  async ensureBucket(create: boolean): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), this.signal());
      return;
    } catch (error) {
      const status = statusOf(error);
      if (status !== 404 && nameOf(error) !== 'NotFound' && nameOf(error) !== 'NoSuchBucket') {
        throw this.toError(await this.reasonOf(error), `open bucket "${this.bucket}"`);
      }
      if (!create) throw this.toError({ name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }, 'open bucket');
    }
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }), this.signal());
    } catch (error) {
      const name = nameOf(error);
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') {
        throw this.toError(error, `create bucket "${this.bucket}"`);
      }
    }
  }

  /**
   * A HEAD answer has no body, so a refused HeadBucket carries no S3 error code (the SDK calls it
   * `Unknown`). Ask again with a request whose answer has one (a LIST of at most one key), so the
   * error names the reason (`SignatureDoesNotMatch`, `InvalidAccessKeyId`, `AccessDenied`...).
   */
  private async reasonOf(headError: unknown): Promise<unknown> {
    const status = statusOf(headError);
    if (status === undefined || status < 400 || ((headError as SdkError).Code ?? 'Unknown') !== 'Unknown') return headError;
    try {
      await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1 }), this.signal());
      return headError;
    } catch (listError) {
      return statusOf(listError) !== undefined ? listError : headError;
    }
  }

  /**
   * Creates a probe key twice with `If-None-Match: *`: the second must be refused. Endpoints that
   * ignore the condition (most S3 emulators) cannot keep the log's order nor task groups apart.
   */
  async verifyConditionalWrites(probeKey: string): Promise<void> {
    const first = await this.create(probeKey, '{"probe":1}');
    const second = await this.create(probeKey, '{"probe":2}');
    await this.delete(probeKey).catch(() => undefined);
    if (!first.created || second.created) {
      throw new UnsupportedError({
        driver: DRIVER_NAME,
        feature: 'conditional-writes',
        message:
          `${this.endpointLabel} does not enforce conditional writes (a second PUT with If-None-Match: * on ${probeKey} ` +
          'was accepted). The s3 driver needs them: the log order, task groups (competing workers, leases) and ' +
          'durable cursors are built on create-if-absent. Use AWS S3, MinIO, Ceph RGW or another endpoint that answers 412.',
      });
    }
  }
}
