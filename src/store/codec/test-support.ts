/**
 * Sample block data for the codec's tests and its throughput script
 * (scripts/bench-codec.js): text-like blocks (words, numbers and line breaks from a seeded
 * generator, compressing about as well as logs and source files) and random blocks
 * (incompressible, like encrypted or already compressed files).
 */
import { randomBytes } from "node:crypto";

const BLOCK = 4096;

/** A small deterministic generator (xorshift32): the same seed gives the same data. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32;
  };
}

const WORDS = (() => {
  const next = seededRandom(7);
  const letters = "etaoinshrdlucmfwypvbgkjqxz";
  const words: string[] = [];
  for (let i = 0; i < 400; i++) {
    let word = "";
    const len = 2 + Math.floor(next() * 9);
    // Skewed towards frequent letters, as natural text is.
    for (let j = 0; j < len; j++) word += letters[Math.floor(next() ** 2 * letters.length)] ?? "e";
    words.push(word);
  }
  return words;
})();

/** `size` bytes of text-like data. */
export function textLike(size: number, seed = 1): Buffer {
  const next = seededRandom(seed);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  while (at < size) {
    const r = next();
    // Word frequencies follow a power law: a few words are most of the text.
    const piece =
      r < 0.05
        ? `${Math.floor(next() * 100000)} `
        : r < 0.08
          ? "\n"
          : `${WORDS[Math.floor(next() ** 3 * WORDS.length)]} `;
    at += out.write(piece, at, "latin1");
  }
  return out;
}

/**
 * `blocks` blocks of 4 KiB, each text-like or random with equal chance (seeded choice;
 * the random blocks come from crypto.randomBytes).
 */
export function mixedBlocks(blocks: number, seed = 1): Buffer {
  const next = seededRandom(seed);
  const out = Buffer.allocUnsafe(blocks * BLOCK);
  for (let b = 0; b < blocks; b++) {
    const block = next() < 0.5 ? textLike(BLOCK, seed * 7919 + b) : randomBytes(BLOCK);
    block.copy(out, b * BLOCK);
  }
  return out;
}
