/** Our server under fio's nbd engine: random 4 KiB writes at queue depth 16, verified. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { serveTestFile } from "./testing/serve-test-file.js";
import { haveTools, runTool } from "./testing/run-tool.js";

const skip = haveTools("fio") ? false : "fio is not installed";

test("fio --ioengine=nbd random 4 KiB writes at iodepth 16 read back verified", { skip }, async () => {
  const fx = await serveTestFile({ sizeBytes: 16 * 1024 * 1024 });
  try {
    const { stdout } = await runTool("fio", [
      "--name=nbd-randwrite",
      "--ioengine=nbd",
      `--uri=${fx.uri}`,
      "--rw=randwrite",
      "--bs=4k",
      "--iodepth=16",
      "--size=16M",
      "--verify=crc32c",
      "--do_verify=1",
      "--verify_fatal=1",
      "--verify_state_save=0", // no state file in the working directory
      "--output-format=json",
    ]);
    // fio's nbd engine prints a line before the JSON.
    const job = (
      JSON.parse(stdout.slice(stdout.indexOf("{"))) as {
        jobs: { error: number; write: { io_bytes: number }; read: { io_bytes: number } }[];
      }
    ).jobs[0]!;
    assert.equal(job.error, 0);
    assert.equal(job.write.io_bytes, 16 * 1024 * 1024);
    assert.equal(job.read.io_bytes, 16 * 1024 * 1024, "every block was read back and verified");
    assert.equal(fx.dirty.dirtyBlocks, 256);
  } finally {
    await fx.close();
  }
});
