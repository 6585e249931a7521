import { test } from "node:test";
import assert from "node:assert/strict";
import type { FileHandle } from "node:fs/promises";
import { ImageOutput } from "./image-output.js";

/** A file whose writes complete when told to, and whose second write fails. */
function fakeFile() {
  const calls: Array<{ position: number; finish: () => void }> = [];
  const file = {
    writev(buffers: Buffer[], position: number) {
      const bytes = buffers.reduce((s, b) => s + b.length, 0);
      return new Promise<{ bytesWritten: number }>((resolve, reject) => {
        const n = calls.length;
        calls.push({
          position,
          finish: () =>
            n === 1 ? reject(new Error("ENOSPC: no space left on device")) : resolve({ bytesWritten: bytes }),
        });
      });
    },
  };
  return { file: file as unknown as FileHandle, calls };
}

test("ImageOutput keeps at most `depth` writes in flight and reports the first failure", async () => {
  const { file, calls } = fakeFile();
  const out = new ImageOutput(file, 2);
  await out.write([Buffer.alloc(512)], 0);
  await out.write([Buffer.alloc(512)], 512);
  let third = false;
  const queued = out.write([Buffer.alloc(512)], 1024).then(() => (third = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(third, false, "the third write waits for the first");
  assert.deepEqual(
    calls.map((c) => c.position),
    [0, 512],
  );
  calls[0]?.finish();
  await queued;
  assert.deepEqual(
    calls.map((c) => c.position),
    [0, 512, 1024],
  );
  calls[1]?.finish();
  calls[2]?.finish();
  await assert.rejects(out.drain(), /ENOSPC/);
  await assert.rejects(out.write([Buffer.alloc(512)], 1536), /ENOSPC/);
  assert.equal(calls.length, 3, "nothing is written after a failure");
});
