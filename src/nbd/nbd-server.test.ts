import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { FileBackend } from "./file-backend.js";
import { NbdClient } from "./nbd-client.js";
import { NbdServer } from "./nbd-server.js";
import { haveTools, runTool } from "./testing/run-tool.js";
import { serveTestFile } from "./testing/serve-test-file.js";
import { TrackedBackend } from "./tracked-backend.js";

test("NbdServer.listen() makes its Unix socket 0600 and binds TCP to 127.0.0.1", async () => {
  const fx = await serveTestFile({ sizeBytes: 1024 * 1024 });
  const tcp = new NbdServer({ log: () => undefined });
  tcp.addExport("disk", fx.backend);
  try {
    assert.equal((await stat(fx.socketPath)).mode & 0o777, 0o600);
    const address = (await tcp.listen({ port: 0 })) as AddressInfo;
    assert.equal(address.address, "127.0.0.1");
    const c = await NbdClient.connect({ port: address.port }, { exportName: "disk" });
    assert.equal(c.size, 1024 * 1024);
    await c.write(0, Buffer.from("over tcp"));
    await c.disconnect();
    if (haveTools("qemu-img")) {
      const info = await runTool("qemu-img", [
        "info",
        "--output=json",
        `nbd://127.0.0.1:${address.port}/disk`,
      ]);
      assert.match(info.stdout, /"virtual-size": 1048576/);
    }
  } finally {
    await tcp.close();
    await fx.close();
  }
});

test("NbdServer.close() answers the requests in flight before it closes their connection", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-nbds-"));
  try {
    await writeFile(join(dir, "d.img"), Buffer.alloc(1024 * 1024));
    const inner = await FileBackend.open(join(dir, "d.img"));
    // A slow flush hook: its reply must still arrive after close() started.
    const backend = new TrackedBackend(inner, {
      hook: {
        changed: () => Promise.resolve(),
        flushed: () => new Promise((r) => setTimeout(r, 200)),
      },
    });
    const server = new NbdServer({ log: () => undefined });
    server.addExport("d", backend);
    await server.listen({ socketPath: join(dir, "s") });
    const c = await NbdClient.connect({ socketPath: join(dir, "s") }, { exportName: "d" });
    await c.write(0, Buffer.alloc(4096, 1));
    const flushed = c.flush();
    await new Promise((r) => setTimeout(r, 20));
    await server.close();
    await flushed;
    await assert.rejects(c.read(0, 10));
    await backend.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
