/**
 * The floor under every peak RSS figure: a child that opens the store, lists its
 * timelines and closes it, doing no I/O on data. Node.js itself accounts for most of it.
 */
import { definePhase, type PhaseResult } from "../phase.js";
import { Meter } from "../proc-stats.js";
import { openStore } from "./store-access.js";

export interface IdleParams {
  readonly storeDir: string;
  readonly rollThresholdBytes: number | null;
}

export const idlePhase = definePhase("store.idle", async (p: IdleParams): Promise<PhaseResult> => {
  const meter = Meter.start();
  const store = await openStore(p.storeDir, p.rollThresholdBytes);
  try {
    store.list();
  } finally {
    await store.close();
  }
  return meter.read();
});
