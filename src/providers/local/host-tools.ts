/**
 * The host programs the local provider runs, each with the Debian package that ships it,
 * so a missing one fails with an error that says what to install instead of an ENOENT
 * from deep inside a launch.
 */
import { access, constants } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";
import { UserError } from "../../common/errors.js";

export interface HostTool {
  readonly command: string;
  readonly debianPackage: string;
}

export const QEMU_SYSTEM: HostTool = { command: "qemu-system-x86_64", debianPackage: "qemu-system-x86" };
export const QEMU_IMG: HostTool = { command: "qemu-img", debianPackage: "qemu-utils" };
/** UEFI firmware: the code is shared read-only, each machine gets its own copy of the variables. */
export const OVMF = {
  code: "/usr/share/OVMF/OVMF_CODE_4M.fd",
  vars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
  debianPackage: "ovmf",
} as const;

/**
 * Absolute path of `tool` (`override` replaces the command: a path or a name looked up in
 * PATH). UserError naming the Debian package when it is not there.
 */
export async function findTool(tool: HostTool, override?: string): Promise<string> {
  const command = override ?? tool.command;
  const candidates = command.includes("/")
    ? [command]
    : (process.env["PATH"] ?? "")
        .split(delimiter)
        .filter((dir) => isAbsolute(dir))
        .map((dir) => join(dir, command));
  for (const path of candidates) {
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // not here: try the next directory
    }
  }
  throw new UserError(
    `${command} is not installed: install the Debian package ${tool.debianPackage} (apt-get install ${tool.debianPackage})`,
    422,
  );
}

/** Throws a UserError naming the package when `path` (a firmware or data file) is missing. */
export async function requireFile(path: string, debianPackage: string): Promise<string> {
  try {
    await access(path, constants.R_OK);
    return path;
  } catch (err) {
    throw new UserError(
      `${path} is missing: install the Debian package ${debianPackage} (apt-get install ${debianPackage})`,
      422,
      { cause: err },
    );
  }
}
