/**
 * The default ObjectStore: a local directory, one file per object, the key's segments
 * as subdirectories. A put is made atomic and durable the classic way: write a temporary
 * file under `<root>/.tmp/`, fsync it, rename it into place, fsync the target directory
 * (and any directory the put created). A `{file}` body on the same file system is hard-
 * linked into place instead of copied, so a sealed journal segment becomes a layer
 * without moving its bytes. Temporary files a crash left behind are removed at open;
 * keys can never name them, since a key segment never starts with a dot.
 *
 * One restriction the object stores in the cloud do not have: a key cannot be both an
 * object and the directory of another object ("a" and "a/b"); such a put is refused.
 */
import { randomBytes } from "node:crypto";
import type { Dirent } from "node:fs";
import { constants as fsConstants } from "node:fs";
import { copyFile, link, lstat, mkdir, open, readdir, rename, rm, rmdir, unlink } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { UserError } from "../../common/errors.js";
import { fsyncDir } from "../../common/durable-file.js";
import { readExactAt, writeAllAt } from "../layered/fs-util.js";
import {
  checkObjectKey,
  checkObjectPrefix,
  checkRange,
  isKeySegment,
  rangePastEndError,
} from "./object-key.js";
import type { ObjectBody, ObjectInfo, ObjectStore } from "./object-store.js";
import { ObjectNotFoundError } from "./object-store.js";

