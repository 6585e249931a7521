/**
 * Provider `export`: a launch writes each disk of the PIT (read through its branch) as an
 * image file `<outDir>/<machine>-<mode>-<time>/<disk>.<ext>` in the launch's format (raw
 * by default; qcow2, fixed or dynamic VHD, stream-optimized VMDK: formats/ and
 * docs/image-formats.md). The machine is "ready" once every image is written, fsync'd and
 * under its final name; a launch that fails or is aborted removes its directory. The
 * images are the launched machine's disks: whatever runs from them writes to them.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { UserError, errorMessage } from "../../common/errors.js";
import { DEFAULT_IMAGE_FORMAT } from "../image-format.js";
import type { LaunchRequest, LaunchedTarget, Provider } from "../provider.js";
import { timelineSource } from "./formats/disk-source.js";
import { imageExtension } from "./formats/image-writers.js";
import { writeImage } from "./formats/write-image.js";

export class ExportProvider implements Provider {
  readonly name = "export";

  async launch(req: LaunchRequest): Promise<LaunchedTarget> {
    const format = req.format ?? DEFAULT_IMAGE_FORMAT;
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const dir = join(req.outDir, `${req.machineName}-${req.mode}-${stamp}`);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new UserError(
        `Cannot create the export directory ${dir}: ${errorMessage(err)}; choose a writable --out directory`,
        400,
        { cause: err },
      );
    }
    const disks = req.timeline.info.disks;
    const total = disks.reduce((s, d) => s + d.sizeBytes, 0);
    let before = 0;
    const paths: string[] = [];
    try {
      for (const [i, disk] of disks.entries()) {
        const path = join(dir, `${disk.id}.${imageExtension(format)}`);
        const done = before;
        await writeImage(format, timelineSource(req.timeline, i, req.seq), path, {
          ...(req.signal === undefined ? {} : { signal: req.signal }),
          onProgress: (n) => req.onProgress?.(done + n, total),
        });
        before += disk.sizeBytes;
        paths.push(path);
      }
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return { ref: dir, disks: paths };
  }

  async terminate(target: LaunchedTarget): Promise<void> {
    await rm(target.ref, { recursive: true, force: true });
  }
}
