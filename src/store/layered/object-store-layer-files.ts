/**
 * LayerFiles (layer-files.ts) in an ObjectStore (src/store/object-store/): a timeline's
 * layer files are the objects `timelines/<id>/<name>`. `put` hands the local file to the
 * store ({file} body: the local backend hard-links it on the same file system, S3 and
 * Azure upload it); "move" then removes the local file. Reads are ranged reads of the
 * object. The journal and the manifest stay in the timeline's local directory.
 */
import { rm } from "node:fs/promises";
import { CorruptionError } from "../../common/errors.js";
import { ObjectNotFoundError, type ObjectStore } from "../object-store/object-store.js";
import type { LayerFile, LayerFiles } from "./layer-files.js";

export class ObjectStoreLayerFiles implements LayerFiles {
  readonly description: string;

  constructor(
    private readonly store: ObjectStore,
    /** Key prefix, ending in "/": `timelines/<id>/`. */
    private readonly prefix: string,
  ) {
    this.description = `${store.description} ${prefix}`;
  }

  /** The prefix of a timeline's layer files. */
  static prefixOf(timelineId: string): string {
    return `timelines/${timelineId}/`;
  }

  async open(name: string, signal?: AbortSignal): Promise<LayerFile> {
    const key = this.prefix + name;
    const where = `${key} in ${this.store.description}`;
    const info = await this.store.head(key, signal);
    if (info === undefined) throw new CorruptionError(`Layer file ${where} is missing`);
    const store = this.store;
    return {
      name: where,
      size: info.size,
      async read(target: Buffer, position: number): Promise<void> {
        let bytes: Buffer;
        try {
          bytes = await store.read(key, position, target.length);
        } catch (err) {
          if (err instanceof ObjectNotFoundError)
            throw new CorruptionError(`Layer file ${where} is missing`, { cause: err });
          throw err;
        }
        if (bytes.length !== target.length) {
          throw new CorruptionError(
            `Layer file ${where} is shorter than expected: wanted ${target.length} bytes at ${position}, got ${bytes.length}`,
          );
        }
        bytes.copy(target);
      },
      close: () => Promise.resolve(),
    };
  }

  async put(name: string, localPath: string, how: "link" | "move", signal?: AbortSignal): Promise<void> {
    await this.store.put(this.prefix + name, { file: localPath }, signal);
    if (how === "move") await rm(localPath, { force: true });
  }

  async list(signal?: AbortSignal): Promise<string[]> {
    const objects = await this.store.list(this.prefix, signal);
    return objects.map((o) => o.key.slice(this.prefix.length)).filter((n) => !n.includes("/"));
  }

  delete(name: string, signal?: AbortSignal): Promise<void> {
    return this.store.delete(this.prefix + name, signal);
  }

  /** Deletes every object of the timeline (after the timeline itself was dropped). */
  async deleteAll(signal?: AbortSignal): Promise<void> {
    for (const name of await this.list(signal)) await this.delete(name, signal);
  }
}
