import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LayeredTimeline } from "./layered-timeline.js";
import { crashBatch, digestAt, openCrashStore, rng, withTempDir } from "./test-support.js";

const WRITER = fileURLToPath(new URL("./crash-writer.js", import.meta.url));
const THRESHOLD = 96 * 1024;
const ROUNDS = 50;

interface Round {
  readonly acked: Map<number, number>;
  readonly pits: Map<number, string>;
  readonly drops: Set<number>;
}

/** Runs the writer until `acks` acknowledgements arrive (or it dies), then SIGKILLs it. */
function runAndKill(dir: string, firstId: number, acks: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dir, String(firstId), String(THRESHOLD)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const round: Round = { acked: new Map(), pits: new Map(), drops: new Set() };
    let pending = "";
    let stderr = "";
    let killed = false;
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on("data", (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const [word, a, b] = line.split(" ");
        if (word === "ack") round.acked.set(Number(a), Number(b));
        else if (word === "pit") round.pits.set(Number(a), b ?? "");
        else if (word === "drop") round.drops.add(Number(a));
      }
      if (!killed && round.acked.size >= acks) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal === "SIGKILL") resolve(round);
      else reject(new Error(`crash writer exited with ${code}: ${stderr}`));
    });
  });
}

test(`LayeredStore (encrypted) keeps every acknowledged batch and every kept PIT across ${ROUNDS} SIGKILLs during writes, rolls, compaction and GC`, async () => {
  await withTempDir(async (dir) => {
    const random = rng(2026);
    const acked = new Map<number, number>();
    const digests = new Map<number, string>();
    const drops = new Set<number>();
    let verifiedPits = 0;
    let compactedFiles = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const firstId = round * 1_000_000 + 1;
      const got = await runAndKill(dir, firstId, 20 + Math.floor(random() * 150));
      assert.ok(got.acked.size > 0, `round ${round} acknowledged nothing`);
      for (const [id, seq] of got.acked) acked.set(id, seq);
      for (const [seq, digest] of got.pits) digests.set(seq, digest);
      for (const seq of got.drops) drops.add(seq);

      const store = await openCrashStore(dir, THRESHOLD);
      const t = store.timeline("crash") as LayeredTimeline;
      const maxSeq = Math.max(...acked.values());
      assert.ok(t.lastSeq() >= maxSeq, `round ${round}: lastSeq ${t.lastSeq()} < acknowledged ${maxSeq}`);
      assert.ok((t.lastTag() ?? 0) >= Math.max(...got.acked.keys()));
      // Every PIT the writer recorded is still there unless it asked to drop it, and reads as recorded.
      const present = new Set(t.pits().map((p) => p.seq));
      for (const [seq, digest] of digests) {
        if (!present.has(seq)) {
          assert.ok(drops.has(seq), `round ${round}: PIT ${seq} vanished`);
          digests.delete(seq);
          continue;
        }
        assert.equal(
          await digestAt(t, seq),
          digest,
          `round ${round}: PIT ${seq} reads differently than when cut`,
        );
        verifiedPits++;
      }
      // Every acknowledged batch reads back at its seq, unless retention gave that seq up.
      for (const [id, seq] of acked) {
        if (!t.readable(seq)) {
          acked.delete(id);
          continue;
        }
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
      const names = await readdir(join(dir, "store", "timelines", "crash"));
      compactedFiles += names.filter((n) => /-[0-9a-f]{8}\.pack$/.test(n)).length;
      await store.close();
    }
    assert.ok(verifiedPits > 100, `only ${verifiedPits} PIT verifications`);
    assert.ok(compactedFiles > 0, "no compacted layer was ever seen: the test did not exercise compaction");
  });
});
