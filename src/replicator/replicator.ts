/**
 * The replicator role: a TLS 1.3 mutual-TLS listener (default port 1500) that takes the
 * replication streams of the machines assigned to it, writes them durably into the staging
 * store, cuts PITs, and, during failback, captures the recovered machine's disks into its
 * branch and streams that branch to the failback client. It implements ReplicatorControl
 * for the console and reports back through a ConsoleLink. Assignments are kept in
 * `replicator.json` under its data directory so a restart knows its machines.
 */
import { createServer, type Server, type TLSSocket } from "node:tls";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileDurably } from "../common/durable-file.js";
import { UserError, errorMessage } from "../common/errors.js";
import { logger, type Logger } from "../common/log.js";
import type { ConsoleLink, ReplicatorControl, ReplicatorEndpoint } from "../console/replicator-control.js";
import type { DiskSpec, Pit, StagingStore, Timeline } from "../store/staging-store.js";
import { FrameSocket } from "../wire/frame-socket.js";
import {
  CHUNK_SIZE,
  DEFAULT_PORT,
  FrameType,
  PROTOCOL_VERSION,
  type Frame,
  type Hello,
} from "../wire/frames.js";
import { peerIdentity } from "../wire/peer-identity.js";
import { TLS_POLICY } from "../wire/tls-policy.js";
import { ScanTracker } from "../agent/trackers/scan/scan-tracker.js";
import { FailbackSession } from "./failback-session.js";
import { PitCutter } from "./pit-cutter.js";
import { applyRetention, nameSnapshot, unnameSnapshot, type RetentionOutcome } from "./pit-retention.js";
import type { RetentionPolicy } from "../store/retention/retention-policy.js";
import { SourceSession } from "./source-session.js";
import { TimelineSink } from "./timeline-sink.js";

export interface ReplicatorTls {
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem: string;
}

export interface ReplicatorOptions {
  readonly id: string;
  readonly dataDir: string;
  readonly store: StagingStore;
  readonly host?: string;
  /** Advertised to agents; defaults to host. */
  readonly advertiseHost?: string;
  readonly port?: number;
  /** Flow-control window offered to agents. */
  readonly windowBytes?: number;
  readonly log?: Logger;
}

interface Assignment {
  timelineId: string;
  disks: DiskSpec[];
  direction: "FAILOVER" | "FAILBACK";
  failback?: { branchId: string; recoveredDisks: string[] };
}

interface Capture {
  readonly tracker: ScanTracker;
  readonly sink: TimelineSink;
  readonly abort: AbortController;
  readonly done: Promise<void>;
}

const NO_LINK: ConsoleLink = {
  connectionChanged: () => undefined,
  pitCut: () => undefined,
  failbackProgress: () => undefined,
};

export class Replicator implements ReplicatorControl {
  private server: Server | null = null;
  private port = 0;
  private assignments = new Map<string, Assignment>();
  /** The current source connection of each machine, and when its session has finished. */
  private readonly sources = new Map<string, { conn: FrameSocket; done: Promise<void> }>();
  private readonly failbacks = new Map<string, FailbackSession>();
  private readonly captures = new Map<string, Capture>();
  private readonly cutters = new Map<string, PitCutter>();
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private saving: Promise<void> = Promise.resolve();
  link: ConsoleLink = NO_LINK;

  private constructor(private readonly opts: ReplicatorOptions) {
    this.log = opts.log ?? logger("replicator");
  }

