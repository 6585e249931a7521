/**
 * One QEMU virtual machine, started from a spec the local provider derives from a
 * blueprint. Everything about a running machine lives in its directory: the serial
 * console log, QEMU's own log, a copy of the UEFI variables, and `qemu.json` (pid, QMP
 * socket), so that any process can stop it later: the console that launched it may have
 * restarted since. The VM runs in its own session and outlives the process that started
 * it; stopping is QMP `quit`, then SIGKILL after a grace period.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdir, open, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../common/errors.js";
import type { BootMode, DiskBus } from "../../common/model.js";
import { writeFileDurably } from "../../common/durable-file.js";
import { findTool, OVMF, QEMU_SYSTEM, requireFile } from "./host-tools.js";
import type { Accel } from "./kvm-probe.js";
import { QmpClient } from "./qmp-client.js";

export interface QemuDisk {
  /** A file path, or an NBD URI (nbd://host:port/export, nbd+unix:///export?socket=PATH). */
  readonly source: string;
  readonly format: "raw" | "qcow2";
  readonly bus: DiskBus;
}

/**
 * `isolated`: QEMU user networking with `restrict=on`: DHCP from QEMU, no way out (test
 * mode). `user`: the same with NAT to the host's networks. `bridge`: a host bridge (its
 * own DHCP decides the address; needs qemu-bridge-helper allowed for that bridge).
 */
export type QemuNetwork =
  | {
      readonly kind: "isolated" | "user";
      /** IPv4 CIDR the guest's DHCP serves, e.g. 10.0.2.0/24. */
      readonly subnet: string;
      /** The one address DHCP hands out; null: QEMU's default (.15). */
      readonly fixedIp: string | null;
    }
  | { readonly kind: "bridge"; readonly bridge: string };

export interface QemuNic {
  readonly mac: string;
  readonly network: QemuNetwork;
}

export interface QemuMachineSpec {
  readonly name: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly disks: readonly QemuDisk[];
  readonly nic: QemuNic | null;
  readonly bootMode: BootMode;
  /** SMBIOS type 11 OEM strings the guest can read (dmidecode -t 11): the blueprint's tags. */
  readonly oemStrings?: readonly string[];
}

export interface StartOptions {
  /** The machine's directory (created if needed). */
  readonly dir: string;
  readonly accel: Accel;
  /** QEMU binary (path or name in PATH); default qemu-system-x86_64. */
  readonly qemu?: string;
  /** How long QEMU may take to open its QMP socket; default 30 s. */
  readonly startTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface ConsoleMatch {
  /** The console line that matched. */
  readonly line: string;
  readonly at: Date;
}

export interface WaitOptions {
  readonly timeoutMs: number;
  /** A console line that means the guest will not come up (kernel panic, our guest's failure line). */
  readonly failPattern?: RegExp;
  readonly signal?: AbortSignal;
}

/** The guest stopped with a KVM emulation failure: the host cannot run it under KVM. */
export class KvmEmulationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KvmEmulationError";
  }
}

const STATE_FILE = "qemu.json";
export const CONSOLE_LOG = "console.log";
const QEMU_LOG = "qemu.log";
const MAX_SOCKET_PATH = 100; // sun_path is 108 bytes with the terminating zero
const IDE_SLOTS = 4;

interface MachineState {
  readonly pid: number;
  readonly qmpSocket: string;
  readonly accel: Accel;
  readonly startedAt: string;
  readonly args: readonly string[];
}

/** A value inside a QEMU -option list: commas are doubled. */
const q = (value: string): string => value.replace(/,/g, ",,");

const MAC_PATTERN = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** Rejects, with what to change, a spec QEMU would refuse or misread. */
export function checkSpec(spec: QemuMachineSpec): void {
  if (!Number.isInteger(spec.cpus) || spec.cpus < 1 || spec.cpus > 255)
    throw new UserError(`Machine ${spec.name}: ${spec.cpus} CPUs is not a whole number from 1 to 255`);
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 16)
    throw new UserError(
      `Machine ${spec.name}: ${spec.memoryMiB} MiB of memory is not a whole number of at least 16`,
    );
  if (spec.disks.length === 0) throw new UserError(`Machine ${spec.name} has no disks`);
  const ide = spec.disks.filter((d) => d.bus === "ide").length;
  if (ide > IDE_SLOTS)
    throw new UserError(
      `Machine ${spec.name}: ${ide} IDE disks, the machine has ${IDE_SLOTS} IDE slots: use virtio or scsi`,
    );
  if (spec.nic && !MAC_PATTERN.test(spec.nic.mac))
    throw new UserError(
      `Machine ${spec.name}: MAC ${spec.nic.mac} is not six hex octets separated by colons`,
    );
}

