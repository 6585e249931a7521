/**
 * How the staging store turns block data into bytes at rest and back: compression (none,
 * lz4, zstd) and encryption (AES-256-GCM with a per-project data key). The unit is a
 * *frame*: up to MAX_FRAME_BYTES of plain, block-aligned data, sealed as one piece.
 *
 * A sealed frame authenticates itself and where it belongs: the caller passes an
 * `aad` (associated data: timeline, disk, offset, seq, ...) that must match on open, so a
 * frame copied to another place, or any flipped byte, fails to open. Without encryption a
 * frame carries an XXH64 checksum over aad and payload instead, which catches accidents
 * but not an attacker (docs/store-format.md, "Threat model").
 */

export const MAX_FRAME_BYTES = 64 * 1024;

export type Compression = "none" | "lz4" | "zstd";

export interface FrameCodec {
  /** The compression this codec applies when it pays (a frame that does not shrink is stored plain). */
  readonly compression: Compression;
  /** True when frames are encrypted (and authenticated) with a data key. */
  readonly encrypted: boolean;
  /** Key id of the data key, recorded in layer headers; undefined without encryption. */
  readonly keyId: string | undefined;
  /** Seals `plain` (1..MAX_FRAME_BYTES bytes, a multiple of 4096) into a self-describing frame. */
  seal(plain: Uint8Array, aad: Uint8Array): Buffer;
  /** Opens a frame sealed with the same aad; throws FrameError when anything fails to check. */
  open(frame: Uint8Array, aad: Uint8Array): Buffer;
  /**
   * Opens like `open`, with the same checks, but the bytes returned may share memory with
   * `frame` or with a scratch buffer of this codec: they are valid only until the next call
   * on this codec and while `frame` is unchanged. For readers that copy the plain bytes out
   * at once: no allocation for plain or zstd frames.
   */
  openTransient(frame: Uint8Array, aad: Uint8Array): Buffer;
}

/** A frame failed to open: wrong key, wrong place, or changed bytes. The caller adds which layer and PIT. */
export class FrameError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FrameError";
  }
}
