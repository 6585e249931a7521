/**
 * The agent role. First run: registers with the console using the install token (pins the
 * console's CA by the token's fingerprint, makes its own key, receives a certificate and a
 * replicator). Then: connect to the replicator, align the tracker with the standby
 * (continue, all-zero, or compare hashes), replicate, and report state, progress and lag to
 * the console every couple of seconds. Reconnects with backoff; a restart resumes from its
 * state directory without a full resync. When the replicator cannot store (its disk is
 * full) the agent reports STALLED with the replicator's reason, keeps its spool and retries
 * with a growing backoff until a batch is acknowledged again.
 */
import { cpus, hostname, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../common/errors.js";
import { parseInstallToken } from "../common/install-token.js";
import { logger, type Logger } from "../common/log.js";
import type { DiskProgress } from "../common/model.js";
import type { ReplicationState } from "../common/states.js";
import { PeerError } from "../wire/frame-socket.js";
import { loadIdentity, newKeyPair, saveIdentity, type AgentIdentity } from "./agent-identity.js";
import { fetchPinnedCa } from "../common/fetch-pinned-ca.js";
import { ApiClient } from "../cli/client/api-client.js";
import { diskSize } from "./disk-size.js";
import { RateMeter } from "./rate-meter.js";
import { ReplicationLink } from "./replication-link.js";
import { etaSeconds, replicationState } from "./replication-state.js";
import type { ChangeTracker, TrackerDiskProgress } from "./trackers/change-tracker.js";
import { openTracker, type TrackerOptions } from "./trackers/registry.js";

export interface AgentOptions {
  readonly token?: string;
  readonly disks: readonly string[];
  readonly name?: string;
  readonly stateDir: string;
  readonly scanIntervalMs?: number;
  /** Bound of the on-disk spool of unacknowledged batches; default DEFAULT_SPOOL_LIMIT_BYTES. */
  readonly spoolLimitBytes?: number;
  readonly statusIntervalMs?: number;
  /**
   * Dial this address instead of the replicator's that the console gave (a NAT or a proxy
   * in between); the replicator's certificate is still checked against the console's name.
   */
  readonly replicatorAddress?: { readonly host: string; readonly port: number };
  /** Reconnect backoff: the first wait and the most it grows to; default 500 ms and 10 s. */
  readonly retry?: { readonly minMs: number; readonly maxMs: number };
  /** Report STALLED after this long without an ACK while data is in flight; default 15 s. */
  readonly stallReportMs?: number;
  /** Drop and remake a connection that makes no progress for this long; default 60 s. */
  readonly ackTimeoutMs?: number;
  readonly log?: Logger;
  /** Change tracker (`trackers/registry.ts`), default scan. */
  readonly tracker?: string;
  /** Tracker settings besides disks, state and log (e.g. the intercept tracker's NBD endpoint). */
  readonly trackerOptions?: Omit<TrackerOptions, "disks" | "stateDir" | "log">;
  /** Hears where each disk is served, once the tracker runs (intercept: NBD URIs). */
  readonly onExports?: (exports: readonly { diskId: string; path: string; uri: string }[]) => void;
}

export const DEFAULT_SPOOL_LIMIT_BYTES = 1024 * 1024 * 1024;

export interface AgentStatus {
  readonly state: ReplicationState;
  readonly progressPercent: number;
  readonly lagSeconds: number | null;
  readonly etaSeconds: number | null;
  readonly reason?: string;
  readonly disks: DiskProgress[];
  readonly bytesSent: number;
  readonly tracker?: string;
}

export class Agent {
  private tracker: ChangeTracker | null = null;
  private link: ReplicationLink | null = null;
  private readonly abort = new AbortController();
  private reason: string | undefined;
  private paused = false;
  /** Why the standby stores nothing (its ERROR STORAGE), until the next ACK. */
  private stalled: string | undefined;
  private backoffMs: number;
  private startedSyncAt = 0;
  private readonly readRate = new RateMeter();
  private readonly console: ApiClient;

  private constructor(
    readonly identity: AgentIdentity,
    private readonly opts: AgentOptions,
    private readonly log: Logger,
  ) {
    this.backoffMs = opts.retry?.minMs ?? 500;
    this.console = new ApiClient({
      consoleUrl: identity.consoleUrl,
      caPem: identity.caPem,
      clientCert: { certPem: identity.certPem, keyPem: identity.keyPem },
    });
  }

  /** Loads the identity from the state dir, or registers with the token. Exits early on refusal. */
  static async start(options: AgentOptions): Promise<Agent> {
    // Disks are recorded with absolute paths, so a later start from another directory finds them.
    const opts: AgentOptions = { ...options, disks: options.disks.map((d) => resolve(d)) };
    const log = opts.log ?? logger("agent");
    let identity = await loadIdentity(opts.stateDir);
    if (!identity) {
      if (!opts.token) throw new Error(`No agent identity in ${opts.stateDir}: pass --token to register`);
      identity = await register(opts, log);
      await saveIdentity(opts.stateDir, identity);
    } else if (
      identity.disks.map((d) => d.path).join("\n") !== opts.disks.join("\n") &&
      opts.disks.length > 0
    ) {
      throw new Error(
        `This agent replicates ${identity.disks.map((d) => d.path).join(", ")}; to protect other disks use another --state-dir`,
      );
    }
    return new Agent(identity, opts, log);
  }

  /** Replicates until `stop`. */
  async run(): Promise<void> {
    const signal = this.abort.signal;
    const { identity, opts } = this;
    this.tracker = await openTracker(opts.tracker ?? "scan", {
      scanIntervalMs: opts.scanIntervalMs ?? 1000,
      ...opts.trackerOptions,
      disks: identity.disks,
      stateDir: join(opts.stateDir, "tracker"),
      log: this.log,
    });
    const exports = identity.disks.flatMap((d, i) => {
      const uri = this.tracker?.progress().disks[i]?.nbdUri;
      return uri === undefined ? [] : [{ diskId: d.id, path: d.path, uri }];
    });
    if (exports.length > 0) opts.onExports?.(exports);
    const dial = opts.replicatorAddress ?? identity.replicator;
    this.link = new ReplicationLink({
      host: dial.host,
      port: dial.port,
      servername: identity.replicator.host,
      ...(opts.ackTimeoutMs === undefined ? {} : { ackTimeoutMs: opts.ackTimeoutMs }),
      tls: identity,
      machineId: identity.machineId,
      role: "source",
      disks: identity.disks.map((d) => ({ id: d.id, sizeBytes: d.sizeBytes })),
      spoolDir: join(opts.stateDir, "spool"),
      spoolLimitBytes: opts.spoolLimitBytes ?? DEFAULT_SPOOL_LIMIT_BYTES,
      durableSpool: this.tracker.durableSpool ?? false,
    });
    const tracker = this.tracker;
    const minBackoff = opts.retry?.minMs ?? 500;
    const maxBackoff = opts.retry?.maxMs ?? 10_000;
    this.link.onRestoredAck = (batch, timelineId) => tracker.absorb(batch, timelineId);
    this.link.onAck = () => {
      if (this.stalled !== undefined) this.log("The replicator stores data again");
      this.stalled = undefined;
      this.backoffMs = minBackoff;
    };
    this.link.log = this.log;
    // Learn the project's settings (bandwidth limit) before the first byte goes out.
    await this.reportLogged();
    const reporter = this.reportLoop(signal);
    while (!signal.aborted) {
      const run = new AbortController();
      const stopRun = (): void => run.abort();
      signal.addEventListener("abort", stopRun, { once: true });
      try {
        const welcome = await this.link.connect(signal);
        this.log(`Connected to replicator ${dial.host}:${dial.port}, timeline ${welcome.timelineId}`);
        this.reason = undefined;
        this.paused = false;
        // A refusal to store is over only when a batch is acknowledged, not at the next WELCOME.
        if (this.stalled === undefined) this.backoffMs = minBackoff;
        if (this.startedSyncAt === 0) this.startedSyncAt = Date.now();
        const closed = this.link.closed().then((err) => {
          run.abort();
          throw err;
        });
        closed.catch(() => undefined);
        await this.tracker.prepare(
          { timelineId: welcome.timelineId, fresh: welcome.fresh },
          this.link,
          run.signal,
        );
        await Promise.race([this.tracker.run(this.link, run.signal), closed]);
      } catch (err) {
        if (signal.aborted) break;
        this.reason = errorMessage(err);
        if (err instanceof PeerError && err.code === "STATE") {
          this.paused = true;
          this.stalled = undefined;
        }
        if (err instanceof PeerError && err.code === "STORAGE") this.stalled = err.message;
        this.log(
          `Replication interrupted: ${this.reason}; retrying in ${(this.backoffMs / 1000).toFixed(1)} s`,
        );
      } finally {
        run.abort();
        signal.removeEventListener("abort", stopRun);
        this.link.disconnect("restarting the connection");
      }
      await sleep(this.backoffMs * (1 + Math.random() / 4), undefined, { signal }).catch(() => undefined);
      this.backoffMs = Math.min(this.backoffMs * 2, maxBackoff);
    }
    await reporter;
  }

  status(): AgentStatus {
    const now = Date.now();
    const link = this.link;
    const p = this.tracker?.progress();
    const sum = (f: (d: TrackerDiskProgress) => number): number =>
      (p?.disks ?? []).reduce((s, d) => s + f(d), 0);
    const totalBytes = sum((d) => d.totalBytes);
    const waited = link?.waitingForAckMs(now) ?? 0;
    const stalled =
      this.stalled ??
      (waited > (this.opts.stallReportMs ?? 15_000)
        ? `No acknowledgement from the replicator for ${Math.round(waited / 1000)} s with data in flight`
        : undefined);
    const unackedBytes = link?.unackedBytes ?? 0;
    // What reaches the standby per second lately; before any ACK, the bandwidth limit if set.
    const rate = link ? link.ackRate.rate(now) || link.limiter.limit : 0;
    const drainSeconds = unackedBytes === 0 ? 0 : rate > 0 ? unackedBytes / rate : null;
    const state = replicationState({
      connected: link?.connected ?? false,
      everConnected: (link?.timelineId ?? "") !== "",
      paused: this.paused,
      stalled,
      phase: p?.phase,
      unackedBytes,
      drainSeconds,
      resending: link?.resending ?? false,
    });
    const progressPercent =
      totalBytes > 0 ? Math.min(100, (100 * sum((d) => d.replicatedBytes)) / totalBytes) : 0;
    const rescanned = sum((d) => d.rescannedBytes);
    this.readRate.record(rescanned, now);
    const eta = etaSeconds({
      state,
      syncedFraction: progressPercent / 100,
      syncSeconds: (now - this.startedSyncAt) / 1000,
      toRead: Math.max(0, totalBytes - rescanned),
      readRate: this.readRate.rate(now),
      drainSeconds,
    });
    const busy =
      p?.changingSince != null && now - p.changingSince > 10_000
        ? `Disks change during every scan pass since ${new Date(p.changingSince).toISOString()}: no new PIT until a pass sees them still`
        : undefined;
    const reason =
      state === "STALLED" ? stalled : this.reason && state !== "CONTINUOUS" ? this.reason : (busy ?? p?.note);
    return {
      state,
      progressPercent: Math.round(progressPercent * 10) / 10,
      // The standby holds every write made before durableAsOf (the start of the newest pass it has all of).
      lagSeconds: p?.durableAsOf ? Math.max(0, (now - p.durableAsOf) / 1000) : null,
      etaSeconds: eta === null ? null : Math.round(eta),
      ...(reason ? { reason } : {}),
      disks: this.identity.disks.map((d, i) => ({
        id: d.id,
        totalBytes: d.sizeBytes,
        replicatedBytes: p?.disks[i]?.replicatedBytes ?? 0,
        backlogBytes: p?.disks[i]?.backlogBytes ?? 0,
        rescannedBytes: p?.disks[i]?.rescannedBytes ?? 0,
        ...nbdUriOf(p?.disks[i]),
      })),
      bytesSent: link?.bytesSent ?? 0,
      ...(this.tracker ? { tracker: this.tracker.name } : {}),
    };
  }

  /** The newest batch the replicator acknowledged as durable (0 before any). */
  get ackedTag(): number {
    return this.link?.ackedTag ?? 0;
  }

  /** Reports every statusIntervalMs (the first report is made before connecting), and once at the end. */
  private async reportLoop(signal: AbortSignal): Promise<void> {
    const every = this.opts.statusIntervalMs ?? 2000;
    while (!signal.aborted) {
      await sleep(every, undefined, { signal }).catch(() => undefined);
      await this.reportLogged();
    }
  }

  private reportLogged(): Promise<void> {
    return this.report().catch((err: unknown) => this.log(`Status report failed: ${errorMessage(err)}`));
  }

  /** Sends one status report; reconnects when the console says the timeline moved. */
  async report(): Promise<void> {
    const answer = await this.console.post<{ timelineId: string; bandwidthLimitMbps?: number }>(
      "/api/agent/status",
      this.status(),
    );
    this.link?.limiter.setLimit(((answer.bandwidthLimitMbps ?? 0) * 1_000_000) / 8);
    if (this.link?.connected && answer.timelineId !== this.link.timelineId) {
      this.log(`Console moved this machine to timeline ${answer.timelineId}: reconnecting`);
      this.link.disconnect("timeline changed");
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.link?.disconnect("agent stopping");
    await this.tracker?.close();
  }
}

/** The disk's NBD URI field for the status report, when its tracker serves it. */
function nbdUriOf(d: TrackerDiskProgress | undefined): { nbdUri?: string } {
  return d?.nbdUri === undefined ? {} : { nbdUri: d.nbdUri };
}

async function register(opts: AgentOptions, log: Logger): Promise<AgentIdentity> {
  const token = parseInstallToken(opts.token!);
  const caPem = await fetchPinnedCa(token.consoleUrl, token.caFingerprint);
  if (opts.disks.length === 0) throw new Error("Give at least one --disk to protect");
  const disks = [];
  for (const path of opts.disks) disks.push({ path, sizeBytes: await diskSize(path) });
  const keys = newKeyPair();
  const answer = await new ApiClient({ consoleUrl: token.consoleUrl, caPem }).post<{
    machineId: string;
    certPem: string;
    caPem: string;
    disks: { id: string; path: string; sizeBytes: number }[];
    replicator: { host: string; port: number };
  }>("/api/agent/register", {
    token: opts.token,
    name: opts.name ?? hostname(),
    hostname: hostname(),
    cpus: cpus().length,
    memoryMiB: Math.round(totalmem() / 1048576),
    disks,
    publicKeyPem: keys.publicKeyPem,
  });
  log(
    `Registered as machine ${answer.machineId}; replicator ${answer.replicator.host}:${answer.replicator.port}`,
  );
  return {
    machineId: answer.machineId,
    consoleUrl: token.consoleUrl,
    caPem: answer.caPem,
    certPem: answer.certPem,
    keyPem: keys.privateKeyPem,
    replicator: answer.replicator,
    disks: answer.disks,
  };
}
