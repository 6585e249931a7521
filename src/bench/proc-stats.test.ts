import { test } from "node:test";
import assert from "node:assert/strict";
import { open, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Meter, parseIo, parsePeakRss, peakRss, readIo, writtenBetween } from "./proc-stats.js";

test("parseIo() and writtenBetween() take cancelled writes off the bytes written", () => {
  const a = parseIo("rchar: 1\nwchar: 2\nread_bytes: 10\nwrite_bytes: 100\ncancelled_write_bytes: 0\n");
  const b = parseIo("read_bytes: 10\nwrite_bytes: 8292\ncancelled_write_bytes: 4096\n");
  assert.deepEqual(a, { readBytes: 10, writeBytes: 100, cancelledWriteBytes: 0 });
  assert.equal(writtenBetween(a, b), 4096);
  assert.throws(() => parseIo("rchar: 1\n"), /No read_bytes/);
});

test("parsePeakRss() reads VmHWM in bytes", () => {
  assert.equal(parsePeakRss("Name:\tnode\nVmHWM:\t   51200 kB\nVmRSS:\t 100 kB\n"), 51200 * 1024);
  assert.equal(parsePeakRss("Name:\tkthread\n"), undefined);
  assert.ok((peakRss() ?? 0) > 1024 * 1024);
  assert.equal(peakRss(2 ** 22 + 12345), undefined);
});

const TMPFS_MAGIC = 0x01021994;

test("Meter counts the bytes this process writes and syncs", async (t) => {
  if ((await statfs(tmpdir())).type === TMPFS_MAGIC) {
    t.skip("the temporary directory is tmpfs, where Linux counts no write_bytes");
    return;
  }
  const path = join(tmpdir(), `lifeboat-meter-${process.pid}`);
  const meter = Meter.start();
  const handle = await open(path, "w");
  try {
    await handle.write(Buffer.alloc(1024 * 1024, 1), 0, 1024 * 1024, 0);
    await handle.sync();
  } finally {
    await handle.close();
  }
  const { seconds, writeBytes } = meter.read();
  await rm(path, { force: true });
  assert.ok(seconds > 0);
  assert.ok(writeBytes >= 1024 * 1024, `wrote ${writeBytes}`);
  assert.ok(readIo().writeBytes >= writeBytes);
});
