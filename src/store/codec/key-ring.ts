/**
 * Per-project data keys at rest: each project's keys live in `<dir>/projects/<project>.json`,
 * wrapped by a master key (KeyWrapper), newest last; the newest is the project's current
 * key, older ones stay so data sealed before a rotation can still be opened by the key id
 * its layer records. Unwrapped keys are kept in memory once used.
 *
 * Key file (JSON, mode 0600, replaced atomically and durably):
 *   {"format":1,"project":"p1","keys":[{"id":"<16 hex>","wrapperId":"local:<16 hex>",
 *    "wrapped":"<base64>","createdAt":"<ISO time>"}, ...]}
 * Each key is wrapped with the context {purpose, project, keyId}, so a key file copied to
 * another project, a key id edited, or a flipped byte in a wrapped key fails to unwrap.
 *
 * One process owns a key ring directory: concurrent calls in this process are serialized
 * per project; two processes creating the same project's first key at once are not.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError, UserError, errorMessage } from "../../common/errors.js";
import { writeFileDurably } from "../../common/durable-file.js";
import { DATA_KEY_BYTES, makeDataKey, type DataKey } from "./data-key.js";
import type { KeyWrapper, WrapContext } from "./key-wrapper.js";

export const PROJECT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const KEY_FILE_FORMAT = 1;
const KEY_ID_HEX = /^[0-9a-f]{16}$/;
const WRAP_PURPOSE = "lifeboat data key";

interface KeyRecord {
  readonly id: string;
  readonly wrapperId: string;
  readonly wrapped: string;
  readonly createdAt: string;
}

interface KeyFile {
  readonly format: number;
  readonly project: string;
  readonly keys: readonly KeyRecord[];
}

/** What the key ring tells about a project's keys, without the keys. */
export interface DataKeyInfo {
  readonly id: string;
  readonly wrapperId: string;
  readonly createdAt: string;
  readonly current: boolean;
}

export class KeyRing {
  readonly #dir: string;
  readonly #wrapper: KeyWrapper;
  readonly #files = new Map<string, KeyFile>();
  /** key id -> project, for every key of every file. */
  readonly #owners = new Map<string, string>();
  readonly #unwrapped = new Map<string, Promise<DataKey>>();
  readonly #locks = new Map<string, Promise<unknown>>();

  private constructor(dir: string, wrapper: KeyWrapper) {
    this.#dir = dir;
    this.#wrapper = wrapper;
  }

  /**
   * Opens (creating if needed) the key ring in `dir` (by convention `<dataDir>/keys`) and
   * reads every key file; keys are unwrapped when first used.
   */
  static async open(dir: string, wrapper: KeyWrapper): Promise<KeyRing> {
    const ring = new KeyRing(dir, wrapper);
    await mkdir(ring.#projectsDir(), { recursive: true, mode: 0o700 });
    for (const name of (await readdir(ring.#projectsDir())).sort()) {
      if (!name.endsWith(".json")) continue; // writeFileDurably's *.json.tmp among them
      const project = name.slice(0, -".json".length);
      const file = ring.#keyFilePath(project);
      if (!PROJECT_NAME_PATTERN.test(project)) throw new CorruptionError(`Unexpected key file ${file}`);
      const parsed = parseKeyFile(await readFile(file, "utf8"), project, file);
      ring.#index(parsed, file);
      ring.#files.set(project, parsed);
    }
    return ring;
  }

  get wrapperId(): string {
    return this.#wrapper.id;
  }

  /** The project's current key, created (and durably stored) on first use. */
  dataKey(project: string, signal?: AbortSignal): Promise<DataKey> {
    checkProject(project);
    return this.#serialized(project, async () => {
      const file = this.#files.get(project);
      const current = file?.keys.at(-1);
      if (current !== undefined) return this.#unwrap(project, current, signal);
      return this.#addKey(project, signal);
    });
  }

  /** Makes a new key the project's current one; the old ones stay readable by id. */
  rotate(project: string, signal?: AbortSignal): Promise<DataKey> {
    checkProject(project);
    return this.#serialized(project, () => this.#addKey(project, signal));
  }

  /** A key by the id a layer recorded, current or not. */
  keyById(id: string, signal?: AbortSignal): Promise<DataKey> {
    const project = this.#owners.get(id);
    const record =
      project === undefined ? undefined : this.#files.get(project)?.keys.find((k) => k.id === id);
    if (project === undefined || record === undefined) {
      return Promise.reject(
        new CorruptionError(
          `Data key ${JSON.stringify(id)} is not in the key ring at ${this.#projectsDir()}: ` +
            "restore the key files (keys/projects) that belong with this data",
        ),
      );
    }
    return this.#unwrap(project, record, signal);
  }

  /** The project's keys, oldest first, without key material; empty when it has none yet. */
  keys(project: string): DataKeyInfo[] {
    checkProject(project);
    const keys = this.#files.get(project)?.keys ?? [];
    return keys.map((k, i) => ({
      id: k.id,
      wrapperId: k.wrapperId,
      createdAt: k.createdAt,
      current: i === keys.length - 1,
    }));
  }

  async #addKey(project: string, signal: AbortSignal | undefined): Promise<DataKey> {
    let id: string;
    do id = randomBytes(8).toString("hex");
    while (this.#owners.has(id));
    const key = randomBytes(DATA_KEY_BYTES);
    const wrapped = await this.#wrapper.wrap(key, wrapContext(project, id), signal);
    const record: KeyRecord = {
      id,
      wrapperId: this.#wrapper.id,
      wrapped: wrapped.toString("base64"),
      createdAt: new Date().toISOString(),
    };
    const old = this.#files.get(project);
    const next: KeyFile = { format: KEY_FILE_FORMAT, project, keys: [...(old?.keys ?? []), record] };
    signal?.throwIfAborted();
    await writeFileDurably(this.#keyFilePath(project), `${JSON.stringify(next, null, 2)}\n`, 0o600);
    // Visible only once durable: no frame is ever sealed with a key that a crash could lose.
    this.#files.set(project, next);
    this.#owners.set(id, project);
    const dataKey = makeDataKey(id, key);
    this.#unwrapped.set(id, Promise.resolve(dataKey));
    return dataKey;
  }

  #unwrap(project: string, record: KeyRecord, signal: AbortSignal | undefined): Promise<DataKey> {
    let pending = this.#unwrapped.get(record.id);
    if (pending === undefined) {
      pending = this.#doUnwrap(project, record, signal);
      this.#unwrapped.set(record.id, pending);
      // A failure (a KMS outage, an abort of the first caller, which its concurrent waiters
      // see too) is not remembered: the next call tries again.
      pending.catch(() => this.#unwrapped.delete(record.id));
    }
    return pending;
  }

  async #doUnwrap(project: string, record: KeyRecord, signal: AbortSignal | undefined): Promise<DataKey> {
    const file = this.#keyFilePath(project);
    if (record.wrapperId !== this.#wrapper.id) {
      throw new UserError(
        `Data key ${record.id} in ${file} was wrapped by master key ${record.wrapperId}, ` +
          `but the master key loaded is ${this.#wrapper.id}: start lifeboat with the master key ` +
          "this data directory was created with (or restore the key file if it was changed)",
        409,
      );
    }
    let key: Buffer;
    try {
      key = await this.#wrapper.unwrap(
        Buffer.from(record.wrapped, "base64"),
        wrapContext(project, record.id),
        signal,
      );
    } catch (err) {
      if (err instanceof UserError || signal?.aborted === true) throw err;
      throw new CorruptionError(
        `Data key ${record.id} in ${file} failed to unwrap: the key file was changed or copied from ` +
          `another project (${errorMessage(err)}); restore it from your backup`,
        { cause: err },
      );
    }
    if (key.length !== DATA_KEY_BYTES) {
      throw new CorruptionError(
        `Data key ${record.id} in ${file} unwrapped to ${key.length} bytes, expected ${DATA_KEY_BYTES}`,
      );
    }
    return makeDataKey(record.id, key);
  }

