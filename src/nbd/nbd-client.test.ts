/** Our client against qemu-nbd (raw and a qcow2 dirty bitmap) and against our own server. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { open, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  NbdErrno,
  type ByteRange,
  type ExportChange,
  type NbdExportBackend,
  type StatusExtent,
} from "./export-backend.js";
import { NbdClient } from "./nbd-client.js";
import { NbdServer } from "./nbd-server.js";
import {
  CONTEXT_BASE_ALLOCATION,
  NBD_EINVAL,
  NBD_ENOSPC,
  STATE_DIRTY,
  STATE_HOLE,
  STATE_ZERO,
  TF_SEND_FLUSH,
} from "./protocol.js";
import { startQemuNbd } from "./testing/qemu-nbd.js";
import { haveTools, runTool } from "./testing/run-tool.js";
import { serveTestFile } from "./testing/serve-test-file.js";
import { TrackedBackend } from "./tracked-backend.js";

const MiB = 1024 * 1024;
const noQemu = haveTools("qemu-nbd", "qemu-img", "qemu-io")
  ? false
  : "qemu-nbd, qemu-img or qemu-io missing (qemu-utils)";

test("NbdClient reads, writes, flushes and maps base:allocation on qemu-nbd", { skip: noQemu }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-nbdc-"));
  const image = join(dir, "disk.raw");
  const content = Buffer.alloc(2 * MiB);
  randomBytes(MiB).copy(content, MiB);
  await writeFile(image, content);
  await truncate(image, 8 * MiB);
  const qemu = await startQemuNbd(image, join(dir, "q.sock"), { exportName: "q", format: "raw" });
  try {
    const c = await NbdClient.connect(
      { socketPath: qemu.socketPath },
      { exportName: "q", metaContexts: [CONTEXT_BASE_ALLOCATION] },
    );
    assert.equal(c.size, 8 * MiB);
    assert.ok(c.structured);
    assert.ok((c.transmissionFlags & TF_SEND_FLUSH) !== 0);
    assert.ok((await c.read(MiB, MiB)).equals(content.subarray(MiB)));
    assert.ok((await c.read(0, 4096)).equals(Buffer.alloc(4096)));

    const block = randomBytes(65536);
    await Promise.all([c.write(4 * MiB, block), c.write(6 * MiB, block, { fua: true })]);
    await c.flush();
    assert.ok((await c.read(4 * MiB, 65536)).equals(block));

    const extents = await c.blockStatus(0, 8 * MiB, CONTEXT_BASE_ALLOCATION);
    const at = (offset: number): number =>
      extents.find((e) => e.offset <= offset && offset < e.offset + e.length)!.flags;
    assert.equal(at(MiB) & STATE_HOLE, 0, "written data is allocated");
    assert.equal(at(4 * MiB) & STATE_HOLE, 0);
    assert.ok((at(3 * MiB) & STATE_ZERO) !== 0, "the tail is reported as zero");
    await c.disconnect();
    const file = await readFile(image);
    assert.ok(file.subarray(6 * MiB, 6 * MiB + 65536).equals(block));
  } finally {
    await qemu.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test("NbdClient reads a qemu:dirty-bitmap context from qemu-nbd", { skip: noQemu }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-nbdc-"));
  const image = join(dir, "disk.qcow2");
  await runTool("qemu-img", ["create", "-q", "-f", "qcow2", image, "16M"]);
  await runTool("qemu-img", ["bitmap", "--add", image, "b0"]);
  await runTool("qemu-io", [
    "-f",
    "qcow2",
    "-c",
    "write -P 0x11 1M 128k",
    "-c",
    "write -P 0x22 8M 64k",
    image,
  ]);
  const qemu = await startQemuNbd(image, join(dir, "q.sock"), {
    exportName: "vm",
    format: "qcow2",
    extra: ["-r", "-B", "b0"],
  });
  try {
    const c = await NbdClient.connect(
      { socketPath: qemu.socketPath },
      { exportName: "vm", metaContexts: ["qemu:dirty-bitmap:b0", CONTEXT_BASE_ALLOCATION] },
    );
    const dirty: { offset: number; length: number }[] = [];
    for (let offset = 0; offset < c.size;) {
      const extents = await c.blockStatus(offset, c.size - offset, "qemu:dirty-bitmap:b0");
      for (const e of extents) if (e.flags & STATE_DIRTY) dirty.push({ offset: e.offset, length: e.length });
      offset = extents.at(-1)!.offset + extents.at(-1)!.length;
    }
    assert.deepEqual(dirty, [
      { offset: MiB, length: 128 * 1024 },
      { offset: 8 * MiB, length: 65536 },
    ]);
    assert.ok((await c.read(8 * MiB, 65536)).equals(Buffer.alloc(65536, 0x22)));
    await assert.rejects(c.write(0, Buffer.alloc(512)), (err: unknown) => err instanceof NbdErrno);
    await c.disconnect();
    await assert.rejects(
      NbdClient.connect(
        { socketPath: qemu.socketPath },
        { exportName: "vm", metaContexts: ["qemu:dirty-bitmap:nope"] },
      ),
      /does not offer metadata context qemu:dirty-bitmap:nope/,
    );
  } finally {
    await qemu.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test("NbdClient against our server: concurrent I/O, trim, zeroes, dirty context, listing, errors", async () => {
  const fx = await serveTestFile({ sizeBytes: 8 * MiB });
  try {
    assert.deepEqual(
      (await NbdClient.list({ socketPath: fx.socketPath })).map((e) => e.name),
      ["disk"],
    );
    const c = await NbdClient.connect(
      { socketPath: fx.socketPath },
      { exportName: "disk", metaContexts: [CONTEXT_BASE_ALLOCATION, "lifeboat:dirty"] },
    );
    assert.deepEqual(c.blockSizes, { minimum: 1, preferred: 4096, maximum: 32 * MiB });
    const blocks = Array.from({ length: 64 }, () => randomBytes(16 * 1024));
    await Promise.all(blocks.map((b, i) => c.write(i * 65536, b, { fua: i % 8 === 0 })));
    const back = await Promise.all(blocks.map((_, i) => c.read(i * 65536, 16 * 1024)));
    back.forEach((b, i) => assert.ok(b.equals(blocks[i]!), `block ${i}`));

    await c.trim(0, 65536);
    await c.writeZeroes(65536, 65536, { noHole: true });
    assert.ok((await c.read(0, 2 * 65536)).equals(Buffer.alloc(2 * 65536)));
    const big = await c.read(0, 8 * MiB); // long zero runs come back as hole chunks
    assert.ok(big.subarray(4 * MiB).equals(Buffer.alloc(4 * MiB)));
    assert.ok(big.subarray(2 * 65536, 2 * 65536 + 16 * 1024).equals(blocks[2]!));

    const dirty = await c.blockStatus(0, 8 * MiB, "lifeboat:dirty");
    assert.deepEqual(
      dirty.map((e) => [e.offset, e.length, e.flags]),
      [
        [0, 4 * MiB, STATE_DIRTY],
        [4 * MiB, 4 * MiB, 0],
      ],
    );
    const one = await c.blockStatus(4096, 8 * MiB - 4096, CONTEXT_BASE_ALLOCATION, { reqOne: true });
    assert.equal(one.length, 1);

    await assert.rejects(
      c.read(8 * MiB - 100, 4096),
      (e: unknown) => e instanceof NbdErrno && e.errno === NBD_EINVAL,
    );
    await assert.rejects(
      c.write(8 * MiB, Buffer.alloc(1)),
      (e: unknown) => e instanceof NbdErrno && e.errno === NBD_ENOSPC,
    );
    assert.ok((await c.read(0, 10)).equals(Buffer.alloc(10)), "the connection survives error replies");

    // Flush durability as seen from outside: write, flush, read through a separate fd.
    const marker = randomBytes(4096);
    await c.write(7 * MiB, marker);
    await c.flush();
    const fd = await open(fx.file, "r");
    const seen = Buffer.alloc(4096);
    await fd.read(seen, 0, 4096, 7 * MiB);
    await fd.close();
    assert.ok(seen.equals(marker));
    await c.disconnect();

    const simple = await NbdClient.connect(
      { socketPath: fx.socketPath },
      { exportName: "disk", structuredReplies: false },
    );
    assert.equal(simple.structured, false);
    assert.ok((await simple.read(7 * MiB, 4096)).equals(marker));
    await simple.disconnect();
    await assert.rejects(
      NbdClient.connect({ socketPath: fx.socketPath }, { exportName: "nope" }),
      /no export named "nope"/,
    );
  } finally {
    await fx.close();
  }
});

/** An in-memory backend whose reads at offset 0 wait for a gate: out-of-order replies show. */
class GatedMemoryBackend implements NbdExportBackend {
  readonly readOnly = false;
  readonly multiConn = true;
  readonly fastZero = false;
  readonly metaContexts: readonly string[] = [];
  readonly data: Buffer;
  open!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.open = resolve));

  constructor(readonly size: number) {
    this.data = Buffer.alloc(size);
  }
  async read(offset: number, into: Buffer): Promise<readonly ByteRange[] | null> {
    if (offset === 0) await this.gate;
    this.data.copy(into, 0, offset, offset + into.length);
    return null;
  }
  async write(offset: number, data: Buffer): Promise<void> {
    await new Promise((r) => setTimeout(r, offset === 0 ? 20 : 1));
    data.copy(this.data, offset);
  }
  async flush(): Promise<void> {}
  trim(offset: number, length: number): Promise<void> {
    this.data.fill(0, offset, offset + length);
    return Promise.resolve();
  }
  writeZeroes(offset: number, length: number): Promise<void> {
    this.data.fill(0, offset, offset + length);
    return Promise.resolve();
  }
  blockStatus(_offset: number, length: number): Promise<readonly StatusExtent[]> {
    return Promise.resolve([{ length, flags: 0 }]);
  }
  async close(): Promise<void> {}
}

