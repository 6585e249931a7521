/**
 * Append-only typed arrays for building layer indexes without an object per entry: the
 * roll and compaction collect frames, intervals and versions in these, a few bytes each.
 */

type Typed = Float64Array | Uint32Array | Uint16Array | Uint8Array;

export class Growable<A extends Typed> {
  private buf: A;
  length = 0;

  constructor(
    private readonly make: (n: number) => A,
    initial = 256,
  ) {
    this.buf = make(initial);
  }

  push(value: number): number {
    if (this.length === this.buf.length) {
      const next = this.make(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length] = value;
    return this.length++;
  }

  get(i: number): number {
    return this.buf[i] ?? 0;
  }

  set(i: number, value: number): void {
    this.buf[i] = value;
  }

  /** The values so far, copied into an array of their exact length. */
  toArray(): A {
    return this.buf.slice(0, this.length) as A;
  }
}

export const f64 = (): Growable<Float64Array> => new Growable((n) => new Float64Array(n));
export const u32 = (): Growable<Uint32Array> => new Growable((n) => new Uint32Array(n));
export const u8 = (): Growable<Uint8Array> => new Growable((n) => new Uint8Array(n));
