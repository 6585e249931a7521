import assert from "node:assert/strict";
import test from "node:test";
import { UserError } from "../common/errors.js";
import { DEFAULT_RETENTION_POLICY } from "../store/retention/retention-policy.js";
import { LayeredStore } from "../store/layered/layered-store.js";
import type { LayeredTimeline } from "../store/layered/layered-timeline.js";
import { pattern, withTempDir } from "../store/layered/test-support.js";
import { applyRetention, nameSnapshot, unnameSnapshot } from "./pit-retention.js";

const BLOCK = 4096;
const HOUR = 3600_000;

test("applyRetention thins PITs by the policy, keeps named snapshots and the newest, and compaction frees the space", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir, { rollThresholdBytes: 64 * 1024 });
    try {
      const t = (await store.createTimeline("m", [
        { id: "disk0", sizeBytes: 64 * BLOCK },
      ])) as LayeredTimeline;
      // 40 PITs within a second or so: one 10-minute bucket once they are past the keep-all hour.
      for (let i = 0; i < 40; i++) {
        await t.append([
          { disk: 0, offset: 0, length: 16 * BLOCK, kind: "data", data: pattern(i + 1, 16 * BLOCK) },
        ]);
        await t.cutPit();
      }
      const pits = t.pits();
      const named = await nameSnapshot(t, "before upgrade", pits[20]?.seq);
      assert.equal(named.keep, true);
      await assert.rejects(nameSnapshot(t, "../etc", pits[3]?.seq), UserError);

      // Inside the keep-all hour nothing goes.
      assert.deepEqual(await applyRetention(t, DEFAULT_RETENTION_POLICY, Date.now()), {
        kept: 40,
        dropped: 0,
      });
      // Two hours on: the bucket's oldest PIT, the named snapshot and the newest stay.
      const later = Date.now() + 2 * HOUR;
      const outcome = await applyRetention(t, DEFAULT_RETENTION_POLICY, later);
      // The oldest PIT of each 10-minute bucket (almost surely one bucket), the snapshot, the newest.
      const firsts = new Map<number, number>();
      for (const p of pits)
        if (!firsts.has(Math.floor(p.time / 600_000))) firsts.set(Math.floor(p.time / 600_000), p.seq);
      const expected = [...new Set([...firsts.values(), pits[20]?.seq ?? 0, pits[39]?.seq ?? 0])].sort(
        (a, b) => a - b,
      );
      assert.deepEqual(
        t.pits().map((p) => p.seq),
        expected,
      );
      assert.equal(outcome.dropped, 40 - expected.length);
      const before = t.stats().layerBytes;
      await t.compact();
      assert.ok(
        t.stats().layerBytes < before,
        `compaction freed nothing: ${before} -> ${t.stats().layerBytes}`,
      );
      for (const [k, seq] of [
        [0, pits[0]?.seq],
        [20, pits[20]?.seq],
        [39, pits[39]?.seq],
      ] as const) {
        assert.ok(
          (await t.read(0, 0, 16 * BLOCK, seq)).equals(pattern(k + 1, 16 * BLOCK)),
          `PIT ${k} reads wrong`,
        );
      }
      await assert.rejects(
        t.read(0, 0, BLOCK, pits[5]?.seq),
        (err: unknown) => err instanceof UserError && err.status === 410,
      );

      // Deleting the snapshot hands it back to the policy.
      const plain = await unnameSnapshot(t, pits[20]?.seq ?? 0);
      assert.equal(plain.keep, undefined);
      await assert.rejects(unnameSnapshot(t, pits[20]?.seq ?? 0), /no named snapshot/);
      assert.equal((await applyRetention(t, DEFAULT_RETENTION_POLICY, later)).dropped, 1);
      assert.deepEqual(
        t.pits().map((p) => p.seq),
        expected.filter((seq) => seq !== pits[20]?.seq),
      );
    } finally {
      await store.close();
    }
  });
});