/** QEMU's command line for `spec` (without the binary). */
export function qemuArgs(
  spec: QemuMachineSpec,
  run: { readonly accel: Accel; readonly dir: string; readonly qmpSocket: string },
): string[] {
  // prettier-ignore
  const args = [
    "-name", `guest=${q(spec.name)}`,
    "-machine", "pc",
    "-accel", run.accel,
    // TCG's default CPU (qemu64) lacks SSE4.2 and POPCNT, which x86-64-v2 distributions need.
    "-cpu", run.accel === "kvm" ? "host" : "max",
    "-smp", String(spec.cpus),
    "-m", String(spec.memoryMiB),
    "-nodefaults", "-no-user-config", "-display", "none",
    "-S", // paused until QMP says go: "started" is when the guest's CPUs really start
    "-serial", `file:${join(run.dir, CONSOLE_LOG)}`,
    "-qmp", `unix:${q(run.qmpSocket)},server=on,wait=off`,
  ];
  if (spec.bootMode === "uefi") {
    args.push("-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${q(OVMF.code)}`);
    args.push("-drive", `if=pflash,format=raw,unit=1,file=${q(join(run.dir, "OVMF_VARS.fd"))}`);
  }
  let ide = 0;
  if (spec.disks.some((d) => d.bus === "scsi")) args.push("-device", "virtio-scsi-pci,id=scsi0");
  spec.disks.forEach((disk, i) => {
    const id = `disk${i}`;
    const boot = i === 0 ? ",bootindex=0" : "";
    args.push("-drive", `file=${q(disk.source)},format=${disk.format},if=none,id=${id},discard=unmap`);
    if (disk.bus === "virtio") args.push("-device", `virtio-blk-pci,drive=${id}${boot}`);
    else if (disk.bus === "scsi") args.push("-device", `scsi-hd,drive=${id},bus=scsi0.0,scsi-id=${i}${boot}`);
    else {
      args.push("-device", `ide-hd,drive=${id},bus=ide.${ide >> 1},unit=${ide & 1}${boot}`);
      ide++;
    }
  });
  if (spec.nic) {
    const n = spec.nic.network;
    if (n.kind === "bridge") args.push("-netdev", `bridge,id=net0,br=${q(n.bridge)}`);
    else {
      const restrict = n.kind === "isolated" ? ",restrict=on" : "";
      const dhcp = n.fixedIp === null ? "" : `,dhcpstart=${n.fixedIp}`;
      args.push("-netdev", `user,id=net0${restrict},net=${n.subnet}${dhcp}`);
    }
    args.push("-device", `virtio-net-pci,netdev=net0,mac=${spec.nic.mac}`);
  }
  for (const s of spec.oemStrings ?? []) args.push("-smbios", `type=11,value=${q(s)}`);
  return args;
}

/** Where the QMP socket goes: in the machine's directory when the path is short enough. */
function qmpSocketPath(dir: string): string {
  const inDir = join(dir, "qmp.sock");
  if (Buffer.byteLength(inDir) <= MAX_SOCKET_PATH) return inDir;
  const hash = createHash("sha256").update(dir).digest("hex").slice(0, 16);
  return join(tmpdir(), `lifeboat-qmp-${hash}.sock`);
}

/** Whether `pid` is a live (not zombie) process started for the machine in `dir`. */
async function runsMachine(pid: number, dir: string): Promise<boolean> {
  try {
    const statLine = await readFile(`/proc/${pid}/stat`, "utf8");
    const state = statLine.slice(statLine.lastIndexOf(")") + 2, statLine.lastIndexOf(")") + 3);
    if (state === "Z" || state === "X") return false;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return cmdline.includes(join(dir, CONSOLE_LOG)); // guards against a reused pid
  } catch {
    return false;
  }
}

/** QEMU processes this process started: stopping one waits until Node has reaped it. */
const children = new Map<number, ChildProcess>();

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// Firmware (OVMF) draws on the serial console with terminal escapes: drop them from messages.
const ANSI_ESCAPE = new RegExp(String.fromCharCode(27) + "\\[[0-9;=?]*[A-Za-z]", "g");

/** The last `n` non-empty lines of `text`, for error messages. */
function tail(text: string, n: number): string {
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(ANSI_ESCAPE, "").trim())
    .filter((l) => l !== "")
    .slice(-n)
    .join(" | ");
}

