import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { LayeredStore } from "./layered-store.js";
import type { LayeredTimeline } from "./layered-timeline.js";
import { crashBatch, rng, withTempDir } from "./test-support.js";

const WRITER = fileURLToPath(new URL("./crash-writer.js", import.meta.url));
const THRESHOLD = 96 * 1024;

/** Runs the writer until `acks` acknowledgements arrive (or it dies), then SIGKILLs it. */
function runAndKill(dir: string, firstId: number, acks: number): Promise<Map<number, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dir, String(firstId), String(THRESHOLD)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const acked = new Map<number, number>();
    let pending = "";
    let stderr = "";
    let killed = false;
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on("data", (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const [word, id, seq] = line.split(" ");
        if (word === "ack") acked.set(Number(id), Number(seq));
      }
      if (!killed && acked.size >= acks) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal === "SIGKILL") resolve(acked);
      else reject(new Error(`crash writer exited with ${code}: ${stderr}`));
    });
  });
}

test("LayeredStore keeps every acknowledged batch across SIGKILL at random moments", async () => {
  await withTempDir(async (dir) => {
    const random = rng(2026);
    const acked = new Map<number, number>();
    let rolls = 0;
    for (let round = 0; round < 12; round++) {
      const firstId = round * 1_000_000 + 1;
      const got = await runAndKill(dir, firstId, 20 + Math.floor(random() * 300));
      assert.ok(got.size > 0, `round ${round} acknowledged nothing`);
      for (const [id, seq] of got) acked.set(id, seq);

      const store = await LayeredStore.open(dir, { rollThresholdBytes: THRESHOLD });
      const t = store.timeline("crash") as LayeredTimeline;
      rolls = Math.max(rolls, t.stats().layers);
      const maxSeq = Math.max(...acked.values());
      assert.ok(t.lastSeq() >= maxSeq, `round ${round}: lastSeq ${t.lastSeq()} < acknowledged ${maxSeq}`);
      assert.ok((t.lastTag() ?? 0) >= Math.max(...got.keys()));
      for (const [id, seq] of acked) {
        for (const extent of crashBatch(id)) {
          const data = await t.read(extent.disk, extent.offset, extent.length, seq);
          const expected = extent.kind === "data" ? extent.data : Buffer.alloc(extent.length);
          assert.ok(
            data.equals(expected),
            `round ${round}: batch ${id} (seq ${seq}) disk ${extent.disk} differs`,
          );
        }
      }
      // The store keeps working after recovery.
      const extents = crashBatch(999_999_999 - round);
      const seq = await t.append(extents);
      assert.equal(seq, t.lastSeq());
      acked.set(999_999_999 - round, seq);
      await store.close();
    }
    assert.ok(acked.size > 200);
    assert.ok(rolls >= 2, `only ${rolls} layers: the test did not exercise rolling`);
  });
});
