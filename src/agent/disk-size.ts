/**
 * Size of a source disk: a regular file's length, or a block device's size read from
 * sysfs (Node cannot issue BLKGETSIZE64). Sizes must be multiples of 4096 bytes.
 */
import { readFile, stat } from "node:fs/promises";

export async function diskSize(path: string): Promise<number> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new Error(`Cannot open disk ${path}: ${(err as Error).message}`, { cause: err });
  }
  let size: number;
  if (st.isFile()) size = st.size;
  else if (st.isBlockDevice()) {
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    const sectors = Number((await readFile(`/sys/dev/block/${major}:${minor}/size`, "utf8")).trim());
    size = sectors * 512;
  } else throw new Error(`Disk ${path} is neither a file nor a block device`);
  if (size <= 0 || size % 4096 !== 0)
    throw new Error(
      `Disk ${path} is ${size} bytes: lifeboat replicates disks whose size is a positive multiple of 4096`,
    );
  return size;
}
