/**
 * ObjectStore on the S3 API (AWS S3 and compatible servers), one object per key under a
 * prefix of one bucket. S3 makes every PUT and every completed multipart upload atomic and
 * durable when it answers 200, so a put is exactly one of those: a buffer (or a file up to
 * `multipartThreshold`) is one PutObject; a bigger file is a multipart upload streamed from
 * the file, a few parts in flight, aborted on failure or abort so no parts linger. Every
 * request carries a CRC32 checksum S3 verifies. Reads are ranged GETs; the range is
 * checked against the object's size before any byte is returned.
 */
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import type { CompletedPart } from "@aws-sdk/client-s3";
import { UserError } from "../../common/errors.js";
import { logger } from "../../common/log.js";
import type { Logger } from "../../common/log.js";
import { fileLoader, pieceCount, sendPieces } from "./send-pieces.js";
import {
  checkObjectKey,
  checkObjectPrefix,
  checkRange,
  isObjectKey,
  rangePastEndError,
} from "./object-key.js";
import type { ObjectBody, ObjectInfo, ObjectStore } from "./object-store.js";
import { ObjectNotFoundError } from "./object-store.js";
import { cloudError, errorCode, errorStatus } from "./cloud-error.js";
import { readRangedResponse } from "./ranged-body.js";

const MiB = 1024 * 1024;
/** S3's limits: 10,000 parts, 5 MiB minimum part (but the last), 1024-byte keys. */
const MAX_PARTS = 10_000;
const MIN_PART = 5 * MiB;
const MAX_KEY_BYTES = 1024;

export interface S3ObjectStoreOptions {
  readonly bucket: string;
  /** Key prefix inside the bucket ("" or segments like "site-a/store"); a slash is added. */
  readonly prefix?: string;
  readonly region: string;
  /** For S3-compatible servers (MinIO, Ceph, ...): "https://host:port". */
  readonly endpoint?: string;
  readonly forcePathStyle?: boolean;
  /** Default: the AWS SDK's chain (environment, profile, SSO, instance or task role). */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  /** Files above this size go up as multipart uploads (default 16 MiB). */
  readonly multipartThreshold?: number;
  /** Multipart part size (default 8 MiB; raised for files over 10,000 parts). */
  readonly partSize?: number;
  /** Parts in flight per upload (default 4). */
  readonly partConcurrency?: number;
  /** Keys per ListObjectsV2 page (default 1000, S3's maximum). */
  readonly pageSize?: number;
  /** Attempts per request, retries included (default 3). */
  readonly maxAttempts?: number;
  /** Where warnings go (default: stderr, as every role logs). */
  readonly log?: Logger;
}

