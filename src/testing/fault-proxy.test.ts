import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { FaultProxy } from "./fault-proxy.js";

/** A TCP echo server on an ephemeral port. */
async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on("error", () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const addr = server.address();
  return { server, port: typeof addr === "object" && addr ? addr.port : 0 };
}

async function dial(port: number): Promise<Socket> {
  const s = connect({ host: "127.0.0.1", port });
  s.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    s.once("connect", resolve);
    s.once("close", () => reject(new Error("closed before connecting")));
  });
  return s;
}

/** Collects what the socket receives until `bytes` have arrived; resolves with them and the time taken. */
function receive(s: Socket, bytes: number): Promise<{ data: Buffer; ms: number }> {
  const started = Date.now();
  const parts: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      parts.push(d);
      got += d.length;
      if (got >= bytes) {
        s.off("data", onData);
        resolve({ data: Buffer.concat(parts), ms: Date.now() - started });
      }
    };
    s.on("data", onData);
    s.once("close", () => reject(new Error(`closed after ${got} of ${bytes} bytes`)));
  });
}

async function withProxy(fn: (proxy: FaultProxy) => Promise<void>): Promise<void> {
  const echo = await echoServer();
  const proxy = await FaultProxy.start({ target: { host: "127.0.0.1", port: echo.port } });
  try {
    await fn(proxy);
  } finally {
    await proxy.close();
    echo.server.close();
  }
}

test("FaultProxy forwards bytes both ways unchanged and counts them", () =>
  withProxy(async (proxy) => {
    const s = await dial(proxy.address.port);
    const sent = randomBytes(3 * 1024 * 1024);
    const back = receive(s, sent.length);
    s.write(sent);
    assert.ok((await back).data.equals(sent));
    assert.equal(proxy.bytesToTarget, sent.length);
    assert.equal(proxy.bytesToClient, sent.length);
    assert.equal(proxy.connections, 1);
    s.destroy();
  }));

test("FaultProxy.drop() closes every connection and refuses new ones while down", () =>
  withProxy(async (proxy) => {
    const s = await dial(proxy.address.port);
    const closed = new Promise<void>((r) => s.once("close", () => r()));
    assert.equal(proxy.drop(300), 1);
    await closed;
    assert.equal(proxy.connections, 0);
    // While down, a new connection is reset at once.
    const refused = connect({ host: "127.0.0.1", port: proxy.address.port });
    const err = await new Promise<Error | undefined>((resolve) => {
      refused.once("error", resolve);
      refused.once("close", () => resolve(undefined));
    });
    assert.ok(err === undefined || /ECONNRESET|EPIPE/.test(err.message), String(err));
    assert.equal(proxy.refused, 1);
    await new Promise((r) => setTimeout(r, 350));
    const again = await dial(proxy.address.port);
    const back = receive(again, 5);
    again.write("hello");
    assert.equal((await back).data.toString(), "hello");
    again.destroy();
  }));

test("FaultProxy.stall() holds data for the stall, then delivers all of it in order", () =>
  withProxy(async (proxy) => {
    const s = await dial(proxy.address.port);
    proxy.stall(400);
    const sent = randomBytes(256 * 1024);
    const back = receive(s, sent.length);
    s.write(sent);
    const { data, ms } = await back;
    assert.ok(data.equals(sent));
    assert.ok(ms >= 350, `data came back after ${ms} ms of a 400 ms stall`);
    assert.equal(proxy.connections, 1, "a stall does not close the connection");
    s.destroy();
  }));

test("FaultProxy.slow() forwards at the given rate for its duration, then at full speed", () =>
  withProxy(async (proxy) => {
    const s = await dial(proxy.address.port);
    proxy.slow(256 * 1024, 10_000);
    const sent = randomBytes(128 * 1024);
    const back = receive(s, sent.length);
    s.write(sent);
    const slow = await back;
    assert.ok(slow.data.equals(sent));
    // 128 KiB at 256 KiB/s one way: about 0.5 s (the echo's way back is slowed too).
    assert.ok(slow.ms >= 450, `128 KiB at 256 KiB/s took ${slow.ms} ms`);
    proxy.heal();
    const fast = receive(s, sent.length);
    s.write(sent);
    assert.ok((await fast).ms < 400, "after heal() the link runs at full speed");
    s.destroy();
  }));

test("FaultProxy.plan() is the same for the same seed, in order, within the span, of the weighted kinds", () => {
  const schedule = { seed: 42, count: 50, spanMs: 20_000, weights: { drop: 1, stall: 1 } };
  const a = FaultProxy.plan(schedule);
  assert.deepEqual(a, FaultProxy.plan(schedule));
  assert.notDeepEqual(a, FaultProxy.plan({ ...schedule, seed: 43 }));
  assert.equal(a.length, 50);
  for (let i = 1; i < a.length; i++) assert.ok(a[i]!.at >= a[i - 1]!.at);
  assert.ok(a.every((f) => f.at >= 0 && f.at <= 20_000 && f.fault.kind !== "slow"));
  assert.ok(a.some((f) => f.fault.kind === "drop") && a.some((f) => f.fault.kind === "stall"));
});

test("FaultProxy.run() applies a schedule's faults at their moments", () =>
  withProxy(async (proxy) => {
    const s = await dial(proxy.address.port);
    const closed = new Promise<void>((r) => s.once("close", () => r()));
    const started = Date.now();
    const applied = await proxy.run({ seed: 7, count: 3, spanMs: 300, weights: { drop: 1 } });
    assert.equal(applied.length, 3);
    assert.ok(Date.now() - started >= 290);
    await closed;
    assert.ok(applied.every((f) => f.fault.kind === "drop"));
  }));
