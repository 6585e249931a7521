/**
 * Hostile clients on raw sockets: every case ends in an NBD error reply or a closed
 * connection, a log line saying why, no partial write, and a server that still serves.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { waitFor } from "../common/wait-for.js";
import { NbdClient } from "./nbd-client.js";
import {
  CMD_BLOCK_STATUS,
  CMD_READ,
  CMD_TRIM,
  CMD_WRITE,
  CMD_WRITE_ZEROES,
  FLAG_C_FIXED_NEWSTYLE,
  INFO_BLOCK_SIZE,
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_EPERM,
  OPT_GO,
  OPT_LIST,
  OPT_SET_META_CONTEXT,
  REPLY_TYPE_OFFSET_DATA,
  REP_ERR_INVALID,
  REP_ERR_UNKNOWN,
  REP_ERR_UNSUP,
  encodeInfoRequest,
  encodeMetaContextRequest,
} from "./protocol.js";
import { RawNbdPeer, replyErrno } from "./testing/raw-nbd-peer.js";
import { serveTestFile, type ServedTestFile } from "./testing/serve-test-file.js";

const MiB = 1024 * 1024;

async function stillServes(fx: ServedTestFile): Promise<void> {
  const c = await NbdClient.connect({ socketPath: fx.socketPath }, { exportName: fx.exportName });
  await c.read(0, 512);
  await c.disconnect();
}

test("NbdServer answers bad requests with EINVAL, ENOSPC or EPERM and keeps the connection", async () => {
  const fx = await serveTestFile({ sizeBytes: 4 * MiB, export: { blockSizes: { maximum: MiB } } });
  try {
    const p = await RawNbdPeer.connect(fx.socketPath);
    await p.go("disk");
    const cases: [string, () => void, number][] = [
      ["read past the end", () => p.request(CMD_READ, 0, 1, 4 * MiB - 10, 100), NBD_EINVAL],
      ["read above the maximum block size", () => p.request(CMD_READ, 0, 2, 0, 2 * MiB), NBD_EINVAL],
      ["offset beyond 2^53", () => p.request(CMD_READ, 0, 3, 2 ** 60, 512), NBD_EINVAL],
      ["unknown command", () => p.request(99, 0, 4, 0, 0), NBD_EINVAL],
      ["unknown flag", () => p.request(CMD_READ, 0x8000, 5, 0, 512), NBD_EINVAL],
      ["block status without a context", () => p.request(CMD_BLOCK_STATUS, 0, 6, 0, 512), NBD_EINVAL],
      ["trim past the end", () => p.request(CMD_TRIM, 0, 7, 4 * MiB, 1), NBD_EINVAL],
      ["write zeroes past the end", () => p.request(CMD_WRITE_ZEROES, 0, 8, 4 * MiB - 1, 2), NBD_ENOSPC],
      // Payloads are consumed, then refused: the stream stays in step.
      [
        "write past the end",
        () => p.request(CMD_WRITE, 0, 9, 4 * MiB - 2, 4, Buffer.alloc(4, 1)),
        NBD_ENOSPC,
      ],
      [
        "write above the maximum block size",
        () => p.request(CMD_WRITE, 0, 10, 0, 2 * MiB, Buffer.alloc(2 * MiB, 1)),
        NBD_EINVAL,
      ],
    ];
    for (const [what, send, errno] of cases) {
      send();
      const r = await p.readReply();
      assert.equal(replyErrno(r), errno, what);
    }
    p.request(CMD_READ, 0, 11, 0, 512);
    const ok = await p.readReply();
    assert.ok(ok.kind === "chunk" && ok.type === REPLY_TYPE_OFFSET_DATA && ok.handle === 11);
    assert.ok((await readFile(fx.file)).equals(Buffer.alloc(4 * MiB)), "no refused write changed the file");
    assert.ok(
      fx.logs.some((l) => /refused \(EINVAL\): length 2097152 exceeds the maximum block size/.test(l)),
    );
    p.destroy();
  } finally {
    await fx.close();
  }
});

test("NbdServer refuses writes on a read-only export with EPERM", async () => {
  const fx = await serveTestFile({ sizeBytes: MiB, readOnly: true });
  try {
    const p = await RawNbdPeer.connect(fx.socketPath);
    await p.go("disk", false);
    p.request(CMD_WRITE, 0, 1, 0, 4096, Buffer.alloc(4096, 9));
    p.request(CMD_TRIM, 0, 2, 0, 4096);
    for (const handle of [1, 2]) {
      const r = await p.readReply();
      assert.equal(r.handle, handle);
      assert.equal(replyErrno(r), NBD_EPERM);
    }
    assert.ok((await readFile(fx.file)).equals(Buffer.alloc(MiB)));
    p.destroy();
  } finally {
    await fx.close();
  }
});

test("NbdServer closes the connection on a bad magic or an oversized WRITE, and serves others on", async () => {
  const fx = await serveTestFile({ sizeBytes: MiB });
  try {
    const bad = await RawNbdPeer.connect(fx.socketPath);
    await bad.go("disk");
    bad.socket.write(Buffer.alloc(28, 0x41));
    assert.ok(await bad.closedWithin(2000), "closed after a bad request magic");

    const huge = await RawNbdPeer.connect(fx.socketPath);
    await huge.go("disk");
    huge.request(CMD_WRITE, 0, 1, 0, 0xffffffff, Buffer.alloc(65536, 1));
    assert.ok(await huge.closedWithin(2000), "closed after a 4 GiB WRITE header");

    assert.ok(fx.logs.some((l) => l.includes("bad request magic 0x41414141")));
    assert.ok(fx.logs.some((l) => l.includes("WRITE of 4294967295 bytes exceeds")));
    assert.ok((await readFile(fx.file)).equals(Buffer.alloc(MiB)));
    await stillServes(fx);
  } finally {
    await fx.close();
  }
});

test("NbdServer applies nothing of a WRITE whose payload is cut off by a disconnect", async () => {
  const fx = await serveTestFile({ sizeBytes: 4 * MiB });
  try {
    const p = await RawNbdPeer.connect(fx.socketPath);
    await p.go("disk");
    p.request(CMD_WRITE, 0, 1, MiB, 2 * MiB, Buffer.alloc(MiB + 1000, 0x77)); // half the payload
    await new Promise((r) => setTimeout(r, 100)); // the server takes in what was sent
    p.destroy();
    await waitFor(
      "the server to log the discarded write",
      () => Promise.resolve(fx.logs.some((l) => l.includes("mid-payload"))),
      5000,
      20,
    );
    assert.ok((await readFile(fx.file)).equals(Buffer.alloc(4 * MiB)), "no byte of the cut write landed");
    assert.equal(fx.dirty.dirtyBlocks, 0);
    await stillServes(fx);
  } finally {
    await fx.close();
  }
});

test("NbdServer handshake: lying option lengths, unknown options and exports, bad client flags, timeouts", async () => {
  const fx = await serveTestFile({ sizeBytes: MiB, server: { handshakeTimeoutMs: 300 } });
  try {
    const p = await RawNbdPeer.connect(fx.socketPath);
    await p.greet();
    const lying = encodeInfoRequest("disk", [INFO_BLOCK_SIZE]);
    lying.writeUInt32BE(500, 0); // name length beyond the option
    p.sendOption(OPT_GO, lying);
    assert.equal((await p.readOptionReply()).type, REP_ERR_INVALID);
    p.sendOption(OPT_LIST, Buffer.alloc(3));
    assert.equal((await p.readOptionReply()).type, REP_ERR_INVALID);
    p.sendOption(OPT_SET_META_CONTEXT, encodeMetaContextRequest("disk", ["base:allocation"]));
    assert.equal(
      (await p.readOptionReply()).type,
      REP_ERR_INVALID,
      "meta contexts need structured replies first",
    );
    p.sendOption(4242);
    assert.equal((await p.readOptionReply()).type, REP_ERR_UNSUP);
    p.sendOption(OPT_GO, encodeInfoRequest("nope", []));
    assert.equal((await p.readOptionReply()).type, REP_ERR_UNKNOWN);
    p.sendOption(OPT_GO, encodeInfoRequest("disk", []));
    let r = await p.readOptionReply();
    while (r.type !== 1) r = await p.readOptionReply();
    p.destroy();

    const tooLong = await RawNbdPeer.connect(fx.socketPath);
    await tooLong.greet();
    const head = Buffer.alloc(16);
    head.writeBigUInt64BE(0x49484156454f5054n, 0);
    head.writeUInt32BE(OPT_GO, 8);
    head.writeUInt32BE(0x7fffffff, 12);
    tooLong.socket.write(head);
    assert.ok(await tooLong.closedWithin(2000), "closed on a 2 GiB option");

    const flags = await RawNbdPeer.connect(fx.socketPath);
    await flags.greet(FLAG_C_FIXED_NEWSTYLE | 0x100);
    assert.ok(await flags.closedWithin(2000), "closed on unknown client flags");

    const idle = await RawNbdPeer.connect(fx.socketPath);
    assert.ok(await idle.closedWithin(3000), "closed when the handshake times out");

    assert.ok(fx.logs.some((l) => l.includes("claims 2147483647 bytes")));
    assert.ok(fx.logs.some((l) => l.includes("unknown handshake flags 0x101")));
    assert.ok(fx.logs.some((l) => l.includes("handshake not finished after 300 ms")));
    await stillServes(fx);
  } finally {
    await fx.close();
  }
});

test("NbdServer stops reading a client that does not read its replies (bounded memory)", async () => {
  // Data, not zeros: zero runs would go out as tiny hole chunks.
  const fx = await serveTestFile({
    sizeBytes: 4 * MiB,
    content: Buffer.alloc(4 * MiB, 0x5c),
    server: { maxInflightRequests: 16, maxInflightBytes: 4 * MiB },
  });
  try {
    const p = await RawNbdPeer.connect(fx.socketPath);
    try {
      await p.go("disk");
      p.reader.detach(); // stop reading: replies pile up in the kernel, then in the server
      p.socket.pause();
      const before = process.memoryUsage().arrayBuffers;
      // 300 MiB of replies if nothing held the server back (it grows by about that much
      // with the limits lifted).
      for (let i = 0; i < 300; i++) p.request(CMD_READ, 0, i + 1, 0, MiB);
      await new Promise((r) => setTimeout(r, 500));
      const grown = process.memoryUsage().arrayBuffers - before;
      assert.ok(grown < 48 * MiB, `server buffers grew by ${Math.round(grown / MiB)} MiB`);
    } finally {
      p.destroy();
    }
  } finally {
    await fx.close();
  }
});
