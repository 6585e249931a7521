/**
 * Source disks for the drill: ext4 images built with `mke2fs -d` from a folder of generated
 * files (text and random data), changed later with `debugfs -w` while the agent
 * replicates them, and checked with `e2fsck -fn` and `debugfs`. Real files, real ext4.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

const WORDS =
  "replica standby failover snapshot journal block sector lag throughput recovery cutover drill".split(" ");

function text(bytes: number, seed: number): string {
  const out: string[] = [];
  let n = 0;
  let i = seed;
  while (n < bytes) {
    const w = WORDS[(i = (i * 1103515245 + 12345) % 2147483648) % WORDS.length]!;
    out.push(w);
    n += w.length + 1;
  }
  return out.join(" ").slice(0, bytes);
}

/** Writes `count` files (text and random) into `dir`; returns their names. */
export async function generateFiles(
  dir: string,
  count: number,
  bytesEach: number,
  seed: number,
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = i % 2 === 0 ? `notes-${i}.txt` : `blob-${i}.bin`;
    await writeFile(join(dir, name), i % 2 === 0 ? text(bytesEach, seed + i) : randomBytes(bytesEach));
    names.push(name);
  }
  return names;
}

export async function makeExt4(
  image: string,
  sizeMiB: number,
  fromDir: string,
  label: string,
): Promise<void> {
  await run("mke2fs", ["-q", "-F", "-t", "ext4", "-L", label, "-d", fromDir, image, `${sizeMiB}M`]);
}

/** Runs one debugfs request; debugfs exits 0 on failure, so any stderr line but its banner is an error. */
async function debugfs(image: string, request: string, write: boolean): Promise<Buffer> {
  const args = [...(write ? ["-w"] : []), "-R", request, image];
  const { stdout, stderr } = await run("debugfs", args, { encoding: "buffer", maxBuffer: 256 * 1024 * 1024 });
  const errors = stderr
    .toString("utf8")
    .split("\n")
    .filter((l) => l.trim() !== "" && !/^debugfs \d/.test(l));
  if (errors.length > 0) throw new Error(`debugfs ${request} on ${image} failed: ${errors.join("; ")}`);
  return stdout;
}

/** Writes a host file into the image at `/name` (replacing it), with debugfs. */
export async function writeIntoImage(image: string, hostFile: string, name: string): Promise<void> {
  await debugfs(image, `rm /${name}`, true).catch(() => undefined);
  await debugfs(image, `write ${hostFile} /${name}`, true);
}

/** Reads `/name` from the image with debugfs. */
export async function readFromImage(image: string, name: string): Promise<Buffer> {
  return debugfs(image, `cat /${name}`, false);
}

/** `e2fsck -fn`: true when the filesystem is clean. */
export async function fsckClean(image: string): Promise<{ clean: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run("e2fsck", ["-fn", image]);
    return { clean: true, output: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { clean: false, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }))
    h.update(chunk as Buffer);
  return h.digest("hex");
}
