/**
 * A data key: the AES-256 key that seals a project's frames, and the id that layers record
 * so a reader can find the key again after rotation (KeyRing.keyById). The id is public;
 * the key never appears in an error message, a log line or a file unwrapped.
 */

export const DATA_KEY_BYTES = 32;

export interface DataKey {
  /** Public, stable name of this key: recorded in layer headers. */
  readonly id: string;
  /** The 32 secret bytes. */
  readonly key: Buffer;
}

/** Key ids: printable, no separators, short enough for a layer header. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Throws a RangeError (a programming error, not bad user input) when `key` cannot be a data key. */
export function checkDataKey(key: DataKey): void {
  if (!KEY_ID_PATTERN.test(key.id)) {
    throw new RangeError(`Invalid data key id ${JSON.stringify(key.id)}: expected ${String(KEY_ID_PATTERN)}`);
  }
  if (key.key.length !== DATA_KEY_BYTES) {
    throw new RangeError(`Data key ${key.id} has ${key.key.length} bytes, expected ${DATA_KEY_BYTES}`);
  }
}

/**
 * A DataKey whose `key` is not enumerable, so logging the object (util.inspect,
 * console.log, JSON.stringify) shows the id only.
 */
export function makeDataKey(id: string, key: Buffer): DataKey {
  return Object.defineProperty({ id }, "key", { value: key, enumerable: false }) as DataKey;
}
