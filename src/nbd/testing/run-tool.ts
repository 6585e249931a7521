/** Runs the Debian NBD tools (qemu-img, nbdinfo, fio, ...) from tests. */
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface ToolResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cmd args`; rejects with its stderr when it fails or outlives `timeoutMs`. */
export async function runTool(cmd: string, args: readonly string[], timeoutMs = 60_000): Promise<ToolResult> {
  try {
    const { stdout, stderr } = await execFileAsync(cmd, [...args], {
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { stdout, stderr };
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`, {
      cause: err,
    });
  }
}

/** Whether every command is on PATH (tests skip with a reason otherwise). */
export function haveTools(...cmds: string[]): boolean {
  return cmds.every((c) => spawnSync("sh", ["-c", `command -v ${c}`]).status === 0);
}

/**
 * Why a test that puts ext4 on an NBD export through nbdfuse and a loop device cannot run
 * here (it needs root and those tools; CI has both), or false when it can.
 */
export function ext4OverNbdSkipReason(): string | false {
  if (process.getuid?.() !== 0) return "needs root for losetup and mount";
  if (!haveTools("nbdfuse", "losetup", "mkfs.ext4", "e2fsck", "mount", "umount"))
    return "nbdfuse or util-linux/e2fsprogs missing";
  return false;
}

/** The NBD URI qemu and libnbd take for export `name` on a Unix socket. */
export function nbdUnixUri(name: string, socketPath: string): string {
  return `nbd+unix:///${encodeURIComponent(name)}?socket=${socketPath}`;
}