  /** Loads assignments; call `listen` once the TLS material exists. */
  static async open(opts: ReplicatorOptions): Promise<Replicator> {
    const r = new Replicator(opts);
    await mkdir(opts.dataDir, { recursive: true });
    try {
      const saved = JSON.parse(await readFile(join(opts.dataDir, "replicator.json"), "utf8")) as {
        assignments: Record<string, Assignment>;
      };
      r.assignments = new Map(Object.entries(saved.assignments));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    return r;
  }

  get endpoint(): ReplicatorEndpoint {
    return {
      id: this.opts.id,
      host: this.opts.advertiseHost ?? this.opts.host ?? "127.0.0.1",
      port: this.port || (this.opts.port ?? DEFAULT_PORT),
    };
  }

  async listen(tls: ReplicatorTls): Promise<void> {
    const server = createServer(
      {
        key: tls.keyPem,
        cert: tls.certPem,
        ca: tls.caPem,
        requestCert: true,
        rejectUnauthorized: true,
        ...TLS_POLICY,
      },
      (socket) => void this.accept(socket),
    );
    server.on("tlsClientError", (err) => this.log(`Refused a TLS client: ${err.message}`));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.opts.port ?? DEFAULT_PORT, this.opts.host ?? "127.0.0.1", () => resolve());
    });
    const addr = server.address();
    this.port = typeof addr === "object" && addr ? addr.port : 0;
    this.server = server;
    // Resume failback captures that were running before a restart.
    for (const [machineId, a] of this.assignments) {
      if (a.direction === "FAILBACK" && a.failback) await this.startCapture(machineId, a.failback);
    }
  }

  private async accept(socket: TLSSocket): Promise<void> {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    const conn = new FrameSocket(socket);
    const identity = peerIdentity(socket.getPeerCertificate());
    if (!identity) {
      conn.fail("AUTH", "Client certificate names no lifeboat machine");
      return;
    }
    const a = this.assignments.get(identity.machineId);
    if (!a) {
      this.log(`Refused ${identity.machineId}: not assigned to this replicator`);
      conn.fail("AUTH", `Machine ${identity.machineId} is not assigned to replicator ${this.opts.id}`);
      return;
    }
    const frames = conn.frames();
    let hello: Hello;
    const timer = setTimeout(() => conn.fail("PROTOCOL", "No HELLO within 15 s"), 15_000);
    try {
      const first = await frames.next();
      if (first.done || first.value.type !== FrameType.HELLO) throw new Error("First frame is not HELLO");
      hello = first.value.body;
    } catch (err) {
      conn.fail("PROTOCOL", `Bad HELLO: ${errorMessage(err)}`);
      return;
    } finally {
      clearTimeout(timer);
    }
    const refusal = this.checkHello(hello, identity.machineId, identity.role, a);
    if (refusal) {
      this.log(`Refused ${identity.machineId} (${identity.role}): ${refusal.message}`);
      conn.fail(refusal.code, refusal.message);
      return;
    }
    if (identity.role === "source") await this.runSource(identity.machineId, a, conn, frames);
    else await this.runFailback(identity.machineId, a, conn, frames);
  }

  private checkHello(
    hello: Hello,
    machineId: string,
    role: "source" | "failback",
    a: Assignment,
  ): { code: "AUTH" | "STATE" | "PROTOCOL"; message: string } | null {
    if (hello.machineId !== machineId || hello.role !== role)
      return {
        code: "AUTH",
        message: `Certificate is for ${machineId} (${role}), HELLO says ${hello.machineId} (${hello.role})`,
      };
    if (hello.version !== PROTOCOL_VERSION)
      return { code: "PROTOCOL", message: `Unsupported protocol version ${hello.version}` };
    if (hello.chunkSize !== CHUNK_SIZE)
      return { code: "PROTOCOL", message: `Unsupported chunk size ${hello.chunkSize}` };
    const layout = (d: readonly { sizeBytes: number }[]): string => d.map((x) => x.sizeBytes).join(",");
    if (layout(hello.disks) !== layout(a.disks))
      return {
        code: "STATE",
        message: `Disk layout ${layout(hello.disks)} does not match the registered ${layout(a.disks)} of ${machineId}`,
      };
    if (role === "source" && a.direction !== "FAILOVER")
      return {
        code: "STATE",
        message: `Machine ${machineId} is failed over (replication direction FAILBACK): the agent resumes after return to normal operation`,
      };
    if (role === "failback" && (a.direction !== "FAILBACK" || !a.failback))
      return {
        code: "STATE",
        message: `Machine ${machineId} is not prepared for failback: run \`lifeboat failback prepare\` first`,
      };
    return null;
  }

  private async runSource(
    machineId: string,
    a: Assignment,
    conn: FrameSocket,
    frames: AsyncGenerator<Frame>,
  ): Promise<void> {
    // The newest connection of a machine wins, but only once the old session's appends are
    // all stored: it reads lastTag for its WELCOME, and two sessions must never append the
    // same machine's batches side by side.
    const previous = this.sources.get(machineId);
    let finished!: () => void;
    this.sources.set(machineId, { conn, done: new Promise<void>((resolve) => (finished = resolve)) });
    try {
      if (previous) {
        previous.conn.close();
        await previous.done;
      }
      // While it waited, this connection may have been replaced, or the machine failed over.
      if (conn.closed) return;
      if (a.direction !== "FAILOVER") {
        conn.fail("STATE", `Machine ${machineId} is being failed back: replication is reversed`);
        return;
      }
      const timeline = this.opts.store.timeline(a.timelineId);
      const session = new SourceSession({
        conn,
        frames,
        machineId,
        timeline,
        pits: this.cutterFor(machineId, timeline),
        windowBytes: this.opts.windowBytes ?? 64 * 1024 * 1024,
        log: this.log,
      });
      this.log(
        `Source ${machineId} connected to timeline ${timeline.info.id} (last tag ${timeline.lastTag() ?? "none"})`,
      );
      this.link.connectionChanged(machineId, "source", true);
      await session.run(this.abort.signal);
    } finally {
      if (this.sources.get(machineId)?.conn === conn) {
        this.sources.delete(machineId);
        this.link.connectionChanged(machineId, "source", false);
      }
      conn.close();
      finished();
    }
  }

  private async runFailback(
    machineId: string,
    a: Assignment,
    conn: FrameSocket,
    frames: AsyncGenerator<Frame>,
  ): Promise<void> {
    const branch = this.opts.store.timeline(a.failback!.branchId);
    const session = new FailbackSession(
      conn,
      frames,
      branch,
      (p) => this.link.failbackProgress(machineId, p),
      this.log,
    );
    this.failbacks.set(machineId, session);
    this.log(`Failback client of ${machineId} connected to branch ${branch.info.id}`);
    this.link.connectionChanged(machineId, "failback", true);
    try {
      await session.run(this.abort.signal);
    } finally {
      if (this.failbacks.get(machineId) === session) {
        this.failbacks.delete(machineId);
        this.link.connectionChanged(machineId, "failback", false);
      }
    }
  }

  private cutterFor(machineId: string, timeline: Timeline): PitCutter {
    let c = this.cutters.get(timeline.info.id);
    if (!c) {
      c = new PitCutter(timeline, (pit) => this.link.pitCut(machineId, timeline.info.id, pit));
      this.cutters.set(timeline.info.id, c);
    }
    return c;
  }

  private async save(): Promise<void> {
    const write = (): Promise<void> =>
      writeFileDurably(
        join(this.opts.dataDir, "replicator.json"),
        JSON.stringify({ assignments: Object.fromEntries(this.assignments) }, null, 2),
      );
    this.saving = this.saving.then(write, write);
    await this.saving;
  }

  // ReplicatorControl

  async assignMachine(
    machineId: string,
    timelineId: string,
    disks: readonly DiskSpec[],
    keyScope?: string,
  ): Promise<void> {
    const existing = this.assignments.get(machineId);
    if (existing && existing.timelineId !== timelineId)
      throw new UserError(`Machine ${machineId} is already assigned to timeline ${existing.timelineId}`, 409);
    if (!this.opts.store.has(timelineId)) {
      await this.opts.store.createTimeline(
        timelineId,
        disks,
        keyScope === undefined ? undefined : { keyScope },
      );
    }
    this.assignments.set(machineId, { timelineId, disks: [...disks], direction: "FAILOVER" });
    await this.save();
  }

  pits(timelineId: string): Promise<readonly Pit[]> {
    return Promise.resolve(this.opts.store.timeline(timelineId).pits());
  }

  nameSnapshot(timelineId: string, name: string, seq?: number): Promise<Pit> {
    return nameSnapshot(this.opts.store.timeline(timelineId), name, seq);
  }

  deleteSnapshot(timelineId: string, seq: number): Promise<Pit> {
    return unnameSnapshot(this.opts.store.timeline(timelineId), seq);
  }

  applyRetention(timelineId: string, policy: RetentionPolicy, now: number): Promise<RetentionOutcome> {
    return applyRetention(this.opts.store.timeline(timelineId), policy, now);
  }

  async createBranch(branchId: string, timelineId: string, seq: number): Promise<void> {
    await this.opts.store.createBranch(branchId, { timeline: timelineId, seq });
  }

  async dropTimeline(timelineId: string): Promise<void> {
    this.cutters.get(timelineId)?.stop();
    this.cutters.delete(timelineId);
    await this.opts.store.dropTimeline(timelineId);
  }

  openTimeline(timelineId: string): Timeline {
    return this.opts.store.timeline(timelineId);
  }

  async startFailback(machineId: string, branchId: string, recoveredDisks: readonly string[]): Promise<void> {
    const a = this.assignments.get(machineId);
    if (!a) throw new UserError(`Machine ${machineId} is not assigned to replicator ${this.opts.id}`, 404);
    const branch = this.opts.store.timeline(branchId);
    if (recoveredDisks.length !== branch.info.disks.length)
      throw new UserError(
        `Machine ${machineId} has ${branch.info.disks.length} disks, ${recoveredDisks.length} recovered disks given`,
      );
    a.direction = "FAILBACK";
    a.failback = { branchId, recoveredDisks: [...recoveredDisks] };
    await this.save();
    this.sources
      .get(machineId)
      ?.conn.fail("STATE", `Machine ${machineId} is being failed back: replication is reversed`);
    await this.startCapture(machineId, a.failback);
  }

  /** Captures the recovered machine's disks into its branch, continuously. */
  private async startCapture(
    machineId: string,
    fb: { branchId: string; recoveredDisks: string[] },
  ): Promise<void> {
    if (this.captures.has(machineId)) return;
    const branch = this.opts.store.timeline(fb.branchId);
    const tracker = await ScanTracker.open({
      disks: fb.recoveredDisks.map((path, i) => ({ path, sizeBytes: branch.info.disks[i]!.sizeBytes })),
      stateDir: join(this.opts.dataDir, "captures", machineId),
      intervalMs: 1000,
    });
    const sink = new TimelineSink(branch, this.cutterFor(machineId, branch));
    const abort = new AbortController();
    await tracker.prepare({ timelineId: branch.info.id, fresh: false }, sink, abort.signal);
    const done = tracker.run(sink, abort.signal).catch((err: unknown) => {
      if (!abort.signal.aborted)
        this.log(`Capture of ${machineId}'s recovered disks stopped: ${errorMessage(err)}`);
    });
    this.captures.set(machineId, { tracker, sink, abort, done });
    this.log(`Capturing the recovered disks of ${machineId} into branch ${branch.info.id}`);
  }

  private async stopCapture(machineId: string, finalPass: boolean): Promise<void> {
    const c = this.captures.get(machineId);
    if (!c) return;
    if (finalPass) {
      await c.tracker.passNow(c.sink, this.abort.signal);
      await c.sink.drain();
    }
    c.abort.abort();
    await c.done;
    await c.tracker.close();
    this.captures.delete(machineId);
  }

  async finishFailback(machineId: string, signal?: AbortSignal): Promise<{ seq: number }> {
    const session = this.failbacks.get(machineId);
    if (!session)
      throw new UserError(
        `The failback client of ${machineId} is not connected: start \`lifeboat failback-client\` on the original machine`,
        409,
      );
    signal?.throwIfAborted();
    await this.stopCapture(machineId, true);
    try {
      return { seq: await session.finish() };
    } catch (err) {
      // The launch back failed (the client went away): keep capturing the recovered
      // machine, which is still the one running, so that a retry misses nothing.
      const fb = this.assignments.get(machineId)?.failback;
      if (fb) await this.startCapture(machineId, fb);
      throw err;
    }
  }

  async returnToNormal(machineId: string, fromTimelineId: string, newTimelineId: string): Promise<void> {
    const a = this.assignments.get(machineId);
    if (!a) throw new UserError(`Machine ${machineId} is not assigned to replicator ${this.opts.id}`, 404);
    await this.stopCapture(machineId, false);
    if (!this.opts.store.has(newTimelineId)) {
      const from = this.opts.store.timeline(fromTimelineId);
      await this.opts.store.createBranch(newTimelineId, { timeline: fromTimelineId, seq: from.lastSeq() });
    }
    a.timelineId = newTimelineId;
    a.direction = "FAILOVER";
    delete a.failback;
    await this.save();
  }

  async close(): Promise<void> {
    this.abort.abort();
    for (const c of this.cutters.values()) await c.flush();
    for (const id of [...this.captures.keys()]) await this.stopCapture(id, false);
    for (const s of this.sources.values()) s.conn.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