test("NbdServer replies out of order and runs overlapping writes, and their hook calls, in arrival order", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-nbdc-"));
  const mem = new GatedMemoryBackend(MiB);
  const changes: ExportChange[] = [];
  const tracked = new TrackedBackend(mem, {
    hook: {
      changed(change) {
        changes.push(change.kind === "data" ? { ...change, data: Buffer.from(change.data) } : change);
        return Promise.resolve();
      },
    },
  });
  const server = new NbdServer({ log: () => undefined });
  server.addExport("mem", tracked);
  const socketPath = join(dir, "s");
  await server.listen({ socketPath });
  try {
    const c = await NbdClient.connect({ socketPath }, { exportName: "mem" });
    mem.data.fill(7, 4096, 8192);
    const order: string[] = [];
    const slow = c.read(0, 4096).then(() => order.push("slow"));
    const fast = c.read(4096, 4096).then(() => order.push("fast"));
    await fast;
    assert.deepEqual(order, ["fast"], "the later request was answered first");
    mem.open();
    await slow;

    // The first write is slower in the backend, yet the second (overlapping) one lands last.
    await Promise.all([c.write(0, Buffer.alloc(8192, 1)), c.write(4096, Buffer.alloc(4096, 2))]);
    assert.equal(mem.data[4096], 2);
    assert.deepEqual(
      changes.map((ch) => (ch.kind === "data" ? [ch.offset, ch.data[0]] : [])),
      [
        [0, 1],
        [4096, 2],
      ],
    );
    await c.disconnect();
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
