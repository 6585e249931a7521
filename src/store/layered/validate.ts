/**
 * Input checks shared by the timeline's calls. They run before anything is queued or
 * written, so a bad batch changes nothing; messages name the value and the limit.
 */
import { UserError } from "../../common/errors.js";
import { BLOCK_SIZE, type DiskSpec, type Extent } from "../staging-store.js";

export function checkDiskRange(
  disks: readonly DiskSpec[],
  disk: number,
  offset: number,
  length: number,
): void {
  const spec = Number.isInteger(disk) ? disks[disk] : undefined;
  if (spec === undefined) {
    throw new UserError(`Unknown disk index ${disk}: the timeline has ${disks.length} disk(s)`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % BLOCK_SIZE !== 0) {
    throw new UserError(`Offset ${offset} is not a non-negative multiple of ${BLOCK_SIZE}`);
  }
  if (!Number.isSafeInteger(length) || length < 0 || length % BLOCK_SIZE !== 0) {
    throw new UserError(`Length ${length} is not a non-negative multiple of ${BLOCK_SIZE}`);
  }
  if (offset + length > spec.sizeBytes) {
    throw new UserError(
      `Range ${offset}+${length} is beyond the end of disk ${disk} (${spec.id}, ${spec.sizeBytes} bytes)`,
    );
  }
}

export function validateExtents(disks: readonly DiskSpec[], extents: readonly Extent[]): void {
  extents.forEach((extent, i) => {
    checkDiskRange(disks, extent.disk, extent.offset, extent.length);
    if (extent.length === 0) throw new UserError(`Extent ${i} has length 0`);
    if (extent.kind === "data") {
      if (!Buffer.isBuffer(extent.data) || extent.data.length !== extent.length) {
        const got = Buffer.isBuffer(extent.data) ? extent.data.length : typeof extent.data;
        throw new UserError(`Extent ${i} data length ${got} does not match its length ${extent.length}`);
      }
    } else if ((extent as { kind: unknown }).kind !== "zero") {
      throw new UserError(`Extent ${i} has unknown kind ${String((extent as { kind: unknown }).kind)}`);
    }
  });
}

export function validateDisks(disks: readonly DiskSpec[]): void {
  if (disks.length === 0) throw new UserError("A timeline needs at least one disk");
  const ids = new Set<string>();
  for (const disk of disks) {
    if (typeof disk.id !== "string" || disk.id.length === 0)
      throw new UserError("A disk needs a non-empty id");
    if (ids.has(disk.id)) throw new UserError(`Duplicate disk id: ${disk.id}`);
    ids.add(disk.id);
    if (!Number.isSafeInteger(disk.sizeBytes) || disk.sizeBytes <= 0 || disk.sizeBytes % BLOCK_SIZE !== 0) {
      throw new UserError(
        `Disk ${disk.id} size ${disk.sizeBytes} is not a positive multiple of ${BLOCK_SIZE} bytes`,
      );
    }
  }
}

/** A seq a read, PIT or diff may name: an integer in [floor, lastSeq]. */
export function checkSeq(seq: number, floor: number, lastSeq: number, what: string): void {
  if (!Number.isSafeInteger(seq)) throw new UserError(`${what} ${seq} is not an integer`);
  if (seq > lastSeq) throw new UserError(`${what} ${seq} is beyond the last durable seq ${lastSeq}`);
  if (seq < floor) throw new UserError(`${what} ${seq} is below ${floor}, the first seq of this timeline`);
}
