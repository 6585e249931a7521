/**
 * Provider `export`: a launch writes each disk of the PIT (read through its branch) as a
 * sparse raw image `<outDir>/<machine>-<mode>-<time>/<disk>.img`; zero ranges are left as
 * holes. The machine is "ready" once every image is written and fsync'd. The images are
 * the launched machine's disks: whatever runs from them writes to them.
 */
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { isZero } from "../../common/chunk-hash.js";
import type { LaunchRequest, LaunchedTarget, Provider } from "../provider.js";

const PIECE = 4 * 1024 * 1024;

export class ExportProvider implements Provider {
  readonly name = "export";

  async launch(req: LaunchRequest): Promise<LaunchedTarget> {
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const dir = join(req.outDir, `${req.machineName}-${req.mode}-${stamp}`);
    await mkdir(dir, { recursive: true });
    const disks = req.timeline.info.disks;
    const total = disks.reduce((s, d) => s + d.sizeBytes, 0);
    let done = 0;
    const paths: string[] = [];
    for (const [i, disk] of disks.entries()) {
      const path = join(dir, `${disk.id}.img`);
      const fh = await open(path, "wx");
      try {
        await fh.truncate(disk.sizeBytes);
        for (let at = 0; at < disk.sizeBytes; at += PIECE) {
          req.signal?.throwIfAborted();
          const n = Math.min(PIECE, disk.sizeBytes - at);
          const buf = await req.timeline.read(i, at, n, req.seq, req.signal);
          if (!isZero(buf)) await fh.write(buf, 0, n, at);
          done += n;
          req.onProgress?.(done, total);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      paths.push(path);
    }
    return { ref: dir, disks: paths };
  }

  async terminate(target: LaunchedTarget): Promise<void> {
    await rm(target.ref, { recursive: true, force: true });
  }
}
