/**
 * Key and prefix rules for the ObjectStore (object-store.ts): every backend checks a key
 * here before any I/O, so a hostile key ("../x", "/etc/passwd", "a//b") never reaches a
 * file system path or a bucket, and keys mean the same thing on every backend.
 */
import { UserError } from "../../common/errors.js";

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const MAX_KEY_SEGMENTS = 16;

/** True when `name` is a valid key segment (also: a file or directory name the local backend owns). */
export function isKeySegment(name: string): boolean {
  return SEGMENT.test(name);
}

/** True when `key` is a valid object key. */
export function isObjectKey(key: string): boolean {
  const segments = key.split("/");
  return segments.length <= MAX_KEY_SEGMENTS && segments.every(isKeySegment);
}

/** Throws a UserError unless `key` is a valid object key. */
export function checkObjectKey(key: string): void {
  if (typeof key !== "string" || !isObjectKey(key)) {
    throw new UserError(
      `Invalid object key ${JSON.stringify(key)}: use 1-${MAX_KEY_SEGMENTS} slash-separated segments, ` +
        "each 1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit",
    );
  }
}

/**
 * Throws a UserError unless `prefix` can start a valid key: empty, or segments whose last
 * one may be empty (a trailing slash) or partial ("timelines/t1/layer-").
 */
export function checkObjectPrefix(prefix: string): void {
  if (typeof prefix !== "string") throw new UserError(`Invalid object key prefix: ${String(prefix)}`);
  if (prefix === "") return;
  const segments = prefix.split("/");
  const last = segments.pop() ?? "";
  const ok =
    segments.length < MAX_KEY_SEGMENTS &&
    segments.every(isKeySegment) &&
    (last === "" || isKeySegment(last)) &&
    !(last === "" && segments.length === 0);
  if (!ok) {
    throw new UserError(
      `Invalid object key prefix ${JSON.stringify(prefix)}: it must be the start of a valid key ` +
        "(slash-separated segments of A-Z a-z 0-9 . _ -, each starting with a letter or digit)",
    );
  }
}

/** Throws a UserError unless offset and length are non-negative safe integers. */
export function checkRange(key: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new UserError(`Invalid range for ${key}: offset ${offset}, length ${length}`);
  }
}

/** The 416-like error every backend throws for a range that runs past the object's end. */
export function rangePastEndError(
  key: string,
  where: string,
  offset: number,
  length: number,
  size: number | undefined,
): UserError {
  const has = size === undefined ? "the object is shorter" : `the object has ${size} bytes`;
  return new UserError(
    `Range past the end of object ${key} in ${where}: offset ${offset}, length ${length}, but ${has}`,
    422,
  );
}
