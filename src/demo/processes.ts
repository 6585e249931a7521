/**
 * Child processes of the drill: `lifeboat up`, `lifeboat agent`, `lifeboat failback-client`
 * run as real processes of the same command an operator uses, each logging to a file in
 * the drill directory. Stopping them is a signal, as on a real machine.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

export const LIFEBOAT_BIN = fileURLToPath(new URL("../../bin/lifeboat.js", import.meta.url));

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
}

export function startLifeboat(
  name: string,
  args: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv = {},
): Proc {
  const fd = openSync(logFile, "a");
  const child = spawn(process.execPath, [LIFEBOAT_BIN, ...args], {
    stdio: ["ignore", fd, fd],
    env: { ...process.env, ...env },
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { name, child, logFile, exited };
}

/** Stops a process: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(p: Proc, signal: NodeJS.Signals = "SIGTERM", graceMs = 5000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), graceMs);
  await p.exited;
  clearTimeout(timer);
}

/** The last lines of a process log, for error messages. */
export async function tail(p: Proc, lines = 15): Promise<string> {
  try {
    return (await readFile(p.logFile, "utf8")).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
