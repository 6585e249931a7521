/**
 * The VHD hard disk footer (Microsoft Virtual Hard Disk Image Format Specification): 512
 * big-endian bytes at the end of every VHD, and a copy at the start of a dynamic one. Holds
 * the size, the CHS geometry computed by the spec's algorithm, the disk type and a
 * one's-complement checksum.
 *
 * Creator application "win ": readers disagree on whether the disk size is the footer's
 * current size or the CHS product (which is smaller for most sizes). Hyper-V and Azure use
 * the current size; qemu before 10.0 uses the CHS product unless the creator is one of a
 * few it knows ("win ", "qem2", "d2v ", ...). With "win " every reader sees the current
 * size, which is what we write.
 */
import { randomBytes } from "node:crypto";

export const VHD_FOOTER_BYTES = 512;
export const VHD_SECTOR = 512;
/** 0xFFFFFFFF'FFFFFFFF: "no next structure", the data offset of a fixed disk. */
export const VHD_NO_OFFSET = 0xffff_ffff_ffff_ffffn;

export type VhdDiskType = "fixed" | "dynamic";

export interface ChsGeometry {
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
}

/** The spec's CHS algorithm (appendix "CHS Calculation"), from a sector count. */
export function chsGeometry(totalSectorsIn: number): ChsGeometry {
  const totalSectors = Math.min(totalSectorsIn, 65535 * 16 * 255);
  let sectorsPerTrack: number;
  let heads: number;
  let cylinderTimesHeads: number;
  if (totalSectors >= 65535 * 16 * 63) {
    sectorsPerTrack = 255;
    heads = 16;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
  } else {
    sectorsPerTrack = 17;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    heads = Math.max(4, Math.floor((cylinderTimesHeads + 1023) / 1024));
    if (cylinderTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
    if (cylinderTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
  }
  return { cylinders: Math.floor(cylinderTimesHeads / heads), heads, sectorsPerTrack };
}

/** One's complement of the byte sum of `buf`, the 4 bytes at `checksumAt` counted as zero. */
export function vhdChecksum(buf: Buffer, checksumAt: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) {
    if (i < checksumAt || i >= checksumAt + 4) sum += buf[i] ?? 0;
  }
  return ~sum >>> 0;
}

/** Seconds since 2000-01-01T00:00:00Z, the VHD epoch. */
export function vhdTimestamp(now: Date = new Date()): number {
  return Math.max(0, Math.floor((now.getTime() - Date.UTC(2000, 0, 1)) / 1000)) >>> 0;
}

export interface VhdFooterFields {
  /** Current (and original) size in bytes: a multiple of 512. */
  readonly sizeBytes: number;
  readonly type: VhdDiskType;
  readonly uniqueId?: Buffer;
  readonly timestamp?: number;
}

const CHECKSUM_AT = 64;

export function vhdFooter(f: VhdFooterFields): Buffer {
  const b = Buffer.alloc(VHD_FOOTER_BYTES);
  b.write("conectix", 0, "latin1");
  b.writeUInt32BE(0x0000_0002, 8); // features: the reserved bit the spec says is always set
  b.writeUInt32BE(0x0001_0000, 12); // file format version 1.0
  // Data offset: where the dynamic disk header is; none for a fixed disk.
  b.writeBigUInt64BE(f.type === "fixed" ? VHD_NO_OFFSET : BigInt(VHD_FOOTER_BYTES), 16);
  b.writeUInt32BE(f.timestamp ?? vhdTimestamp(), 24);
  b.write("win ", 28, "latin1"); // creator application: see the module comment
  b.writeUInt32BE(0x0001_0000, 32); // creator version: our writer's layout version, 1.0
  b.write("Wi2k", 36, "latin1"); // creator host OS
  b.writeBigUInt64BE(BigInt(f.sizeBytes), 40); // original size
  b.writeBigUInt64BE(BigInt(f.sizeBytes), 48); // current size
  const chs = chsGeometry(Math.floor(f.sizeBytes / VHD_SECTOR));
  b.writeUInt16BE(chs.cylinders, 56);
  b.writeUInt8(chs.heads, 58);
  b.writeUInt8(chs.sectorsPerTrack, 59);
  b.writeUInt32BE(f.type === "fixed" ? 2 : 3, 60);
  (f.uniqueId ?? randomBytes(16)).copy(b, 68, 0, 16);
  // Saved state (byte 84) and the reserved 427 bytes stay zero.
  b.writeUInt32BE(vhdChecksum(b, CHECKSUM_AT), CHECKSUM_AT);
  return b;
}

export interface ParsedVhdFooter {
  readonly cookie: string;
  readonly currentSize: number;
  readonly diskType: number;
  readonly geometry: ChsGeometry;
  readonly checksumOk: boolean;
}

/** Reads back the fields tests and tools check. */
export function parseVhdFooter(b: Buffer): ParsedVhdFooter {
  return {
    cookie: b.toString("latin1", 0, 8),
    currentSize: Number(b.readBigUInt64BE(48)),
    diskType: b.readUInt32BE(60),
    geometry: { cylinders: b.readUInt16BE(56), heads: b.readUInt8(58), sectorsPerTrack: b.readUInt8(59) },
    checksumOk: b.readUInt32BE(CHECKSUM_AT) === vhdChecksum(b, CHECKSUM_AT),
  };
}
