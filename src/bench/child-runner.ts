/**
 * Parent side of a phase: starts `node phase-child.js NAME`, sends the params over the IPC
 * channel and waits for the outcome. The child's stdout and stderr go to this process's
 * stderr, so `--json` output stays clean. Abort sends SIGTERM, then SIGKILL after a grace
 * period.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildReply, Outcome, Phase, PhaseResult } from "./phase.js";

const CHILD = fileURLToPath(new URL("./phase-child.js", import.meta.url));
const KILL_GRACE_MS = 3000;

export async function runPhase<P, R extends PhaseResult>(
  phase: Phase<P, R>,
  params: P,
  signal?: AbortSignal,
): Promise<Outcome<R>> {
  signal?.throwIfAborted();
  const child = spawn(process.execPath, ["--enable-source-maps", CHILD, phase.name], {
    stdio: ["ignore", 2, 2, "ipc"],
  });
  let reply: ChildReply<R> | undefined;
  child.on("message", (message: ChildReply<R>) => {
    reply ??= message;
  });
  let killer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    child.kill("SIGTERM");
    killer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
  };
  signal?.addEventListener("abort", stop);
  try {
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code, sig) => resolve({ code, signal: sig }));
    });
    child.send({ params });
    const { code, signal: killedBy } = await exit;
    signal?.throwIfAborted();
    if (reply === undefined) {
      throw new Error(
        `Bench phase ${phase.name} ended without a result (${killedBy === null ? `exit code ${code}` : `signal ${killedBy}`})`,
      );
    }
    if (!reply.ok) throw new Error(`Bench phase ${phase.name} failed: ${reply.error}`);
    return reply.outcome;
  } finally {
    signal?.removeEventListener("abort", stop);
    if (killer !== undefined) clearTimeout(killer);
  }
}
