/**
 * A KeyWrapper whose master key is 32 random bytes in a local file (default
 * `<dataDir>/keys/master.key`, mode 0600). Whoever can read that file can read every
 * project's data, so it is refused when group or others may access it, and it should be
 * backed up apart from the data: without it the data cannot be read.
 *
 * Wrapped key: version byte 1 ‖ 12-byte random nonce ‖ AES-256-GCM ciphertext ‖ 16-byte
 * tag, with the encoded WrapContext as aad. Random nonces are fine here: a master key
 * wraps a few keys per project, far below the 2^32 limit.
 *
 * The wrapper id, "local:" and 16 hex digits of a SHA-256 of the master key under a fixed
 * label, tells which master key wrapped a data key without revealing it (a hash of 256
 * random bits), so loading the wrong master key file is reported as such.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  randomBytes,
  type KeyObject,
} from "node:crypto";
import { link, mkdir, open, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CorruptionError, UserError } from "../../common/errors.js";
import { fsyncDir } from "../../common/durable-file.js";
import { encodeWrapContext, type KeyWrapper, type WrapContext } from "./key-wrapper.js";

export const MASTER_KEY_BYTES = 32;
const WRAP_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const CIPHER = "aes-256-gcm";

export interface LocalMasterKeyOptions {
  /** Create a new master key when the file is missing (default true). */
  readonly create?: boolean;
}

export class LocalMasterKeyWrapper implements KeyWrapper {
  readonly id: string;
  readonly path: string;
  readonly #key: KeyObject;

  private constructor(path: string, key: Buffer) {
    this.path = path;
    this.#key = createSecretKey(key);
    const digest = createHash("sha256").update("lifeboat master key id\0").update(key).digest("hex");
    this.id = `local:${digest.slice(0, 16)}`;
  }

  static defaultPath(dataDir: string): string {
    return join(dataDir, "keys", "master.key");
  }

  /** Loads the master key at `path`, creating it first when it is missing (unless told not to). */
  static async open(path: string, options: LocalMasterKeyOptions = {}): Promise<LocalMasterKeyWrapper> {
    let key = await readMasterKey(path);
    if (key === undefined) {
      if (options.create === false) {
        throw new UserError(
          `Master key file ${path} does not exist: restore it from your backup, or point lifeboat at the right file`,
          404,
        );
      }
      await createMasterKey(path);
      key = await readMasterKey(path);
      if (key === undefined) throw new Error(`Master key file ${path} vanished right after it was created`);
    }
    try {
      return new LocalMasterKeyWrapper(path, key);
    } finally {
      key.fill(0);
    }
  }

  wrap(key: Buffer, context: WrapContext, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted();
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv(CIPHER, this.#key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(encodeWrapContext(context));
    const ciphertext = Buffer.concat([cipher.update(key), cipher.final()]);
    return Promise.resolve(Buffer.concat([Buffer.of(WRAP_VERSION), nonce, ciphertext, cipher.getAuthTag()]));
  }

  unwrap(wrapped: Buffer, context: WrapContext, signal?: AbortSignal): Promise<Buffer> {
    signal?.throwIfAborted();
    if (wrapped.length < 1 + NONCE_BYTES + TAG_BYTES || wrapped[0] !== WRAP_VERSION) {
      return Promise.reject(
        new CorruptionError(
          `Wrapped key is malformed (${wrapped.length} bytes, version ${wrapped[0] ?? "none"})`,
        ),
      );
    }
    const nonce = wrapped.subarray(1, 1 + NONCE_BYTES);
    const decipher = createDecipheriv(CIPHER, this.#key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAuthTag(wrapped.subarray(wrapped.length - TAG_BYTES));
    decipher.setAAD(encodeWrapContext(context));
    const key = decipher.update(wrapped.subarray(1 + NONCE_BYTES, wrapped.length - TAG_BYTES));
    try {
      decipher.final();
    } catch (err) {
      key.fill(0);
      return Promise.reject(
        new CorruptionError(
          `Wrapped key failed to authenticate with master key ${this.id}: it was changed, ` +
            "wrapped by another master key, or belongs to another project or key id",
          { cause: err },
        ),
      );
    }
    return Promise.resolve(key);
  }
}

/** The key bytes, or undefined when the file does not exist; refuses a file others may read. */
async function readMasterKey(path: string): Promise<Buffer | undefined> {
  let fh;
  try {
    fh = await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UserError(`Cannot open master key file ${path}: ${(err as Error).message}`, 400, {
      cause: err,
    });
  }
  try {
    const st = await fh.stat(); // of the opened file: no window between check and read
    if (!st.isFile()) throw new UserError(`Master key file ${path} is not a regular file`);
    const mode = st.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new UserError(
        `Master key file ${path} is accessible to group or others (mode 0${mode.toString(8)}): ` +
          `run \`chmod 600 ${path}\`, and replace the key if someone else may have read it`,
        403,
      );
    }
    if (st.size !== MASTER_KEY_BYTES) {
      throw new UserError(
        `Master key file ${path} holds ${st.size} bytes, expected ${MASTER_KEY_BYTES}: ` +
          "it is not a lifeboat master key or it was cut short; restore it from your backup",
      );
    }
    const key = Buffer.alloc(MASTER_KEY_BYTES);
    const { bytesRead } = await fh.read(key, 0, MASTER_KEY_BYTES, 0);
    if (bytesRead !== MASTER_KEY_BYTES) {
      throw new UserError(`Master key file ${path} changed while it was read: try again`);
    }
    return key;
  } finally {
    await fh.close();
  }
}

/**
 * Creates the file with a new random key, never replacing one that appears meanwhile: the
 * key is written to a private temporary file and hard-linked to `path`, which fails if
 * another process created the key first (then that key is the one used).
 */
async function createMasterKey(path: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const key = randomBytes(MASTER_KEY_BYTES);
  try {
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(key);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
  } finally {
    key.fill(0);
    await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(dir);
}
