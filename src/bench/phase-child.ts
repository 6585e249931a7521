/**
 * Child side of a phase: `node dist/bench/phase-child.js NAME`, params over IPC. Runs the
 * phase, then replies with its result, this process's peak RSS (VmHWM) and the peaks of its
 * JS heap and buffers (sampled), and exits. SIGTERM aborts the phase's signal.
 */
import { errorMessage } from "../common/errors.js";
import type { ChildReply, PhaseResult } from "./phase.js";
import { PHASES } from "./phases.js";
import { peakRss } from "./proc-stats.js";

const controller = new AbortController();
process.once("SIGTERM", () => controller.abort(new Error("Bench phase stopped by SIGTERM")));

const name = process.argv[2] ?? "";
let peakHeapUsedBytes = 0;
let peakArrayBuffersBytes = 0;
const sampleMemory = (): void => {
  const usage = process.memoryUsage();
  peakHeapUsedBytes = Math.max(peakHeapUsedBytes, usage.heapUsed);
  peakArrayBuffersBytes = Math.max(peakArrayBuffersBytes, usage.arrayBuffers);
};
setInterval(sampleMemory, 50).unref();
process.once("message", (message: { params: unknown }) => {
  void run(message.params).then((reply) =>
    process.send?.(reply, undefined, undefined, () => {
      process.exit(reply.ok ? 0 : 1);
    }),
  );
});

async function run(params: unknown): Promise<ChildReply<PhaseResult>> {
  const phase = PHASES.get(name);
  if (phase === undefined) {
    return { ok: false, error: `No bench phase named ${JSON.stringify(name)}: see src/bench/phases.ts` };
  }
  try {
    const result = await phase.run(params as never, controller.signal);
    sampleMemory();
    const outcome = { ...result, peakRssBytes: peakRss() ?? 0, peakHeapUsedBytes, peakArrayBuffersBytes };
    return { ok: true, outcome };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : errorMessage(err) };
  }
}