const TMP_DIR = ".tmp";
/** Errors from link() that mean "this file system cannot link here": copy instead. */
const LINK_UNSUPPORTED = new Set(["EXDEV", "EPERM", "EMLINK", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);

export interface LocalObjectStoreOptions {
  /** Hard-link `{file}` bodies when possible (default true); false always copies. */
  readonly linkFiles?: boolean;
}

export class LocalObjectStore implements ObjectStore {
  readonly description: string;
  private readonly tmpDir: string;

  private constructor(
    readonly root: string,
    private readonly linkFiles: boolean,
  ) {
    this.description = `local:${root}`;
    this.tmpDir = join(root, TMP_DIR);
  }

  /** Opens (creating if needed) the store at the absolute path `root`, removing stray temporary files. */
  static async open(root: string, options: LocalObjectStoreOptions = {}): Promise<LocalObjectStore> {
    if (!root.startsWith(sep)) throw new UserError(`Local object store path must be absolute: ${root}`);
    const normalized = root.length > 1 && root.endsWith(sep) ? root.slice(0, -1) : root;
    const store = new LocalObjectStore(normalized, options.linkFiles ?? true);
    const created = await mkdir(normalized, { recursive: true });
    // Whatever is in .tmp is a put that never reached its rename: it was never visible.
    await rm(store.tmpDir, { recursive: true, force: true });
    await mkdir(store.tmpDir);
    await fsyncDir(normalized);
    if (created !== undefined) {
      for (let d = normalized; d !== dirname(created); d = dirname(d)) await fsyncDir(dirname(d));
    }
    return store;
  }

  async put(key: string, body: ObjectBody, signal?: AbortSignal): Promise<void> {
    checkObjectKey(key);
    signal?.throwIfAborted();
    const target = this.pathOf(key);
    const tmp = join(this.tmpDir, `put-${randomBytes(8).toString("hex")}`);
    try {
      if (Buffer.isBuffer(body)) await writeNewFile(tmp, body);
      else await this.placeFile(body.file, tmp, signal);
      signal?.throwIfAborted();
      const created = await this.renameIntoPlace(key, tmp, target, signal);
      for (const dir of created) await fsyncDir(dir);
      await fsyncDir(dirname(target));
    } finally {
      // Gone already after a rename; a rename between two links of one inode keeps both names.
      await rm(tmp, { force: true });
    }
  }

  async read(key: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    checkObjectKey(key);
    checkRange(key, offset, length);
    signal?.throwIfAborted();
    const path = this.pathOf(key);
    const handle = await open(path, "r").catch((err: unknown) => {
      throw this.mapMissing(err, key);
    });
    try {
      // The handle pins the inode: an overwrite meanwhile cannot mix two versions.
      const st = await handle.stat();
      if (!st.isFile()) throw new ObjectNotFoundError(key, this.description);
      const size = st.size;
      if (offset + length > size) throw rangePastEndError(key, this.description, offset, length, size);
      signal?.throwIfAborted();
      const out = Buffer.allocUnsafe(length);
      await readExactAt(handle, out, offset, path);
      return out;
    } finally {
      await handle.close();
    }
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    checkObjectKey(key);
    signal?.throwIfAborted();
    try {
      const st = await lstat(this.pathOf(key));
      return st.isFile() ? { key, size: st.size } : undefined;
    } catch (err) {
      if (isCode(err, "ENOENT") || isCode(err, "ENOTDIR")) return undefined;
      throw err;
    }
  }

  async list(prefix: string, signal?: AbortSignal): Promise<ObjectInfo[]> {
    checkObjectPrefix(prefix);
    signal?.throwIfAborted();
    // Start at the deepest directory the prefix names in full; filter the rest by name.
    const cut = prefix.lastIndexOf("/");
    const dirKey = cut < 0 ? "" : prefix.slice(0, cut + 1);
    const out: ObjectInfo[] = [];
    await this.walk(dirKey, prefix, out, signal);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    checkObjectKey(key);
    signal?.throwIfAborted();
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (err) {
      if (isCode(err, "ENOENT") || isCode(err, "ENOTDIR")) return;
      if (isCode(err, "EISDIR") || isCode(err, "EPERM")) return; // a directory of other keys, not an object
      throw err;
    }
    await fsyncDir(await this.pruneEmptyParents(key));
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  private pathOf(key: string): string {
    return join(this.root, ...key.split("/"));
  }

  /** Links (or, across file systems, copies) `source` to `tmp`, then makes its data durable. */
  private async placeFile(source: string, tmp: string, signal: AbortSignal | undefined): Promise<void> {
    let linked = false;
    if (this.linkFiles) {
      try {
        await link(source, tmp);
        linked = true;
      } catch (err) {
        if (isCode(err, "ENOENT"))
          throw new UserError(`Cannot put ${source}: the file does not exist`, 400, { cause: err });
        if (!LINK_UNSUPPORTED.has(errCode(err) ?? "")) throw err;
      }
    }
    if (!linked) {
      signal?.throwIfAborted();
      await copyFile(source, tmp, fsConstants.COPYFILE_EXCL).catch((err: unknown) => {
        if (isCode(err, "ENOENT"))
          throw new UserError(`Cannot put ${source}: the file does not exist`, 400, { cause: err });
        throw err;
      });
    }
    // A linked file's writer normally synced it already; then this costs next to nothing.
    const handle = await open(tmp, "r");
    try {
      if (!(await handle.stat()).isFile()) throw new UserError(`Cannot put ${source}: not a regular file`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /**
   * Creates the key's directories and renames `tmp` over `target`: the put's commit point,
   * after which it completes even if the signal fires. Returns the directories whose
   * entries changed (parents of directories it created), for the caller to fsync.
   */
  private async renameIntoPlace(
    key: string,
    tmp: string,
    target: string,
    signal: AbortSignal | undefined,
  ): Promise<string[]> {
    const dir = dirname(target);
    const changed: string[] = [];
    for (let attempt = 0; ; attempt++) {
      let first: string | undefined;
      try {
        first = await mkdir(dir, { recursive: true });
      } catch (err) {
        if (isCode(err, "EEXIST") || isCode(err, "ENOTDIR")) throw this.shapeConflict(key, err);
        throw err;
      }
      // Each new directory's name lives in its parent.
      if (first !== undefined) {
        for (let d = dir; ; d = dirname(d)) {
          changed.push(dirname(d));
          if (d === first) break;
        }
      }
      signal?.throwIfAborted();
      try {
        await rename(tmp, target);
        return [...new Set(changed)];
      } catch (err) {
        if (isCode(err, "EISDIR") || isCode(err, "ENOTEMPTY") || isCode(err, "ENOTDIR")) {
          throw this.shapeConflict(key, err);
        }
        // A concurrent delete pruned the directory we had just made: make it again.
        if (!isCode(err, "ENOENT") || attempt >= 3) throw err;
      }
    }
  }

  /** Removes the now-empty directories above a deleted key; returns the deepest one left. */
  private async pruneEmptyParents(key: string): Promise<string> {
    const segments = key.split("/");
    for (let n = segments.length - 1; n > 0; n--) {
      const dir = join(this.root, ...segments.slice(0, n));
      try {
        await rmdir(dir);
      } catch {
        return dir; // not empty (or already gone): stop here
      }
    }
    return this.root;
  }

  private async walk(dirKey: string, prefix: string, out: ObjectInfo[], signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    let entries: Dirent[];
    try {
      entries = await readdir(join(this.root, ...dirKey.split("/").filter((s) => s !== "")), {
        withFileTypes: true,
      });
    } catch (err) {
      if (isCode(err, "ENOENT") || isCode(err, "ENOTDIR")) return;
      throw err;
    }
    for (const entry of entries) {
      // Names a key cannot have (".tmp", editor droppings) are not objects.
      if (!isKeySegment(entry.name)) continue;
      const key = dirKey + entry.name;
      if (entry.isDirectory()) {
        const sub = `${key}/`;
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) await this.walk(sub, prefix, out, signal);
      } else if (entry.isFile() && key.startsWith(prefix) && key.split("/").length <= 16) {
        try {
          const st = await lstat(join(this.root, ...key.split("/")));
          out.push({ key, size: st.size });
        } catch (err) {
          if (!isCode(err, "ENOENT")) throw err; // deleted meanwhile
        }
      }
    }
  }

  private mapMissing(err: unknown, key: string): unknown {
    if (isCode(err, "ENOENT") || isCode(err, "ENOTDIR") || isCode(err, "EISDIR")) {
      return new ObjectNotFoundError(key, this.description);
    }
    return err;
  }

  private shapeConflict(key: string, err: unknown): UserError {
    return new UserError(
      `Cannot put ${key} in ${this.description}: a key cannot be both an object and the directory of other objects here`,
      409,
      { cause: err },
    );
  }
}

async function writeNewFile(path: string, data: Buffer): Promise<void> {
  const handle = await open(path, "wx", 0o644);
  try {
    await writeAllAt(handle, [data], 0);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function errCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

function isCode(err: unknown, code: string): boolean {
  return errCode(err) === code;
}
