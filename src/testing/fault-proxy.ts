/**
 * A TCP proxy with programmable faults, for tests of the replication link: it sits between
 * an agent and a replicator and forwards raw bytes (TLS stays end to end; the proxy sees
 * only ciphertext), and on command
 * - drops every connection (both sides destroyed at once, no orderly end), optionally
 *   refusing new ones for a while (the replicator unreachable);
 * - stalls: stops forwarding in both directions for N ms, holding what arrives, then
 *   resumes (connections stay open; new ones hang in their handshake);
 * - slows: forwards at most X bytes/s per connection and direction for N ms;
 * and runs a seeded random schedule of those faults, so a failing run can be replayed.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { seededRandom, type SeededRandom } from "./seeded-random.js";

export interface FaultProxyOptions {
  /** Where connections are forwarded to. */
  readonly target: { readonly host: string; readonly port: number };
  /** Listen address; default 127.0.0.1 and an ephemeral port. */
  readonly host?: string;
  readonly port?: number;
}

export type Fault =
  | { readonly kind: "drop"; readonly downMs: number }
  | { readonly kind: "stall"; readonly ms: number }
  | { readonly kind: "slow"; readonly bytesPerSecond: number; readonly ms: number };

export type FaultKind = Fault["kind"];

export interface PlannedFault {
  /** Milliseconds after the start of the schedule. */
  readonly at: number;
  readonly fault: Fault;
}

export interface FaultSchedule {
  readonly seed: number;
  readonly count: number;
  /** The faults fall at random moments within this many milliseconds. */
  readonly spanMs: number;
  /** Relative weights of the kinds (a kind left out does not occur); default 1 each. */
  readonly weights?: Readonly<Partial<Record<FaultKind, number>>>;
  /** [min, max] of each range; defaults in DEFAULT_RANGES. */
  readonly downMs?: readonly [number, number];
  readonly stallMs?: readonly [number, number];
  readonly slowMs?: readonly [number, number];
  readonly slowBytesPerSecond?: readonly [number, number];
}

export const DEFAULT_RANGES = {
  downMs: [0, 500],
  stallMs: [100, 1000],
  slowMs: [200, 1500],
  slowBytesPerSecond: [64 * 1024, 1024 * 1024],
} as const;

/** Bytes held per connection and direction before the proxy stops reading (TCP backpressure). */
const HIGH_WATER = 1024 * 1024;

export class FaultProxy {
  private readonly pairs = new Set<Pair>();
  private stallUntil = 0;
  private slowUntil = 0;
  private slowRate = 0;
  private downUntil = 0;
  /** Bytes forwarded towards the target, and back towards the clients, all connections together. */
  bytesToTarget = 0;
  bytesToClient = 0;
  /** Connections accepted (and forwarded), and those refused while down. */
  accepted = 0;
  refused = 0;

  private constructor(
    private readonly server: Server,
    private readonly opts: FaultProxyOptions,
  ) {}

  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const server = createServer();
    const proxy = new FaultProxy(server, opts);
    server.on("connection", (socket) => proxy.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  get address(): { host: string; port: number } {
    const addr = this.server.address();
    if (addr === null || typeof addr !== "object") throw new Error("Fault proxy is not listening");
    return { host: this.opts.host ?? "127.0.0.1", port: addr.port };
  }

  /** Open connections. */
  get connections(): number {
    return this.pairs.size;
  }

  apply(fault: Fault): void {
    if (fault.kind === "drop") this.drop(fault.downMs);
    else if (fault.kind === "stall") this.stall(fault.ms);
    else this.slow(fault.bytesPerSecond, fault.ms);
  }

  /** Destroys every open connection; refuses new ones for `downMs`. Returns how many were dropped. */
  drop(downMs = 0): number {
    this.downUntil = Math.max(this.downUntil, Date.now() + downMs);
    const n = this.pairs.size;
    for (const p of [...this.pairs]) p.destroy();
    return n;
  }

  /** Stops forwarding (both directions, every connection) for `ms`, keeping what arrives. */
  stall(ms: number): void {
    this.stallUntil = Math.max(this.stallUntil, Date.now() + ms);
  }

  /** Forwards at most `bytesPerSecond` per connection and direction for `ms`. */
  slow(bytesPerSecond: number, ms: number): void {
    if (!(bytesPerSecond > 0)) throw new RangeError(`slow() needs a positive rate, got ${bytesPerSecond}`);
    this.slowRate = bytesPerSecond;
    this.slowUntil = Date.now() + ms;
  }

  /** Ends every stall, slow-down and refusal now. */
  heal(): void {
    this.stallUntil = 0;
    this.slowUntil = 0;
    this.downUntil = 0;
  }

  /** Milliseconds left of the current stall (0: forwarding). */
  stallLeft(): number {
    return Math.max(0, this.stallUntil - Date.now());
  }

  /** The current rate limit in bytes/s, 0 when not slowed. */
  currentRate(): number {
    return Date.now() < this.slowUntil ? this.slowRate : 0;
  }

  /** The faults a schedule makes, in order: the same seed gives the same plan. */
  static plan(schedule: FaultSchedule): PlannedFault[] {
    const r = seededRandom(schedule.seed);
    const times: number[] = [];
    for (let i = 0; i < schedule.count; i++) times.push(Math.round(r.next() * schedule.spanMs));
    times.sort((a, b) => a - b);
    return times.map((at) => ({ at, fault: randomFault(r, schedule) }));
  }

  /**
   * Applies the schedule's faults at their moments; resolves with them once the span is
   * over (or the signal aborts: the faults applied so far).
   */
  async run(schedule: FaultSchedule, signal?: AbortSignal): Promise<PlannedFault[]> {
    const start = Date.now();
    const applied: PlannedFault[] = [];
    try {
      for (const planned of FaultProxy.plan(schedule)) {
        const wait = start + planned.at - Date.now();
        if (wait > 0) await sleep(wait, undefined, signal ? { signal } : {});
        this.apply(planned.fault);
        applied.push(planned);
      }
      const rest = start + schedule.spanMs - Date.now();
      if (rest > 0) await sleep(rest, undefined, signal ? { signal } : {});
    } catch (err) {
      if (!signal?.aborted) throw err;
    }
    return applied;
  }

  async close(): Promise<void> {
    for (const p of [...this.pairs]) p.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (Date.now() < this.downUntil) {
      this.refused++;
      client.destroy();
      return;
    }
    this.accepted++;
    const target = connect({ host: this.opts.target.host, port: this.opts.target.port });
    const pair = new Pair(client, target, this, () => this.pairs.delete(pair));
    this.pairs.add(pair);
  }
}

/** One proxied connection: the client's socket, the target's, and a pipe each way. */
class Pair {
  private done = false;

