/**
 * The failback client: runs on the original machine (the same binary as the agent, no ISO)
 * and receives the recovered machine's disks. It registers with the install token and the
 * machine id, sends the hashes of its own disks so that only differing chunks come back,
 * writes what arrives, makes it durable at every consistent point, and finishes when the
 * operator launches back on the source. Reconnects with backoff; every reconnect compares
 * hashes again, so an interrupted failback never re-sends what already arrived.
 */
import { open, type FileHandle } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage, ProtocolError } from "../common/errors.js";
import { parseInstallToken } from "../common/install-token.js";
import { logger, type Logger } from "../common/log.js";
import { PeerError } from "../wire/frame-socket.js";
import { FrameType, HASHES_PER_FRAME, type Batch } from "../wire/frames.js";
import { newKeyPair } from "./agent-identity.js";
import { fetchPinnedCa } from "../common/fetch-pinned-ca.js";
import { ApiClient } from "../cli/client/api-client.js";
import { diskSize } from "./disk-size.js";
import { dialReplicator } from "./dial-replicator.js";
import { DISK_READ_BYTES, hashDisk } from "./disk-hashes.js";

export interface FailbackClientOptions {
  readonly token: string;
  readonly machineId: string;
  readonly disks: readonly string[];
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  /** Called as data arrives. */
  readonly onProgress?: (p: { receivedBytes: number; caughtUp: boolean }) => void;
}

export interface FailbackResult {
  readonly seq: number;
  /** Data bytes received (changed blocks only). */
  readonly receivedBytes: number;
  /** Bytes of hash lists sent. */
  readonly hashBytes: number;
  readonly diskBytes: number;
}

export async function runFailbackClient(opts: FailbackClientOptions): Promise<FailbackResult> {
  const log = opts.log ?? logger("failback-client");
  const token = parseInstallToken(opts.token);
  const caPem = await fetchPinnedCa(token.consoleUrl, token.caFingerprint);
  const disks: { path: string; sizeBytes: number }[] = [];
  for (const path of opts.disks) disks.push({ path, sizeBytes: await diskSize(path) });
  const keys = newKeyPair();
  const reg = await new ApiClient({ consoleUrl: token.consoleUrl, caPem }).post<{
    certPem: string;
    caPem: string;
    replicator: { host: string; port: number };
    branchId: string;
  }>("/api/failback/register", {
    token: opts.token,
    machineId: opts.machineId,
    publicKeyPem: keys.publicKeyPem,
    disks,
  });
  const tls = { caPem: reg.caPem, certPem: reg.certPem, keyPem: keys.privateKeyPem };
  const consoleApi = new ApiClient({ consoleUrl: token.consoleUrl, caPem: reg.caPem, clientCert: tls });
  const totalBytes = disks.reduce((s, d) => s + d.sizeBytes, 0);
  log(`Registered as failback client of ${opts.machineId}; receiving branch ${reg.branchId}`);
  const handles: FileHandle[] = [];
  for (const d of disks) handles.push(await open(d.path, "r+"));
  let receivedBytes = 0;
  let hashBytes = 0;
  let caughtUp = false;
  let lastReport = 0;
  const report = async (force = false): Promise<void> => {
    if (!force && Date.now() - lastReport < 2000) return;
    lastReport = Date.now();
    await consoleApi
      .post("/api/failback/status", { sentBytes: receivedBytes, totalBytes, caughtUp })
      .catch((err: unknown) => log(`Failback status report failed: ${errorMessage(err)}`));
  };
  try {
    let backoff = 500;
    while (true) {
      opts.signal?.throwIfAborted();
      const dial = {
        host: reg.replicator.host,
        port: reg.replicator.port,
        tls,
        machineId: opts.machineId,
        role: "failback" as const,
        disks: disks.map((d, i) => ({ id: `disk${i}`, sizeBytes: d.sizeBytes })),
      };
      try {
        const conn = await dialReplicator(dial, opts.signal ?? new AbortController().signal);
        backoff = 500;
        // Send our hashes; the replicator answers with the chunks that differ.
        for (const [i, d] of disks.entries()) {
          const hashes = await hashDisk(handles[i]!, d.sizeBytes, opts.signal);
          const chunks = hashes.length;
          for (let first = 0; first < chunks; first += HASHES_PER_FRAME) {
            const slice = hashes.subarray(first, Math.min(first + HASHES_PER_FRAME, chunks));
            hashBytes += 15 + slice.length * 8;
            await conn.socket.send({
              type: FrameType.HASHES,
              body: { disk: i, firstChunk: first, hashes: slice },
            });
          }
        }
        for await (const frame of conn.frames) {
          if (frame.type === FrameType.BATCH) {
            receivedBytes += await apply(frame.body, handles, disks);
            if (frame.body.consistent) {
              for (const h of handles) await h.datasync();
              caughtUp = true;
              await conn.socket.send({
                type: FrameType.ACK,
                body: { tag: frame.body.tag, seq: frame.body.tag },
              });
              await report();
            } else caughtUp = false;
            opts.onProgress?.({ receivedBytes, caughtUp });
          } else if (frame.type === FrameType.FINISH) {
            for (const h of handles) await h.sync();
            await conn.socket.send({ type: FrameType.FINISHED, body: { seq: frame.body.seq } });
            conn.socket.close();
            await report(true);
            log(`Failback complete at seq ${frame.body.seq}: ${receivedBytes} bytes received`);
            return {
              seq: frame.body.seq,
              receivedBytes,
              hashBytes,
              diskBytes: totalBytes,
            };
          } else throw new ProtocolError(`Unexpected frame type ${frame.type} from the replicator`);
        }
        throw new Error("Replicator closed the failback stream");
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        if (err instanceof PeerError && err.code === "AUTH") throw err;
        log(`Failback stream interrupted: ${errorMessage(err)}; retrying in ${Math.round(backoff / 1000)} s`);
      }
      await sleep(backoff, undefined, opts.signal ? { signal: opts.signal } : {});
      backoff = Math.min(backoff * 2, 10_000);
    }
  } finally {
    for (const h of handles) await h.close();
  }
}

async function apply(batch: Batch, handles: FileHandle[], disks: { sizeBytes: number }[]): Promise<number> {
  let bytes = 0;
  for (const e of batch.extents) {
    const h = handles[e.disk];
    const d = disks[e.disk];
    if (!h || !d || e.offset + e.length > d.sizeBytes)
      throw new ProtocolError(
        `BATCH ${batch.tag}: extent beyond the disks (disk ${e.disk}, offset ${e.offset})`,
      );
    if (e.kind === "data") {
      await h.write(e.data, 0, e.length, e.offset);
      bytes += e.length;
    } else {
      const zeros = Buffer.alloc(Math.min(e.length, DISK_READ_BYTES));
      for (let at = 0; at < e.length; at += zeros.length)
        await h.write(zeros, 0, Math.min(zeros.length, e.length - at), e.offset + at);
    }
  }
  return bytes;
}
