/**
 * The compression step of a frame, one object per algorithm, each keeping what can be
 * reused between frames: zstd's compression and decompression contexts and an output
 * buffer sized for the largest frame, so sealing a frame allocates nothing here. lz4-napi
 * has no into-a-buffer API; its output (which starts with lz4's own 4-byte plain length)
 * is used as is. Measured here (scripts/bench-codec.js), lz4-napi sealed 64 KiB frames of
 * mixed or random data at about a third of zstd level 1's speed, much of it kernel time,
 * and was no faster on text-like data or 4 KiB frames, always at a lower ratio: zstd is
 * the one to choose; lz4 stays because the format names it.
 *
 * `compress` returns a payload only when it is smaller than the input: the caller stores
 * the frame plain otherwise. The returned bytes may be a view of a scratch buffer that the
 * next call overwrites. `decompress` gets an authenticated payload and the plain length
 * from the frame header; it never produces more than that many bytes, and any other length
 * is an error.
 */
import { compressSync, uncompressSync } from "lz4-napi";
import zstd from "zstd-napi/binding.js";
import { FrameError, MAX_FRAME_BYTES, type Compression } from "./block-codec.js";

export const DEFAULT_ZSTD_LEVEL = 1;

export interface FrameCompressor {
  /** Compressed bytes, valid until the next call, or undefined when they would not be smaller. */
  compress(plain: Uint8Array): Uint8Array | undefined;
  /** Exactly `plainLength` bytes, freshly allocated; throws FrameError otherwise. */
  decompress(payload: Uint8Array, plainLength: number): Buffer;
  /** The same, but possibly a view of a scratch buffer that the next call overwrites. */
  decompressTransient(payload: Uint8Array, plainLength: number): Buffer;
}

/** zstd levels accepted: the library's range (negative levels trade ratio for speed). */
export const ZSTD_LEVELS = { min: zstd.minCLevel(), max: zstd.maxCLevel() };

export function createFrameCompressor(
  compression: Exclude<Compression, "none">,
  zstdLevel = DEFAULT_ZSTD_LEVEL,
): FrameCompressor {
  return compression === "zstd" ? new ZstdFrameCompressor(zstdLevel) : new Lz4FrameCompressor();
}

class ZstdFrameCompressor implements FrameCompressor {
  readonly #cctx = new zstd.CCtx();
  readonly #dctx = new zstd.DCtx();
  readonly #scratch = Buffer.allocUnsafe(zstd.compressBound(MAX_FRAME_BYTES));
  #plainScratch: Buffer | undefined;

  constructor(level: number) {
    this.#cctx.setParameter(zstd.CParameter.compressionLevel, level);
    // The frame header already holds the plain length and the trailer checks every byte:
    // zstd's own content size, checksum and dictionary id would be redundant bytes.
    this.#cctx.setParameter(zstd.CParameter.contentSizeFlag, 0);
    this.#cctx.setParameter(zstd.CParameter.checksumFlag, 0);
    this.#cctx.setParameter(zstd.CParameter.dictIDFlag, 0);
  }

  compress(plain: Uint8Array): Uint8Array | undefined {
    const n = this.#cctx.compress2(this.#scratch, plain);
    return n < plain.length ? this.#scratch.subarray(0, n) : undefined;
  }

  decompress(payload: Uint8Array, plainLength: number): Buffer {
    return this.#decompressInto(Buffer.allocUnsafe(plainLength), payload, plainLength);
  }

  decompressTransient(payload: Uint8Array, plainLength: number): Buffer {
    this.#plainScratch ??= Buffer.allocUnsafeSlow(MAX_FRAME_BYTES);
    return this.#decompressInto(this.#plainScratch.subarray(0, plainLength), payload, plainLength);
  }

  #decompressInto(out: Buffer, payload: Uint8Array, plainLength: number): Buffer {
    let n: number;
    try {
      // Decompressing into a buffer of exactly plainLength bytes fails (dstSize_tooSmall)
      // on a payload that would expand further: no unbounded allocation.
      n = this.#dctx.decompress(out, payload);
    } catch (err) {
      throw new FrameError("Frame payload failed to decompress (zstd)", { cause: err });
    }
    checkLength(n, plainLength, "zstd");
    return out;
  }
}

class Lz4FrameCompressor implements FrameCompressor {
  compress(plain: Uint8Array): Uint8Array | undefined {
    const out = compressSync(asBuffer(plain));
    return out.length < plain.length ? out : undefined;
  }

  decompressTransient(payload: Uint8Array, plainLength: number): Buffer {
    return this.decompress(payload, plainLength);
  }

  decompress(payload: Uint8Array, plainLength: number): Buffer {
    // lz4-napi allocates what the payload's 4-byte prefix announces: check it first.
    const announced = payload.length >= 4 ? asBuffer(payload).readUInt32LE(0) : -1;
    if (announced !== plainLength) {
      throw new FrameError(
        `Frame payload failed to decompress (lz4): it announces ${announced} bytes, expected ${plainLength}`,
      );
    }
    let out: Buffer;
    try {
      out = uncompressSync(payload);
    } catch (err) {
      throw new FrameError("Frame payload failed to decompress (lz4)", { cause: err });
    }
    checkLength(out.length, plainLength, "lz4");
    return out;
  }
}

function checkLength(actual: number, expected: number, algorithm: string): void {
  if (actual !== expected) {
    throw new FrameError(
      `Frame payload decompressed (${algorithm}) to ${actual} bytes, expected ${expected}`,
    );
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}