export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  /** The SDK client, for middleware (metrics, tests); the store owns it and destroys it on close. */
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly pageSize: number;
  private readonly log: Logger;

  constructor(options: S3ObjectStoreOptions) {
    this.log = options.log ?? logger("object-store");
    this.bucket = options.bucket;
    this.prefix = normalizePrefix(options.prefix ?? "");
    this.partSize = Math.max(MIN_PART, options.partSize ?? 8 * MiB);
    this.multipartThreshold = Math.max(options.multipartThreshold ?? 16 * MiB, MIN_PART);
    this.partConcurrency = Math.max(1, options.partConcurrency ?? 4);
    this.pageSize = Math.min(1000, Math.max(1, options.pageSize ?? 1000));
    const where = options.endpoint === undefined ? "" : ` at ${endpointForDescription(options.endpoint)}`;
    this.description = `s3://${options.bucket}/${this.prefix}${where}`;
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
      ...(options.credentials !== undefined ? { credentials: { ...options.credentials } } : {}),
      maxAttempts: options.maxAttempts ?? 3,
    });
  }

  async put(key: string, body: ObjectBody, signal?: AbortSignal): Promise<void> {
    const name = this.name(key);
    signal?.throwIfAborted();
    try {
      if (Buffer.isBuffer(body)) {
        await this.putOne(name, body, signal);
        return;
      }
      const handle = await open(body.file, "r").catch((err: unknown) => {
        throw new UserError(`Cannot put ${body.file}: ${(err as Error).message}`, 400, { cause: err });
      });
      try {
        const { size } = await handle.stat();
        signal?.throwIfAborted();
        if (size <= this.multipartThreshold) {
          await this.putOne(name, await handle.readFile(), signal);
        } else {
          await this.putMultipart(name, body.file, handle, size, signal);
        }
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw this.mapError(err, "put", key, signal);
    }
  }

  async read(key: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    const name = this.name(key);
    checkRange(key, offset, length);
    signal?.throwIfAborted();
    try {
      if (length === 0) {
        const info = await this.head(key, signal);
        if (info === undefined) throw new ObjectNotFoundError(key, this.description);
        if (offset > info.size) throw rangePastEndError(key, this.description, offset, length, info.size);
        return Buffer.alloc(0);
      }
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: name,
          Range: `bytes=${offset}-${offset + length - 1}`,
        }),
        sdkOptions(signal),
      );
      return await readRangedResponse(
        { body: res.Body, contentRange: res.ContentRange, contentLength: res.ContentLength },
        { key, description: this.description, request: "GetObject" },
        offset,
        length,
        signal,
      );
    } catch (err) {
      if (errorCode(err) === "InvalidRange" || errorStatus(err) === 416) {
        throw rangePastEndError(key, this.description, offset, length, undefined);
      }
      throw this.mapError(err, "read", key, signal);
    }
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    const name = this.name(key);
    signal?.throwIfAborted();
    try {
      const res = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: name }),
        sdkOptions(signal),
      );
      return { key, size: res.ContentLength ?? 0 };
    } catch (err) {
      if (errorStatus(err) === 404 && errorCode(err) !== "NoSuchBucket") return undefined;
      throw this.mapError(err, "head", key, signal);
    }
  }

  async list(prefix: string, signal?: AbortSignal): Promise<ObjectInfo[]> {
    checkObjectPrefix(prefix);
    signal?.throwIfAborted();
    const out: ObjectInfo[] = [];
    try {
      let token: string | undefined;
      do {
        const res = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            MaxKeys: this.pageSize,
            ...(token !== undefined ? { ContinuationToken: token } : {}),
          }),
          sdkOptions(signal),
        );
        for (const o of res.Contents ?? []) {
          const key = o.Key?.slice(this.prefix.length);
          // Objects someone else put under our prefix with names no key can have are not ours.
          if (key !== undefined && isObjectKey(key)) out.push({ key, size: o.Size ?? 0 });
        }
        token = res.IsTruncated === true ? res.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (err) {
      throw this.mapError(err, "list", prefix, signal);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    const name = this.name(key);
    signal?.throwIfAborted();
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: name }), sdkOptions(signal));
    } catch (err) {
      if (errorCode(err) === "NoSuchKey") return;
      throw this.mapError(err, "delete", key, signal);
    }
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }

  /** The full object name of a key; rejects bad keys before any I/O. */
  private name(key: string): string {
    checkObjectKey(key);
    const name = this.prefix + key;
    if (Buffer.byteLength(name) > MAX_KEY_BYTES) {
      throw new UserError(
        `Object key too long for ${this.description}: ${name.length} bytes with the prefix, S3 allows ${MAX_KEY_BYTES}`,
      );
    }
    return name;
  }

  private async putOne(name: string, data: Buffer, signal: AbortSignal | undefined): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: name,
        Body: data,
        ContentLength: data.length,
        ChecksumAlgorithm: "CRC32",
      }),
      sdkOptions(signal),
    );
  }

  private async putMultipart(
    name: string,
    path: string,
    handle: FileHandle,
    size: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const partSize = Math.max(this.partSize, Math.ceil(size / MAX_PARTS / MiB) * MiB);
    const created = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: name, ChecksumAlgorithm: "CRC32" }),
      sdkOptions(signal),
    );
    const uploadId = created.UploadId;
    if (uploadId === undefined)
      throw new Error(`CreateMultipartUpload in ${this.description} returned no UploadId`);
    const parts: CompletedPart[] = new Array<CompletedPart>(pieceCount(size, partSize));
    try {
      await sendPieces({
        size,
        pieceSize: partSize,
        concurrency: this.partConcurrency,
        signal,
        load: fileLoader(handle, path),
        send: async (piece, partSignal) => {
          const res = await this.client.send(
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: name,
              UploadId: uploadId,
              PartNumber: piece.index + 1,
              Body: piece.data,
              ContentLength: piece.data.length,
              ChecksumAlgorithm: "CRC32",
            }),
            { abortSignal: partSignal },
          );
          parts[piece.index] = {
            PartNumber: piece.index + 1,
            ...(res.ETag !== undefined ? { ETag: res.ETag } : {}),
            ...(res.ChecksumCRC32 !== undefined ? { ChecksumCRC32: res.ChecksumCRC32 } : {}),
          };
        },
      });
      signal?.throwIfAborted();
      // The commit point: S3 makes the object visible, whole, when this succeeds.
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: name,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
        sdkOptions(signal),
      );
    } catch (err) {
      // Best effort, and not under the caller's signal (it may be what fired): parts left
      // behind cost storage until a bucket lifecycle rule removes them.
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: name, UploadId: uploadId }))
        .catch((abortErr: unknown) => {
          this.log(
            `Could not abort multipart upload ${uploadId} of ${name} in ${this.description} (${errorCode(abortErr) ?? "error"}): ` +
              "its parts stay until a lifecycle rule for incomplete multipart uploads removes them",
          );
        });
      throw err;
    }
  }

  private mapError(err: unknown, op: string, key: string, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return signal.reason;
    if (err instanceof UserError || err instanceof ObjectNotFoundError) return err;
    if (
      op === "read" &&
      (errorCode(err) === "NoSuchKey" || (errorStatus(err) === 404 && errorCode(err) !== "NoSuchBucket"))
    ) {
      return new ObjectNotFoundError(key, this.description);
    }
    if (errorCode(err) === "NoSuchBucket") {
      return new UserError(
        `Bucket ${this.bucket} does not exist (${this.description}): create it, or fix the store spec`,
        404,
      );
    }
    return cloudError(
      err,
      `S3 ${op} of ${key} in ${this.description}`,
      "check the AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance role) and the bucket policy",
    );
  }
}

function sdkOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}

function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, "");
  if (trimmed === "") return "";
  checkObjectPrefix(`${trimmed}/`);
  return `${trimmed}/`;
}

/** The endpoint's scheme, host and port: never a user name or password written into the URL. */
export function endpointForDescription(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    return `${url.protocol}//${url.host}`;
  } catch {
    return "(an endpoint that is not a URL)";
  }
}
