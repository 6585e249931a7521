/**
 * The fixed structures of a stream-optimized VMDK (VMware Virtual Disk Format 5.0): the
 * sparse extent header, the embedded text descriptor and the 512-byte metadata markers.
 * All numbers are little-endian; offsets and sizes are in 512-byte sectors.
 */
import { randomBytes } from "node:crypto";

export const SECTOR = 512;
export const GRAIN_SECTORS = 128; // 64 KiB grains
export const GTES_PER_GT = 512; // one grain table covers 32 MiB
export const DESCRIPTOR_AT = 1;
/** Room for the descriptor: 20 sectors, as much as qemu rewrites in place when it updates the CID. */
export const DESCRIPTOR_SECTORS = 20;
/** Header and descriptor, padded to a grain: the first grain starts at 64 KiB. */
export const OVERHEAD_SECTORS = 128;
export const GD_AT_END = 0xffff_ffff_ffff_ffffn;

export const MARKER_EOS = 0;
export const MARKER_GT = 1;
export const MARKER_GD = 2;
export const MARKER_FOOTER = 3;

const FLAG_NL_DETECT = 1 << 0;
const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;
const COMPRESSION_DEFLATE = 1;

/** The sparse extent header; `gdOffset` is GD_AT_END at the start of the file, the real one in the footer. */
export function vmdkHeader(capacitySectors: number, gdOffset: bigint): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.write("KDMV", 0, "latin1"); // magic 0x564d444b, little-endian
  b.writeUInt32LE(3, 4); // version 3: stream-optimized
  b.writeUInt32LE(FLAG_NL_DETECT | FLAG_COMPRESSED | FLAG_MARKERS, 8);
  b.writeBigUInt64LE(BigInt(capacitySectors), 12);
  b.writeBigUInt64LE(BigInt(GRAIN_SECTORS), 20);
  b.writeBigUInt64LE(BigInt(DESCRIPTOR_AT), 28);
  b.writeBigUInt64LE(BigInt(DESCRIPTOR_SECTORS), 36);
  b.writeUInt32LE(GTES_PER_GT, 44);
  // rgdOffset (48) stays zero: no redundant grain directory in a stream-optimized extent.
  b.writeBigUInt64LE(gdOffset, 56);
  b.writeBigUInt64LE(BigInt(OVERHEAD_SECTORS), 64);
  // uncleanShutdown (72) is 0; then the four newline-detection characters.
  b.write("\n \r\n", 73, "latin1");
  b.writeUInt16LE(COMPRESSION_DEFLATE, 77);
  return b;
}

/** A metadata marker: `sectors` of metadata of `type` follow it. */
export function vmdkMarker(sectors: number, type: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.writeBigUInt64LE(BigInt(sectors), 0);
  // size (8) is 0 for metadata markers.
  b.writeUInt32LE(type, 12);
  return b;
}

/** The 12 bytes in front of a compressed grain: its first sector on the disk and the compressed length. */
export function grainMarker(lba: number, compressedBytes: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeBigUInt64LE(BigInt(lba), 0);
  b.writeUInt32LE(compressedBytes, 8);
  return b;
}

/** The embedded descriptor, padded to DESCRIPTOR_SECTORS; `fileName` is the image's own name. */
export function vmdkDescriptor(capacitySectors: number, fileName: string): Buffer {
  const name = fileName.replace(/["\\\r\n\0]/g, "_");
  const cylinders = Math.max(1, Math.min(65535, Math.floor(capacitySectors / (255 * 63))));
  const text = [
    "# Disk DescriptorFile",
    "version=1",
    `CID=${randomBytes(4).toString("hex")}`,
    "parentCID=ffffffff",
    'createType="streamOptimized"',
    "",
    "# Extent description",
    `RW ${capacitySectors} SPARSE "${name}"`,
    "",
    "# The Disk Data Base",
    "#DDB",
    "",
    'ddb.adapterType = "lsilogic"',
    `ddb.geometry.cylinders = "${cylinders}"`,
    'ddb.geometry.heads = "255"',
    'ddb.geometry.sectors = "63"',
    `ddb.longContentID = "${randomBytes(16).toString("hex")}"`,
    'ddb.virtualHWVersion = "4"',
    "",
  ].join("\n");
  const b = Buffer.alloc(DESCRIPTOR_SECTORS * SECTOR);
  if (Buffer.byteLength(text) > b.length) throw new RangeError(`VMDK descriptor too long for ${fileName}`);
  b.write(text, 0, "utf8");
  return b;
}
