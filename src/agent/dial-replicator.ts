/**
 * Dials a replicator: mutual TLS (TLS 1.3, AES-256-GCM only) with the machine's
 * certificate, HELLO, and the WELCOME answer. The replication link and the failback client
 * both start here and then drive the frames their own way.
 */
import { connect, type TLSSocket } from "node:tls";
import { ProtocolError } from "../common/errors.js";
import { FrameSocket } from "../wire/frame-socket.js";
import {
  CHUNK_SIZE,
  FrameType,
  PROTOCOL_VERSION,
  type Frame,
  type Role,
  type Welcome,
} from "../wire/frames.js";
import { TLS_POLICY } from "../wire/tls-policy.js";

export interface DialOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: { readonly certPem: string; readonly keyPem: string; readonly caPem: string };
  readonly machineId: string;
  readonly role: Role;
  readonly disks: readonly { readonly id: string; readonly sizeBytes: number }[];
  /** The name the replicator's certificate must carry when `host` is not it (a NAT or proxy address). */
  readonly servername?: string;
  /** Give up when the handshake and WELCOME take longer than this; default 30 s. */
  readonly connectTimeoutMs?: number;
}

export interface Dialed {
  readonly socket: FrameSocket;
  readonly frames: AsyncGenerator<Frame>;
  readonly welcome: Welcome;
}

/** Rejects with PeerError when the replicator refuses (AUTH, STATE), or a network error. */
export async function dialReplicator(opts: DialOptions, signal: AbortSignal): Promise<Dialed> {
  signal.throwIfAborted();
  const timeoutMs = opts.connectTimeoutMs ?? 30_000;
  const servername = opts.servername ?? opts.host;
  const s = connect({
    host: opts.host,
    port: opts.port,
    ca: opts.tls.caPem,
    cert: opts.tls.certPem,
    key: opts.tls.keyPem,
    servername: servername === "127.0.0.1" ? "localhost" : servername,
    ...TLS_POLICY,
  });
  // A path that stalls (no RST, no answer) would otherwise hold the dial forever.
  const timer = setTimeout(
    () =>
      s.destroy(
        new Error(
          `No WELCOME from replicator ${opts.host}:${opts.port} within ${Math.round(timeoutMs / 1000)} s`,
        ),
      ),
    timeoutMs,
  );
  const onAbort = (): void => void s.destroy(new Error("aborted"));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await welcomed(s, opts);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}

async function welcomed(s: TLSSocket, opts: DialOptions): Promise<Dialed> {
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const fail = (err: Error): void => {
      s.destroy();
      reject(err);
    };
    s.once("secureConnect", () => {
      s.off("error", fail);
      resolve(s);
    });
    s.once("error", fail);
  });
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 10_000);
  const conn = new FrameSocket(socket);
  const frames = conn.frames();
  try {
    await conn.send({
      type: FrameType.HELLO,
      body: {
        version: PROTOCOL_VERSION,
        role: opts.role,
        machineId: opts.machineId,
        disks: opts.disks,
        chunkSize: CHUNK_SIZE,
      },
    });
    const first = await frames.next();
    if (first.done || first.value.type !== FrameType.WELCOME)
      throw new ProtocolError("Replicator did not answer HELLO with WELCOME");
    return { socket: conn, frames, welcome: first.value.body };
  } catch (err) {
    conn.close();
    throw err;
  }
}
