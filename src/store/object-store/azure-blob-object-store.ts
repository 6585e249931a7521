/**
 * ObjectStore on Azure Blob Storage: one block blob per key under a prefix of one
 * container. A put of up to one block (8 MiB by default) is one Put Blob; a bigger one
 * stages its bytes as uncommitted blocks (each checked by the service against its MD5)
 * and then makes them the blob with one Put Block List. Azure applies both atomically and
 * durably: readers see the old blob or the new one, and blocks of a put that failed or
 * was aborted are never visible (Azure discards uncommitted blocks after a week). File
 * bodies stream from the file, a few blocks in flight, so memory stays bounded.
 * Reads are ranged downloads, checked against the blob's size before any byte is returned.
 */
import { createHash, randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { BlobServiceClient } from "@azure/storage-blob";
import type {
  AnonymousCredential,
  BlockBlobClient,
  ContainerClient,
  StoragePipelineOptions,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
// A dependency of @azure/storage-blob, which takes this type but does not re-export it.
import type { TokenCredential } from "@azure/core-auth";
import { UserError } from "../../common/errors.js";
import { cloudError, errorCode, errorStatus } from "./cloud-error.js";
import {
  checkObjectKey,
  checkObjectPrefix,
  checkRange,
  isObjectKey,
  rangePastEndError,
} from "./object-key.js";
import type { ObjectBody, ObjectInfo, ObjectStore } from "./object-store.js";
import { ObjectNotFoundError } from "./object-store.js";
import { readRangedResponse } from "./ranged-body.js";
import { fileLoader, pieceCount, sendPieces } from "./send-pieces.js";

const MiB = 1024 * 1024;
/** Azure's limits: 50,000 committed blocks of at most 4000 MiB, 1024-character names. */
const MAX_BLOCKS = 50_000;
const MAX_BLOCK = 4000 * MiB;
const MAX_NAME = 1024;
/** Staged puts that lose their blocks to a concurrent put of the same key try this often. */
const MAX_COMMIT_ATTEMPTS = 4;

type AzureCredential = StorageSharedKeyCredential | TokenCredential | AnonymousCredential;

export type AzureBlobAuth =
  | { readonly connectionString: string }
  | {
      /** "https://<account>.blob.core.windows.net" (or an emulator's "http://127.0.0.1:10000/devstoreaccount1"). */
      readonly accountUrl: string;
      /** A StorageSharedKeyCredential, a TokenCredential (@azure/identity) or an AnonymousCredential (SAS URL). */
      readonly credential: AzureCredential;
    };

export type AzureBlobObjectStoreOptions = AzureBlobAuth & {
  readonly container: string;
  /** Name prefix inside the container ("" or segments like "site-a/store"); a slash is added. */
  readonly prefix?: string;
  /** Block size for staged uploads (default 8 MiB; raised for objects over 50,000 blocks). */
  readonly blockSize?: number;
  /** Blocks in flight per put (default 4). */
  readonly blockConcurrency?: number;
  /** Blobs per listing page (default 5000, Azure's maximum). */
  readonly pageSize?: number;
  /** Attempts per request, retries included (default 3). */
  readonly maxTries?: number;
};

export class AzureBlobObjectStore implements ObjectStore {
  readonly description: string;
  private readonly container: ContainerClient;
  private readonly prefix: string;
  private readonly blockSize: number;
  private readonly blockConcurrency: number;
  private readonly pageSize: number;

  constructor(options: AzureBlobObjectStoreOptions) {
    this.prefix = normalizePrefix(options.prefix ?? "");
    this.blockSize = Math.min(MAX_BLOCK, Math.max(MiB, options.blockSize ?? 8 * MiB));
    this.blockConcurrency = Math.max(1, options.blockConcurrency ?? 4);
    this.pageSize = Math.min(5000, Math.max(1, options.pageSize ?? 5000));
    const pipeline: StoragePipelineOptions = { retryOptions: { maxTries: options.maxTries ?? 3 } };
    let service: BlobServiceClient;
    if ("connectionString" in options) {
      try {
        service = BlobServiceClient.fromConnectionString(options.connectionString, pipeline);
      } catch {
        // The SDK's message may quote the string, key included: say what is wrong without it.
        throw new UserError(
          "Invalid Azure storage connection string: expected AccountName=...;AccountKey=...;" +
            "(or BlobEndpoint=...;SharedAccessSignature=...)",
        );
      }
    } else {
      service = new BlobServiceClient(options.accountUrl, options.credential, pipeline);
    }
    this.container = service.getContainerClient(options.container);
    this.description = `azure://${this.container.accountName}/${options.container}/${this.prefix}`;
  }

  async put(key: string, body: ObjectBody, signal?: AbortSignal): Promise<void> {
    const blob = this.blob(key);
    signal?.throwIfAborted();
    try {
      if (Buffer.isBuffer(body)) {
        await this.stageAndCommit(
          blob,
          body.length,
          (offset, length) => Promise.resolve(body.subarray(offset, offset + length)),
          signal,
        );
        return;
      }
      const handle = await open(body.file, "r").catch((err: unknown) => {
        throw new UserError(`Cannot put ${body.file}: ${(err as Error).message}`, 400, { cause: err });
      });
      try {
        const { size } = await handle.stat();
        await this.stageAndCommit(blob, size, fileLoader(handle, body.file), signal);
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw this.mapError(err, "put", key, signal);
    }
  }

  async read(key: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    const blob = this.blob(key);
    checkRange(key, offset, length);
    signal?.throwIfAborted();
    try {
      if (length === 0) {
        const info = await this.head(key, signal);
        if (info === undefined) throw new ObjectNotFoundError(key, this.description);
        if (offset > info.size) throw rangePastEndError(key, this.description, offset, length, info.size);
        return Buffer.alloc(0);
      }
      const res = await blob.download(offset, length, {
        ...(signal !== undefined ? { abortSignal: signal } : {}),
        maxRetryRequests: 2,
      });
      return await readRangedResponse(
        { body: res.readableStreamBody, contentRange: res.contentRange, contentLength: res.contentLength },
        { key, description: this.description, request: "Download" },
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
    const blob = this.blob(key);
    signal?.throwIfAborted();
    try {
      const props = await blob.getProperties(signal !== undefined ? { abortSignal: signal } : {});
      return { key, size: props.contentLength ?? 0 };
    } catch (err) {
      if (errorStatus(err) === 404 && errorCode(err) !== "ContainerNotFound") return undefined;
      throw this.mapError(err, "head", key, signal);
    }
  }

  async list(prefix: string, signal?: AbortSignal): Promise<ObjectInfo[]> {
    checkObjectPrefix(prefix);
    signal?.throwIfAborted();
    const out: ObjectInfo[] = [];
    try {
      const pages = this.container
        .listBlobsFlat({
          prefix: this.prefix + prefix,
          ...(signal !== undefined ? { abortSignal: signal } : {}),
        })
        .byPage({ maxPageSize: this.pageSize });
      for await (const page of pages) {
        for (const item of page.segment.blobItems) {
          const key = item.name.slice(this.prefix.length);
          // Blobs someone else put under our prefix with names no key can have are not ours.
          if (isObjectKey(key)) out.push({ key, size: item.properties.contentLength ?? 0 });
        }
      }
    } catch (err) {
      throw this.mapError(err, "list", prefix, signal);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    const blob = this.blob(key);
    signal?.throwIfAborted();
    try {
      await blob.deleteIfExists({
        deleteSnapshots: "include",
        ...(signal !== undefined ? { abortSignal: signal } : {}),
      });
    } catch (err) {
      throw this.mapError(err, "delete", key, signal);
    }
  }

  close(): Promise<void> {
    // The SDK holds no connection of its own to release (sockets idle out of Node's agent).
    return Promise.resolve();
  }

  /** The block blob client of a key; rejects bad keys before any I/O. */
  private blob(key: string): BlockBlobClient {
    checkObjectKey(key);
    const name = this.prefix + key;
    if (name.length > MAX_NAME) {
      throw new UserError(
        `Object key too long for ${this.description}: ${name.length} characters with the prefix, Azure allows ${MAX_NAME}`,
      );
    }
    return this.container.getBlockBlobClient(name);
  }

  /**
   * Writes `size` bytes as the blob. Up to one block's worth goes in one Put Blob; more
   * is staged as blocks and committed with one Put Block List. Both are atomic. A commit
   * discards every other uncommitted block of the blob, so of two concurrent staged puts
   * of one key, the later commit finds its blocks gone (InvalidBlockList): it stages again.
   */
  private async stageAndCommit(
    blob: BlockBlobClient,
    size: number,
    load: (offset: number, length: number) => Promise<Buffer>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const withSignal = signal !== undefined ? { abortSignal: signal } : {};
    if (size <= this.blockSize) {
      await blob.upload(await load(0, size), size, withSignal);
      return;
    }
    const blockSize = Math.max(this.blockSize, Math.ceil(size / MAX_BLOCKS / MiB) * MiB);
    for (let attempt = 1; ; attempt++) {
      // A fresh id prefix per attempt, so no put ever commits another's blocks; Azure wants
      // every block id of a blob to have the same length.
      const nonce = randomBytes(12).toString("hex");
      const ids = Array.from({ length: pieceCount(size, blockSize) }, (_, i) =>
        Buffer.from(`${nonce}-${String(i).padStart(6, "0")}`).toString("base64"),
      );
      await sendPieces({
        size,
        pieceSize: blockSize,
        concurrency: this.blockConcurrency,
        signal,
        load,
        send: async (piece, blockSignal) => {
          await blob.stageBlock(ids[piece.index] ?? "", piece.data, piece.data.length, {
            abortSignal: blockSignal,
            transactionalContentMD5: createHash("md5").update(piece.data).digest(),
          });
        },
      });
      signal?.throwIfAborted();
      try {
        // The commit point: the staged blocks become the blob, whole, when this succeeds.
        await blob.commitBlockList(ids, withSignal);
        return;
      } catch (err) {
        if (errorCode(err) !== "InvalidBlockList" || attempt >= MAX_COMMIT_ATTEMPTS) throw err;
        await sleep(Math.random() * 50 * attempt, undefined, signal !== undefined ? { signal } : {});
      }
    }
  }

  private mapError(err: unknown, op: string, key: string, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return signal.reason;
    if (err instanceof UserError || err instanceof ObjectNotFoundError) return err;
    const code = errorCode(err);
    if (code === "ContainerNotFound") {
      return new UserError(
        `Container ${this.container.containerName} does not exist (${this.description}): create it, or fix the store spec`,
        404,
      );
    }
    if (op === "read" && (code === "BlobNotFound" || errorStatus(err) === 404)) {
      return new ObjectNotFoundError(key, this.description);
    }
    return cloudError(
      err,
      `Azure ${op} of ${key} in ${this.description}`,
      "check AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY) and the account's access rules",
    );
  }
}

function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, "");
  if (trimmed === "") return "";
  checkObjectPrefix(`${trimmed}/`);
  return `${trimmed}/`;
}
