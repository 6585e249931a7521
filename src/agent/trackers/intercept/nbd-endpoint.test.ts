import { test } from "node:test";
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { exportUri, parseNbdListen, socketIn } from "./nbd-endpoint.js";

test("parseNbdListen() takes HOST:PORT and [IPv6]:PORT and refuses the rest", () => {
  assert.deepEqual(parseNbdListen("127.0.0.1:10809"), { host: "127.0.0.1", port: 10809 });
  assert.deepEqual(parseNbdListen("[::1]:0"), { host: "::1", port: 0 });
  assert.deepEqual(parseNbdListen("vm-host:10809"), { host: "vm-host", port: 10809 });
  for (const bad of ["10809", "host:", "host:99999", "::1:10809", "host:port"])
    assert.throws(() => parseNbdListen(bad), /--nbd-listen must be HOST:PORT/, bad);
});

test("exportUri() names an export the way qemu, libnbd and nbdfuse take it", () => {
  assert.equal(
    exportUri({ socketPath: "/run/lifeboat/nbd.sock" }, "disk0"),
    "nbd+unix:///disk0?socket=/run/lifeboat/nbd.sock",
  );
  assert.equal(exportUri({ host: "127.0.0.1", port: 0 }, "disk1", 40123), "nbd://127.0.0.1:40123/disk1");
  assert.equal(exportUri({ host: "::1", port: 10809 }, "disk0"), "nbd://[::1]:10809/disk0");
  assert.equal(exportUri({ host: "0.0.0.0", port: 10809 }, "disk0"), `nbd://${hostname()}:10809/disk0`);
});

test("socketIn() refuses a directory whose socket path would not fit a Unix socket address", () => {
  assert.deepEqual(socketIn("/run/lifeboat"), { socketPath: "/run/lifeboat/nbd.sock" });
  assert.throws(
    () => socketIn(`/tmp/${"x".repeat(100)}`),
    /too long for a Unix socket: give a shorter --nbd-dir/,
  );
});
