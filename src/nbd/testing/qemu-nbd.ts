/** Starts qemu-nbd on a Unix socket for tests of our client against a real server. */
import { spawn, type ChildProcess } from "node:child_process";
import { access } from "node:fs/promises";
import { waitFor } from "../../common/wait-for.js";

export interface QemuNbd {
  readonly socketPath: string;
  stop(): Promise<void>;
}

/** `qemu-nbd -t -k SOCKET -x NAME -f FORMAT [extra] IMAGE`, ready once the socket exists. */
export async function startQemuNbd(
  image: string,
  socketPath: string,
  options: { exportName: string; format: "raw" | "qcow2"; extra?: readonly string[] },
): Promise<QemuNbd> {
  const args = [
    "-t",
    "-k",
    socketPath,
    "-x",
    options.exportName,
    "-f",
    options.format,
    ...(options.extra ?? []),
    image,
  ];
  const child: ChildProcess = spawn("qemu-nbd", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await waitFor(
      `qemu-nbd to listen on ${socketPath}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`qemu-nbd exited: ${stderr}`);
        return access(socketPath).then(() => true);
      },
      10_000,
      20,
    );
  } catch (err) {
    child.kill();
    throw err;
  }
  return {
    socketPath,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
