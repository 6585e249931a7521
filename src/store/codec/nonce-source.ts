/**
 * Where AES-256-GCM frame nonces come from. GCM breaks badly if one key ever seals two
 * frames under the same nonce, so this is the one place nonces are made.
 *
 * Choice: a 96-bit nonce = 64-bit random prefix ‖ 32-bit big-endian counter. The prefix is
 * drawn when a process first seals with a key, and drawn again after 2^32 frames; the
 * counter needs no persistence because a restart draws a new prefix. Two nonces can only
 * repeat if two draws of the prefix for the same key collide: with P prefixes drawn over a
 * key's life the chance is about P^2 / 2^65, under NIST's 2^-32 for P up to about 2^16
 * (65,000 process starts or 2^48 frames per key). Fully random 96-bit nonces would be
 * safe for only about 2^32 frames per key, which a replicator sealing 4 KiB frames at
 * 1 GB/s reaches in about 5 hours (16 TiB); they would also cost a getrandom call (about
 * 1.3 µs, a third of sealing a 4 KiB frame) per frame.
 *
 * The sequence belongs to the key, not to a codec: every codec of this process sealing
 * with the same key id shares one source, so creating many codecs does not spend many
 * prefixes. Limits: a key is meant for one data directory; cloning a running replicator's
 * memory (a VM snapshot resumed twice) would repeat nonces, as it would for most RNGs.
 * Rotate the key (KeyRing.rotate) well before 2^16 process starts; nothing else needs it.
 */
import { randomFillSync } from "node:crypto";
import { NONCE_BYTES } from "./frame-header.js";

const PREFIX_BYTES = 8;

export class NonceSource {
  readonly #nonce = Buffer.alloc(NONCE_BYTES);
  readonly #limit: number;
  #counter: number;
  #prefixes = 0;

  /** `counterLimit` is for tests: frames per prefix, at most 2^32. */
  constructor(counterLimit = 2 ** 32) {
    if (!Number.isInteger(counterLimit) || counterLimit < 1 || counterLimit > 2 ** 32) {
      throw new RangeError(`Invalid nonce counter limit ${counterLimit}: expected 1..2^32`);
    }
    this.#limit = counterLimit;
    this.#counter = counterLimit; // draws the prefix on first use
  }

  /** How many random prefixes this source has drawn: each one counts towards the key's limit. */
  get prefixesDrawn(): number {
    return this.#prefixes;
  }

  /** Writes the next nonce (NONCE_BYTES) into `out` at `offset`; never the same twice. */
  next(out: Buffer, offset: number): void {
    if (this.#counter >= this.#limit) {
      randomFillSync(this.#nonce, 0, PREFIX_BYTES);
      this.#counter = 0;
      this.#prefixes++;
    }
    this.#nonce.writeUInt32BE(this.#counter, PREFIX_BYTES);
    this.#counter++;
    this.#nonce.copy(out, offset);
  }
}

const sources = new Map<string, NonceSource>();

/** The process-wide nonce source for data key `keyId` (one small entry per key id used). */
export function nonceSourceFor(keyId: string): NonceSource {
  let source = sources.get(keyId);
  if (source === undefined) {
    source = new NonceSource();
    sources.set(keyId, source);
  }
  return source;
}
