/**
 * Zero detection for the writers: which granules (clusters, grains, sectors runs) of a
 * piece hold any non-zero byte. Comparisons are memcmp against a static zero buffer,
 * without allocating views.
 */

const ZEROS = Buffer.alloc(64 * 1024);

/** True when buf[start, end) is all zeros. */
export function isZeroRange(buf: Buffer, start: number, end: number): boolean {
  for (let at = start; at < end; at += ZEROS.length) {
    const n = Math.min(ZEROS.length, end - at);
    if (buf.compare(ZEROS, 0, n, at, at + n) !== 0) return false;
  }
  return true;
}

export interface Run {
  readonly start: number;
  readonly end: number;
}

/**
 * Maximal runs of consecutive granules of `buf` that hold data, as byte ranges of `buf`;
 * the last granule may be shorter than `granule`.
 */
export function dataRuns(buf: Buffer, granule: number): Run[] {
  const runs: Run[] = [];
  let start = -1;
  for (let at = 0; at < buf.length; at += granule) {
    const end = Math.min(at + granule, buf.length);
    if (isZeroRange(buf, at, end)) {
      if (start >= 0) runs.push({ start, end: at });
      start = -1;
    } else if (start < 0) {
      start = at;
    }
  }
  if (start >= 0) runs.push({ start, end: buf.length });
  return runs;
}
