import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { catRead, ddCopy } from "./baselines.js";
import { runTool } from "./tool-runner.js";

const TMPFS_MAGIC = 0x01021994;

test("runTool() times a tool and counts the bytes it wrote; ddCopy() and catRead() run the real tools", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-tool-"));
  try {
    const image = join(dir, "image");
    const made = await runTool("dd", [
      "if=/dev/zero",
      `of=${image}`,
      "bs=1M",
      "count=8",
      "conv=fsync",
      "status=none",
    ]);
    assert.ok(made.seconds > 0);
    assert.match(made.command, /^dd if=\/dev\/zero/);
    const copy = await ddCopy(dir, "image", "copy");
    assert.equal(copy.command, "dd if=image of=copy bs=4M conv=fsync status=none");
    assert.equal((await stat(join(dir, "copy"))).size, 8 * 1024 * 1024);
    if ((await statfs(dir)).type !== TMPFS_MAGIC) {
      assert.ok(made.writeBytes >= 8 * 1024 * 1024, `dd wrote ${made.writeBytes}`);
      assert.ok(copy.writeBytes >= 8 * 1024 * 1024, `dd copy wrote ${copy.writeBytes}`);
    }
    const read = await catRead(dir, "image");
    assert.equal(read.command, "cat image > /dev/null");
    assert.equal(read.writeBytes, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("runTool() reports a failing tool with its exit code and stderr", async () => {
  await assert.rejects(runTool("cat", ["/nonexistent/file"]), /exit code 1: cat: \/nonexistent\/file/);
});

test("runTool() stops the tool when aborted", async () => {
  const controller = new AbortController();
  const run = runTool("sleep", ["30"], { signal: controller.signal });
  setTimeout(() => controller.abort(new Error("stop")), 100);
  const t0 = Date.now();
  await assert.rejects(run, /stop/);
  assert.ok(Date.now() - t0 < 5000);
});
