/**
 * Disk-like sample data for the export benchmark and the format tests: text-like bytes
 * (log lines: compressible about 3:1, like the text and binaries of a real disk) and
 * random bytes (incompressible, like compressed or encrypted files).
 */
import { randomFillSync } from "node:crypto";

const WORDS = (
  "the of and to in is for on with as by at from server request user session error warning info " +
  "debug started stopped connection timeout retry database query index table cache disk volume " +
  "block write read sync kernel module driver network packet address port service config value"
).split(" ");

/** Deterministic text-like bytes (xorshift PRNG seeded by `seed`). */
export function textLike(length: number, seed = 1): Buffer {
  let x = (seed * 2654435761) >>> 0 || 1;
  const next = (n: number): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
  const out = Buffer.alloc(length);
  let at = 0;
  let line = 0;
  while (at < length) {
    let s = `2026-03-01T10:${String(line % 60).padStart(2, "0")}:${String(next(60)).padStart(2, "0")}.${next(1000)}Z host-${next(16)} pid=${next(32768)}`;
    const words = 4 + next(12);
    for (let i = 0; i < words; i++) s += ` ${WORDS[next(WORDS.length)] ?? ""}`;
    at += out.write(`${s}\n`, at, "latin1");
    line++;
  }
  return out;
}

export function randomData(length: number): Buffer {
  return randomFillSync(Buffer.allocUnsafe(length));
}
