/**
 * A decorator that watches an export's changes: it marks a DirtyMap (served as the
 * `lifeboat:dirty` metadata context) and passes every change to an ExportWriteHook before
 * the client's reply, which is where the intercept tracker queues writes for replication.
 * Reads, flush and base:allocation go to the wrapped backend.
 */
import type {
  ByteRange,
  ExportWriteHook,
  NbdExportBackend,
  StatusExtent,
  WriteZeroesOptions,
} from "./export-backend.js";
import type { DirtyMap } from "./dirty-map.js";

export const DIRTY_CONTEXT = "lifeboat:dirty";

export interface TrackedBackendOptions {
  readonly dirty?: DirtyMap;
  readonly hook?: ExportWriteHook;
  /** Name of the dirty-map context; `lifeboat:dirty` unless told. */
  readonly dirtyContext?: string;
}

export class TrackedBackend implements NbdExportBackend {
  readonly metaContexts: readonly string[];
  private readonly dirty: DirtyMap | undefined;
  private readonly hook: ExportWriteHook | undefined;
  private readonly dirtyContext: string;

  constructor(
    private readonly inner: NbdExportBackend,
    options: TrackedBackendOptions,
  ) {
    this.dirty = options.dirty;
    this.hook = options.hook;
    this.dirtyContext = options.dirtyContext ?? DIRTY_CONTEXT;
    if (this.dirty && this.dirty.size !== inner.size)
      throw new RangeError(`Dirty map covers ${this.dirty.size} bytes, the export has ${inner.size}`);
    this.metaContexts = this.dirty ? [...inner.metaContexts, this.dirtyContext] : inner.metaContexts;
  }

  get size(): number {
    return this.inner.size;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  get description(): string | undefined {
    return this.inner.description;
  }
  get multiConn(): boolean {
    return this.inner.multiConn;
  }
  get fastZero(): boolean {
    return this.inner.fastZero;
  }

  read(offset: number, into: Buffer): Promise<readonly ByteRange[] | null> {
    return this.inner.read(offset, into);
  }

  async write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    await this.inner.write(offset, data, fua);
    this.dirty?.mark(offset, data.length);
    if (this.hook) await this.hook.changed({ kind: "data", offset, data });
  }

  async flush(): Promise<void> {
    await this.inner.flush();
    if (this.hook?.flushed) await this.hook.flushed();
  }

  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    await this.inner.trim(offset, length, fua);
    await this.zeroed(offset, length);
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    await this.inner.writeZeroes(offset, length, options);
    await this.zeroed(offset, length);
  }

  async blockStatus(offset: number, length: number, context: string): Promise<readonly StatusExtent[]> {
    if (this.dirty && context === this.dirtyContext) return this.dirty.extents(offset, length);
    return this.inner.blockStatus(offset, length, context);
  }

  async cache(offset: number, length: number): Promise<void> {
    if (this.inner.cache) await this.inner.cache(offset, length);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async zeroed(offset: number, length: number): Promise<void> {
    this.dirty?.mark(offset, length);
    if (this.hook) await this.hook.changed({ kind: "zero", offset, length });
  }
}