  constructor(
    private readonly client: Socket,
    private readonly target: Socket,
    proxy: FaultProxy,
    private readonly onDone: () => void,
  ) {
    for (const s of [client, target]) {
      s.setNoDelay(true);
      s.on("error", () => this.destroy());
      s.on("close", () => this.destroy());
    }
    new Pipe(client, target, proxy, (n) => (proxy.bytesToTarget += n));
    new Pipe(target, client, proxy, (n) => (proxy.bytesToClient += n));
  }

  // destroy(), not resetAndDestroy(): on Node 20 a reset of a socket that is ending now and
  // then leaves the process spinning at exit (Environment::CleanupHandles never finishes).
  destroy(): void {
    if (this.done) return;
    this.done = true;
    for (const s of [this.client, this.target]) if (!s.destroyed) s.destroy();
    this.onDone();
  }
}

/** Forwards one direction, honouring the proxy's stall and slow-down. */
class Pipe {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private pumping = false;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly proxy: FaultProxy,
    private readonly count: (bytes: number) => void,
  ) {
    from.on("data", (data: Buffer) => {
      this.queue.push(data);
      this.queued += data.length;
      if (this.queued > HIGH_WATER) from.pause();
      this.pump();
    });
    from.on("end", () => {
      this.ended = true;
      this.pump();
    });
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    this.forward().then(
      () => {
        this.pumping = false;
        if (this.to.destroyed) return;
        if (this.queue.length > 0) this.pump();
        else if (this.ended) this.to.end();
      },
      () => {
        this.pumping = false;
        this.to.destroy();
      },
    );
  }

  private async forward(): Promise<void> {
    while (!this.to.destroyed) {
      const stalled = this.proxy.stallLeft();
      if (stalled > 0) {
        await sleep(Math.min(stalled, 50));
        continue;
      }
      const head = this.queue[0];
      if (head === undefined) return;
      const rate = this.proxy.currentRate();
      // Slowed: 20 ms worth at a time, then wait that long.
      const n = rate > 0 ? Math.max(1, Math.min(head.length, Math.floor(rate / 50))) : head.length;
      const piece = head.subarray(0, n);
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
      this.queued -= n;
      this.count(n);
      const ok = this.to.write(piece);
      if (rate > 0) await sleep((n / rate) * 1000);
      if (!ok && !this.to.destroyed) await drained(this.to);
      if (this.queued <= HIGH_WATER / 2 && this.from.isPaused()) this.from.resume();
    }
  }
}

function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.once("drain", done);
    socket.once("close", done);
  });
}

function randomFault(r: SeededRandom, s: FaultSchedule): Fault {
  const w = s.weights ?? { drop: 1, stall: 1, slow: 1 };
  const kind = r.pick<FaultKind>([
    ["drop", w.drop ?? 0],
    ["stall", w.stall ?? 0],
    ["slow", w.slow ?? 0],
  ]);
  const within = (range: readonly [number, number]): number => r.int(range[0], range[1]);
  if (kind === "drop") return { kind, downMs: within(s.downMs ?? DEFAULT_RANGES.downMs) };
  if (kind === "stall") return { kind, ms: within(s.stallMs ?? DEFAULT_RANGES.stallMs) };
  return {
    kind,
    bytesPerSecond: within(s.slowBytesPerSecond ?? DEFAULT_RANGES.slowBytesPerSecond),
    ms: within(s.slowMs ?? DEFAULT_RANGES.slowMs),
  };
}
