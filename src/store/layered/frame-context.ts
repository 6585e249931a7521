/**
 * How a timeline seals and opens the frames that hold its block data (docs/store-format.md,
 * "Frames"). A frame holds up to 16 blocks of one extent of one seq; its aad binds it to
 * its place: the timeline, the disk, the first block and the block count. The seq is not
 * in the aad (a batch is sealed before the group commit assigns its seq), so a frame
 * replayed from an older version of the same place is not detected: see the threat model.
 *
 * One context per timeline and codec. The aad buffer is reused between calls: seal and
 * open consume it synchronously.
 */
import { FrameError, type FrameCodec } from "../codec/block-codec.js";
import { HEADER_BYTES, readHeader, trailerBytes } from "../codec/frame-header.js";
import { BLOCK_SIZE } from "../staging-store.js";
import { CorruptionError } from "../../common/errors.js";

export const BLOCKS_PER_FRAME = 16;
export const FRAME_PLAIN_BYTES = BLOCKS_PER_FRAME * BLOCK_SIZE;
const AAD_MAGIC = "LBA2";
/** Flag bit 2 of a frame header (codec/frame-header.ts): the frame is encrypted. */
const FRAME_FLAG_ENCRYPTED = 0b100;
/** The smallest possible frame: a header, one payload byte, the shorter trailer. */
export const MIN_FRAME_BYTES = HEADER_BYTES + 1 + trailerBytes(false);

export class FrameContext {
  readonly #aad: Buffer;

  constructor(
    readonly timelineId: string,
    readonly codec: FrameCodec,
  ) {
    const id = Buffer.from(timelineId, "utf8");
    this.#aad = Buffer.alloc(20 + id.length);
    this.#aad.write(AAD_MAGIC, 0, "latin1");
    id.copy(this.#aad, 20);
  }

  /** Seals `plain` (whole blocks) for its place. */
  seal(plain: Uint8Array, disk: number, firstBlock: number, blockCount: number): Buffer {
    return this.codec.seal(plain, this.aad(disk, firstBlock, blockCount));
  }

  /** Opens a frame sealed for this place; throws FrameError when it does not check. */
  open(frame: Uint8Array, disk: number, firstBlock: number, blockCount: number): Buffer {
    return this.codec.open(frame, this.aad(disk, firstBlock, blockCount));
  }

  /** As `open`, but the bytes are valid only until the next call (FrameCodec.openTransient). */
  openTransient(frame: Uint8Array, disk: number, firstBlock: number, blockCount: number): Buffer {
    return this.codec.openTransient(frame, this.aad(disk, firstBlock, blockCount));
  }

  private aad(disk: number, firstBlock: number, blockCount: number): Buffer {
    const aad = this.#aad;
    aad.writeUInt32LE(disk, 4);
    aad.writeUInt32LE(firstBlock % 0x100000000, 8);
    aad.writeUInt32LE(Math.floor(firstBlock / 0x100000000), 12);
    aad.writeUInt32LE(blockCount, 16);
    return aad;
  }
}

/**
 * Length of the frame starting at `pos` in `buf`, from its header, checked with the codec's
 * structural checks; undefined when it does not fit in `buf` or its header is invalid.
 */
export function frameLengthAt(buf: Buffer, pos: number, end = buf.length): number | undefined {
  if (pos + HEADER_BYTES > end) return undefined;
  const encrypted = ((buf[pos + 1] ?? 0) & FRAME_FLAG_ENCRYPTED) !== 0;
  const length = HEADER_BYTES + buf.readUInt32LE(pos + 6) + trailerBytes(encrypted);
  if (pos + length > end) return undefined;
  try {
    readHeader(buf.subarray(pos, pos + length));
  } catch {
    return undefined;
  }
  return length;
}

/** Plain length and encryption flag of a frame whose header `frameLengthAt` accepted. */
export function frameInfo(buf: Buffer, pos: number): { plainLength: number; encrypted: boolean } {
  return {
    plainLength: buf.readUInt32LE(pos + 2),
    encrypted: ((buf[pos + 1] ?? 0) & FRAME_FLAG_ENCRYPTED) !== 0,
  };
}

/** Where a frame lives and what it holds, for error messages. */
export interface FramePlace {
  readonly file: string;
  readonly offset: number;
  readonly disk: number;
  readonly firstBlock: number;
  readonly blockCount: number;
  readonly seq: number;
}

/** The error a read or a compaction reports for a frame that fails to open. */
export function damagedFrame(place: FramePlace, err: unknown): CorruptionError {
  const why = err instanceof FrameError ? err.message : String(err);
  const last = place.firstBlock + place.blockCount - 1;
  return new CorruptionError(
    `Damaged frame in ${place.file} at offset ${place.offset} (disk ${place.disk} blocks ` +
      `${place.firstBlock}-${last}, seq ${place.seq}): ${why}; no data returned`,
    { cause: err },
  );
}