export class QemuMachine {
  /** When the console first showed any output (firmware or boot loader). */
  firstOutputAt: Date | undefined;
  private consoleText = "";
  private consoleOffset = 0;

  private constructor(
    readonly spec: QemuMachineSpec,
    readonly dir: string,
    readonly pid: number,
    readonly accel: Accel,
    private started: Date,
    private readonly qmpSocket: string,
    private readonly child: ChildProcess | undefined,
  ) {}

  /** When the guest's CPUs started (QMP `cont`). */
  get startedAt(): Date {
    return this.started;
  }

  get consoleLog(): string {
    return join(this.dir, CONSOLE_LOG);
  }

  /**
   * Starts QEMU paused, then its guest through QMP, and resolves once QMP reports it
   * running. Rejects (with QEMU's own message) when QEMU exits first; nothing is left
   * running after a rejection.
   */
  static async start(spec: QemuMachineSpec, options: StartOptions): Promise<QemuMachine> {
    checkSpec(spec);
    const qemu = await findTool(QEMU_SYSTEM, options.qemu);
    const dir = options.dir;
    await mkdir(dir, { recursive: true });
    if (spec.bootMode === "uefi") {
      await requireFile(OVMF.code, OVMF.debianPackage);
      const vars = join(dir, "OVMF_VARS.fd");
      // Each machine keeps its own UEFI variables (boot entries) across restarts.
      const has = await stat(vars).then(
        () => true,
        () => false,
      );
      if (!has) await copyFile(await requireFile(OVMF.vars, OVMF.debianPackage), vars);
    }
    const qmpSocket = qmpSocketPath(dir);
    const args = qemuArgs(spec, { accel: options.accel, dir, qmpSocket });
    const log = await open(join(dir, QEMU_LOG), "w");
    let child: ChildProcess;
    try {
      child = spawn(qemu, args, { detached: true, stdio: ["ignore", "ignore", log.fd] });
    } finally {
      await log.close();
    }
    const exited = new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", () => resolve());
    });
    // The VM outlives this process; Node still reaps it if it ends while we run.
    child.unref();
    const pid = child.pid;
    if (pid === undefined) {
      await exited;
      throw new Error(`Cannot start ${qemu} for machine ${spec.name}`);
    }
    children.set(pid, child);
    void exited.then(() => children.delete(pid));
    const machine = new QemuMachine(spec, dir, pid, options.accel, new Date(), qmpSocket, child);
    const record = (): Promise<void> => {
      const state: MachineState = {
        pid,
        qmpSocket,
        accel: options.accel,
        startedAt: machine.startedAt.toISOString(),
        args,
      };
      return writeFileDurably(join(dir, STATE_FILE), JSON.stringify(state, null, 2));
    };
    try {
      // Recorded at once, so that a crash of this process right now leaves a machine
      // that `stopInDir` can still find; again once the guest runs, with its start time.
      await record();
      await machine.waitRunning(options.startTimeoutMs ?? 30_000, exited, options.signal);
      await record();
      return machine;
    } catch (err) {
      await machine.stop(1000);
      throw err;
    }
  }

  /** Waits for QEMU's QMP socket, then starts the paused guest (`cont`) and notes when. */
  private async waitRunning(timeoutMs: number, exited: Promise<void>, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let gone = false;
    void exited.then(() => (gone = true));
    while (true) {
      signal?.throwIfAborted();
      if (gone)
        throw new Error(`QEMU exited at once for machine ${this.spec.name}: ${await this.qemuLogTail()}`);
      let qmp: QmpClient | undefined;
      try {
        qmp = await QmpClient.connect(this.qmpSocket, 5000);
      } catch {
        // not listening yet
      }
      if (qmp) {
        try {
          await qmp.execute("cont");
          this.started = new Date();
          const status = (await qmp.execute("query-status")) as { status?: string } | undefined;
          if (status?.status !== "running")
            throw new Error(`QEMU did not run machine ${this.spec.name}: status ${String(status?.status)}`);
          return;
        } finally {
          qmp.close();
        }
      }
      if (Date.now() > deadline)
        throw new Error(
          `QEMU did not start machine ${this.spec.name} within ${timeoutMs} ms: ${await this.qemuLogTail()}`,
        );
      await sleep(100);
    }
  }

  private async qemuLogTail(): Promise<string> {
    const text = await readFile(join(this.dir, QEMU_LOG), "utf8").catch(() => "");
    return tail(text, 6) || "(no message)";
  }

  /** Reads what the console printed since the last call. */
  private async readConsole(): Promise<void> {
    let fh;
    try {
      fh = await open(this.consoleLog, "r");
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(64 * 1024);
      while (true) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.consoleOffset);
        if (bytesRead === 0) break;
        this.consoleOffset += bytesRead;
        this.consoleText += buf.toString("latin1", 0, bytesRead);
      }
    } finally {
      await fh.close();
    }
    if (this.firstOutputAt === undefined && /\S/.test(this.consoleText)) this.firstOutputAt = new Date();
  }

  /** The console output so far. */
  async consoleOutput(): Promise<string> {
    await this.readConsole();
    return this.consoleText;
  }

  /**
   * Resolves with the first console line matching `pattern`. Rejects when `failPattern`
   * matches first, when QEMU ends, on a KVM emulation failure (KvmEmulationError), on
   * timeout or abort; the error carries the console's last lines. The VM keeps running
   * after a rejection: the caller decides whether to stop it.
   */
  async waitForConsole(pattern: RegExp, options: WaitOptions): Promise<ConsoleMatch> {
    const deadline = Date.now() + options.timeoutMs;
    while (true) {
      options.signal?.throwIfAborted();
      await this.readConsole();
      const lines = this.consoleText.split(/\r?\n/);
      const failed = options.failPattern && lines.find((l) => options.failPattern?.test(l));
      if (failed) throw new Error(`Machine ${this.spec.name} failed to boot: ${failed.trim()}`);
      const hit = lines.find((l) => pattern.test(l));
      if (hit !== undefined) return { line: hit.trim(), at: new Date() };
      const qemuLog = await readFile(join(this.dir, QEMU_LOG), "utf8").catch(() => "");
      if (/KVM internal error|emulation failure/.test(qemuLog))
        throw new KvmEmulationError(`Machine ${this.spec.name} stopped under KVM: ${tail(qemuLog, 3)}`);
      if (!(await this.running()))
        throw new Error(
          `QEMU ended before machine ${this.spec.name} printed ${String(pattern)}: ${tail(qemuLog, 3) || "(no message)"}; console: ${tail(this.consoleText, 5) || "(empty)"}`,
        );
      if (Date.now() > deadline)
        throw new Error(
          `Machine ${this.spec.name} printed no ${String(pattern)} within ${Math.round(options.timeoutMs / 1000)} s; console: ${tail(this.consoleText, 5) || "(empty)"}`,
        );
      await sleep(200);
    }
  }

  /** Whether the VM's process still runs. */
  async running(): Promise<boolean> {
    if (this.child && (this.child.exitCode !== null || this.child.signalCode !== null)) return false;
    return runsMachine(this.pid, this.dir);
  }

  /** Stops the VM: QMP quit, SIGKILL after `graceMs`. Idempotent. */
  async stop(graceMs = 5000): Promise<void> {
    await stopProcess(this.pid, this.dir, this.qmpSocket, graceMs, this.child);
  }

  /**
   * Stops the machine recorded in `dir` by whichever process started it. Resolves false
   * when nothing was running there.
   */
  static async stopInDir(dir: string, graceMs = 5000): Promise<boolean> {
    let state: MachineState;
    try {
      state = JSON.parse(await readFile(join(dir, STATE_FILE), "utf8")) as MachineState;
    } catch {
      return false;
    }
    return stopProcess(state.pid, dir, state.qmpSocket, graceMs, children.get(state.pid));
  }
}

async function stopProcess(
  pid: number,
  dir: string,
  qmpSocket: string,
  graceMs: number,
  child: ChildProcess | undefined,
): Promise<boolean> {
  const alive = async (): Promise<boolean> =>
    child ? child.exitCode === null && child.signalCode === null : runsMachine(pid, dir);
  if (!(await alive())) return false;
  try {
    const qmp = await QmpClient.connect(qmpSocket, Math.min(graceMs, 2000));
    try {
      await qmp.execute("quit", undefined, Math.min(graceMs, 2000)).catch(() => undefined); // it may close first
    } finally {
      qmp.close();
    }
  } catch {
    // no QMP: the kill below ends it
  }
  const until = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (!(await alive())) return true;
      await sleep(50);
    }
    return !(await alive());
  };
  if (!(await until(graceMs))) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
    if (!(await until(5000))) throw new Error(`QEMU process ${pid} of ${dir} survived SIGKILL`);
  }
  return true;
}
