/**
 * LayerFiles (layer-files.ts) in a local directory, the timeline's own: `put` is a hard
 * link or a rename followed by a directory fsync, so rolling a journal segment into an L0
 * layer and publishing a compacted layer copy no byte.
 */
import { link, open, readdir, rename, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError } from "../../common/errors.js";
import { fsyncDir, handleReader } from "./fs-util.js";
import type { LayerFile, LayerFiles } from "./layer-files.js";

export class LocalLayerFiles implements LayerFiles {
  readonly description: string;

  constructor(readonly dir: string) {
    this.description = `local:${dir}`;
  }

  async open(name: string): Promise<LayerFile> {
    const path = join(this.dir, name);
    let handle;
    try {
      handle = await open(path, "r");
    } catch (err) {
      throw new CorruptionError(`Cannot open layer file ${path}`, { cause: err });
    }
    try {
      const { size } = await handle.stat();
      return { name: path, size, ...handleReader(handle, path) };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async put(name: string, localPath: string, how: "link" | "move"): Promise<void> {
    const path = join(this.dir, name);
    if (how === "move") {
      await rename(localPath, path);
    } else {
      // A retried roll finds its earlier link: replace it (same inode, same bytes).
      await rm(path, { force: true });
      await link(localPath, path);
    }
    await fsyncDir(this.dir);
  }

  list(): Promise<string[]> {
    return readdir(this.dir);
  }

  async delete(name: string): Promise<void> {
    try {
      await unlink(join(this.dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}
