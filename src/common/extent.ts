/**
 * One extent of a write batch, the unit both the wire protocol and the staging store speak:
 * `length` bytes of disk `disk` (an index into the machine's disks) at `offset`, either
 * data (`data.length === length`) or zeros (no data carried). Offsets and lengths are
 * multiples of 4096.
 */
export type Extent =
  | {
      readonly disk: number;
      readonly offset: number;
      readonly length: number;
      readonly kind: "data";
      readonly data: Buffer;
    }
  | { readonly disk: number; readonly offset: number; readonly length: number; readonly kind: "zero" };
