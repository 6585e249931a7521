/**
 * For the cloud backends' tests: runs a local emulator (s3rver, Azurite) as a child
 * process on a free loopback port, waits until it accepts connections, and stops it.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer, connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export interface Emulator {
  readonly port: number;
  stop(): Promise<void>;
}

/** A port that was free a moment ago (the emulator binds it next; a clash fails loudly). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("No TCP port was assigned");
  return address.port;
}

/** Starts `command args` (args may use the port) and resolves once the port accepts connections. */
export async function startEmulator(
  name: string,
  command: string,
  args: (port: number) => string[],
  timeoutMs = 20_000,
): Promise<Emulator> {
  const port = await freePort();
  const child = spawn(command, args(port), { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + timeoutMs;
  while (!(await accepts(port))) {
    if (exited(child) || Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not start on port ${port}: ${stderr.trim() || "no output"}`);
    }
    await sleep(100);
  }
  return { port, stop };
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function accepts(port: number): Promise<boolean> {
  const socket = connect(port, "127.0.0.1");
  try {
    await once(socket, "connect");
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}
