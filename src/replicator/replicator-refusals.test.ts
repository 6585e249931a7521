import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type TLSSocket } from "node:tls";
import { join } from "node:path";
import { Agent } from "../agent/agent.js";
import type { AgentIdentity } from "../agent/agent-identity.js";
import { encodeFrame } from "../wire/codec.js";
import { FrameReader } from "../wire/frame-reader.js";
import { FrameType, type Frame } from "../wire/frames.js";
import { TLS_POLICY } from "../wire/tls-policy.js";
import { waitFor } from "../common/wait-for.js";
import {
  createProjectToken,
  makeImage,
  removeDir,
  startSite,
  type SiteFixture,
} from "../testing/site-fixture.js";

const quiet = (): void => undefined;

async function register(fx: SiteFixture, token: string, name: string): Promise<AgentIdentity> {
  const disk = join(fx.dir, `${name}.img`);
  await makeImage(disk, 4, 1);
  const agent = await Agent.start({ token, disks: [disk], name, stateDir: join(fx.dir, name), log: quiet });
  return agent.identity;
}

function dial(
  fx: SiteFixture,
  tls: { certPem?: string; keyPem?: string; caPem: string },
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({
      host: "127.0.0.1",
      port: fx.site.replicator.endpoint.port,
      servername: "localhost",
      ca: tls.caPem,
      ...(tls.certPem ? { cert: tls.certPem, key: tls.keyPem } : {}),
      ...TLS_POLICY,
    });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Sends raw bytes and collects frames until the server closes; resolves with them (or the socket error). */
function exchange(s: TLSSocket, bytes: Buffer[]): Promise<{ frames: Frame[]; error?: Error }> {
  return new Promise((resolve) => {
    const reader = new FrameReader();
    const frames: Frame[] = [];
    s.on("data", (d: Buffer) => frames.push(...reader.push(d)));
    s.on("error", (error: Error) => resolve({ frames, error }));
    s.on("close", () => resolve({ frames }));
    for (const b of bytes) s.write(b);
  });
}

function hello(identity: AgentIdentity, machineId = identity.machineId): Buffer {
  return Buffer.concat(
    encodeFrame({
      type: FrameType.HELLO,
      body: {
        version: 1,
        role: "source",
        machineId,
        disks: identity.disks.map((d) => ({ id: d.id, sizeBytes: d.sizeBytes })),
        chunkSize: 65536,
      },
    }),
  );
}

function errorOf(frames: Frame[]): string {
  const e = frames.find((f) => f.type === FrameType.ERROR);
  return e?.type === FrameType.ERROR ? `${e.body.code}: ${e.body.message}` : "";
}

/** Everything the store holds for a timeline, to check a refusal changed nothing. */
function storeState(fx: SiteFixture, timelineId: string): string {
  const t = fx.site.replicator.openTimeline(timelineId);
  return JSON.stringify({ seq: t.lastSeq(), tag: t.lastTag() ?? null, pits: t.pits() });
}

test("Replicator refuses clients without a certificate from its CA, and certificates used for another machine", async () => {
  const fx = await startSite();
  const other = await startSite();
  try {
    const a = await register(fx, await createProjectToken(fx.api, "p1"), "a");
    const b = await register(fx, await createProjectToken(fx.api, "p2"), "b");
    const foreign = await register(other, await createProjectToken(other.api, "px"), "x");
    const timelineA = `tl-${a.machineId}-1`;
    const before = storeState(fx, timelineA);

    // No client certificate: the handshake fails.
    const noCert = await dial(fx, { caPem: a.caPem }).then(
      (s) => exchange(s, [hello(a)]),
      (error: Error) => ({ frames: [] as Frame[], error }),
    );
    assert.ok(noCert.error || noCert.frames.length === 0, "a client without a certificate got an answer");
    assert.ok(!noCert.frames.some((f) => f.type === FrameType.WELCOME));

    // A certificate from another CA: refused at the handshake.
    const foreignResult = await dial(fx, {
      caPem: a.caPem,
      certPem: foreign.certPem,
      keyPem: foreign.keyPem,
    }).then(
      (s) => exchange(s, [hello(foreign)]),
      (error: Error) => ({ frames: [] as Frame[], error }),
    );
    assert.ok(
      !foreignResult.frames.some((f) => f.type === FrameType.WELCOME),
      "a foreign certificate was welcomed",
    );

    // Machine b's certificate (another project) speaking for machine a: refused.
    const s = await dial(fx, b);
    const spoof = await exchange(s, [hello(b, a.machineId)]);
    assert.match(errorOf(spoof.frames), /^AUTH: Certificate is for/);
    assert.ok(!spoof.frames.some((f) => f.type === FrameType.WELCOME));
    assert.equal(storeState(fx, timelineA), before);
  } finally {
    await fx.close();
    await other.close();
    await removeDir(fx.dir);
    await removeDir(other.dir);
  }
});

test("Replicator closes a connection on a malformed, truncated or out-of-range frame and stores nothing of it", async () => {
  const fx = await startSite();
  try {
    const a = await register(fx, await createProjectToken(fx.api), "a");
    const timeline = `tl-${a.machineId}-1`;
    const good = Buffer.concat(
      encodeFrame({
        type: FrameType.BATCH,
        body: {
          tag: 1,
          consistent: true,
          extents: [{ disk: 0, offset: 0, length: 4096, kind: "data", data: Buffer.alloc(4096, 7) }],
        },
      }),
    );
    // One valid batch first, so there is something that must stay as it is.
    const s0 = await dial(fx, a);
    const ok = await new Promise<Frame[]>((resolve) => {
      const reader = new FrameReader();
      const got: Frame[] = [];
      s0.on("data", (d: Buffer) => {
        got.push(...reader.push(d));
        if (got.some((f) => f.type === FrameType.ACK)) {
          s0.destroy();
          resolve(got);
        }
      });
      s0.write(hello(a));
      s0.write(good);
    });
    assert.ok(ok.some((f) => f.type === FrameType.ACK));
    // The PIT of a consistent batch is cut just after its ACK.
    await waitFor(
      "the PIT of the good batch",
      () => Promise.resolve(fx.site.replicator.openTimeline(timeline).pits().length === 1),
      5000,
    );
    const before = storeState(fx, timeline);

    const garbage = Buffer.from([0, 0, 0, 9, 3, 0, 0, 0, 0, 0, 0, 0, 1]); // a BATCH with a tag and nothing after it
    const r1 = await exchange(await dial(fx, a), [hello(a), garbage]);
    assert.match(
      errorOf(r1.frames),
      /^PROTOCOL: Truncated BATCH frame/,
      JSON.stringify({ types: r1.frames.map((f) => f.type), error: r1.error?.message }),
    );

    const tag2 = Buffer.concat(
      encodeFrame({
        type: FrameType.BATCH,
        body: {
          tag: 2,
          consistent: true,
          extents: [{ disk: 0, offset: 4096, length: 4096, kind: "data", data: Buffer.alloc(4096, 9) }],
        },
      }),
    );
    const s2 = await dial(fx, a);
    s2.write(hello(a));
    s2.write(tag2.subarray(0, tag2.length - 1000)); // truncated: the connection drops mid-frame
    await new Promise((r) => setTimeout(r, 300));
    s2.destroy();

    const beyond = Buffer.concat(
      encodeFrame({
        type: FrameType.BATCH,
        body: {
          tag: 3,
          consistent: true,
          extents: [{ disk: 0, offset: 4 * 1024 * 1024, length: 4096, kind: "zero" }],
        },
      }),
    );
    const r3 = await exchange(await dial(fx, a), [hello(a), beyond]);
    assert.match(errorOf(r3.frames), /^PROTOCOL: .*beyond disk/);

    const unknownType = Buffer.from([0, 0, 0, 1, 42]);
    const r4 = await exchange(await dial(fx, a), [hello(a), unknownType]);
    assert.match(errorOf(r4.frames), /^PROTOCOL: Unknown frame type 42/);

    await new Promise((r) => setTimeout(r, 300));
    assert.equal(storeState(fx, timeline), before);
  } finally {
    await fx.close();
    await removeDir(fx.dir);
  }
});

test("Replicator welcomes a newer connection of a machine only after the older one's appends are stored", async () => {
  const fx = await startSite();
  try {
    const a = await register(fx, await createProjectToken(fx.api), "a");
    // register() made a 4 MiB disk: 16 batches of 256 KiB cover it.
    const batches = Array.from({ length: 16 }, (_, i) =>
      Buffer.concat(
        encodeFrame({
          type: FrameType.BATCH,
          body: {
            tag: i + 1,
            consistent: false,
            extents: [
              {
                disk: 0,
                offset: i * 262144,
                length: 262144,
                kind: "data",
                data: Buffer.alloc(262144, i + 1),
              },
            ],
          },
        }),
      ),
    );
    const first = await dial(fx, a);
    const firstAck = new Promise<void>((resolve) => {
      const reader = new FrameReader();
      first.on("data", (d: Buffer) => {
        if (reader.push(d).some((f) => f.type === FrameType.ACK)) resolve();
      });
    });
    first.on("error", () => undefined);
    first.write(hello(a));
    for (const b of batches) first.write(b);
    await firstAck; // the rest are queued behind it in the old session

    const second = await dial(fx, a);
    const welcome = await new Promise<Frame>((resolve) => {
      const reader = new FrameReader();
      second.on("data", (d: Buffer) => {
        const w = reader.push(d).find((f) => f.type === FrameType.WELCOME);
        if (w) resolve(w);
      });
      second.write(hello(a));
    });
    assert.ok(welcome.type === FrameType.WELCOME);
    const told = welcome.body.lastTag;
    await new Promise((r) => setTimeout(r, 500));
    const t = fx.site.replicator.openTimeline(`tl-${a.machineId}-1`);
    assert.equal(
      t.lastTag() ?? null,
      told,
      "the old session appended after the new one was told where to resume",
    );
    second.destroy();
  } finally {
    await fx.close();
    await removeDir(fx.dir);
  }
});
