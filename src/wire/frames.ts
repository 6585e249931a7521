/**
 * Frame types and payload shapes of the replication protocol (docs/wire-protocol.md).
 * Encoding and decoding live in `codec.ts`; incremental reading off a socket in
 * `frame-reader.ts`.
 */

import type { Extent } from "../common/extent.js";

export const PROTOCOL_VERSION = 1;
export const DEFAULT_PORT = 1500;
export const MAX_FRAME_BYTES = 32 * 1024 * 1024;
export const MAX_EXTENTS_PER_BATCH = 4096;
export const CHUNK_SIZE = 64 * 1024;
/** Hashes per HASHES frame: 8192 × 8 bytes = 64 KiB of payload. */
export const HASHES_PER_FRAME = 8192;
export const WIRE_BLOCK = 4096;

export const FrameType = {
  HELLO: 1,
  WELCOME: 2,
  BATCH: 3,
  ACK: 4,
  HASHES: 5,
  HASH_DIFF: 6,
  ERROR: 7,
  FINISH: 8,
  FINISHED: 9,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

export const BATCH_CONSISTENT = 1;

export type Role = "source" | "failback";

export interface Hello {
  readonly version: number;
  readonly role: Role;
  readonly machineId: string;
  readonly disks: readonly { readonly id: string; readonly sizeBytes: number }[];
  readonly chunkSize: number;
}

export interface Welcome {
  readonly version: number;
  readonly timelineId: string;
  readonly lastTag: number | null;
  readonly lastSeq: number;
  readonly fresh: boolean;
  readonly windowBytes: number;
}

/** Extents travel on the wire as the store keeps them. */
export type WireExtent = Extent;

export interface Batch {
  readonly tag: number;
  readonly consistent: boolean;
  readonly extents: readonly WireExtent[];
}

export interface Ack {
  readonly tag: number;
  readonly seq: number;
}

export interface Hashes {
  readonly disk: number;
  readonly firstChunk: number;
  readonly hashes: BigUint64Array;
}

export interface HashDiff {
  readonly disk: number;
  readonly firstChunk: number;
  /** differs[i] is true when chunk firstChunk + i differs. */
  readonly differs: readonly boolean[];
}

export const ERROR_CODES = ["PROTOCOL", "AUTH", "STATE", "STORAGE", "INTERNAL"] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface WireErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
}

export type Frame =
  | { readonly type: typeof FrameType.HELLO; readonly body: Hello }
  | { readonly type: typeof FrameType.WELCOME; readonly body: Welcome }
  | { readonly type: typeof FrameType.BATCH; readonly body: Batch }
  | { readonly type: typeof FrameType.ACK; readonly body: Ack }
  | { readonly type: typeof FrameType.HASHES; readonly body: Hashes }
  | { readonly type: typeof FrameType.HASH_DIFF; readonly body: HashDiff }
  | { readonly type: typeof FrameType.ERROR; readonly body: WireErrorBody }
  | { readonly type: typeof FrameType.FINISH; readonly body: { readonly seq: number } }
  | { readonly type: typeof FrameType.FINISHED; readonly body: { readonly seq: number } };