  #index(file: KeyFile, path: string): void {
    for (const record of file.keys) {
      const other = this.#owners.get(record.id);
      if (other !== undefined) {
        throw new CorruptionError(
          `Data key id ${record.id} appears in ${path} and in ${this.#keyFilePath(other)}`,
        );
      }
      this.#owners.set(record.id, file.project);
    }
  }

  #serialized<T>(project: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(project) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.#locks.set(project, settled);
    void settled.then(() => {
      if (this.#locks.get(project) === settled) this.#locks.delete(project);
    });
    return run;
  }

  #projectsDir(): string {
    return join(this.#dir, "projects");
  }

  #keyFilePath(project: string): string {
    return join(this.#projectsDir(), `${project}.json`);
  }
}

function wrapContext(project: string, keyId: string): WrapContext {
  return { purpose: WRAP_PURPOSE, project, keyId };
}

function checkProject(project: string): void {
  if (!PROJECT_NAME_PATTERN.test(project)) {
    throw new UserError(
      `Invalid project name ${JSON.stringify(project)}: expected 1 to 128 letters, digits, '.', '_' or '-', ` +
        "starting with a letter or digit",
    );
  }
}

/** Checks a key file's structure (not its keys: those are checked when unwrapped). */
function parseKeyFile(text: string, project: string, path: string): KeyFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CorruptionError(`Key file ${path} is not valid JSON: restore it from your backup`, {
      cause: err,
    });
  }
  const bad = (what: string): CorruptionError => new CorruptionError(`Key file ${path} is invalid: ${what}`);
  if (!isObject(value)) throw bad("not an object");
  if (value["format"] !== KEY_FILE_FORMAT) throw bad(`unknown format ${JSON.stringify(value["format"])}`);
  if (value["project"] !== project) {
    throw bad(`it belongs to project ${JSON.stringify(value["project"])}, not ${JSON.stringify(project)}`);
  }
  const keys = value["keys"];
  if (!Array.isArray(keys) || keys.length === 0) throw bad("no keys");
  const records = keys.map((k: unknown, i): KeyRecord => {
    if (
      !isObject(k) ||
      typeof k["id"] !== "string" ||
      !KEY_ID_HEX.test(k["id"]) ||
      typeof k["wrapperId"] !== "string" ||
      typeof k["wrapped"] !== "string" ||
      typeof k["createdAt"] !== "string"
    ) {
      throw bad(`key ${i} lacks a valid id, wrapperId, wrapped or createdAt`);
    }
    return { id: k["id"], wrapperId: k["wrapperId"], wrapped: k["wrapped"], createdAt: k["createdAt"] };
  });
  return { format: KEY_FILE_FORMAT, project, keys: records };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
