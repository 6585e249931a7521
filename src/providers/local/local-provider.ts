/**
 * Provider `local`: a launch starts one QEMU virtual machine per source machine on this
 * host, under KVM when a probe guest really runs there and TCG otherwise. For now the
 * launch first hydrates the PIT into raw disk images (the export provider writes them,
 * into the machine's directory), then boots them through the machine's own firmware and
 * boot loader, and resolves once the guest prints a ready line on its serial console.
 * Booting straight from the replicator's copy-on-write branch over NBD (instant recovery)
 * needs only a different disk source in the spec (`nbd://...`), once that server exists.
 *
 * The machine's directory (`ref`) holds its disks, `console.log` (the serial console),
 * `qemu.log`, `qemu.json` (pid, QMP socket) and `launch.json` (spec and timings), so
 * `terminate` works from any process.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../../common/errors.js";
import { writeFileDurably } from "../../common/durable-file.js";
import { ExportProvider } from "../export/export-provider.js";
import type { LaunchRequest, LaunchedTarget, Provider } from "../provider.js";
import { findTool, OVMF, QEMU_SYSTEM, requireFile } from "./host-tools.js";
import { accelVerdict, markKvmUnusable, type Accel } from "./kvm-probe.js";
import {
  defaultSizeLimits,
  machineNic,
  machineOemStrings,
  machineSize,
  type SizeLimits,
} from "./local-machine-spec.js";
import { KvmEmulationError, QemuMachine, type QemuMachineSpec } from "./qemu-machine.js";

/** Console lines that mean a guest is up: a login prompt, or our test guest's ready line. */
export const DEFAULT_READY_PATTERN = /(^|\s)\S*login: ?$|lifeboat-guest: ready/;
/** Console lines that mean it will not come up. */
export const DEFAULT_FAIL_PATTERN = /Kernel panic - not syncing|lifeboat-guest: failed:/;

export interface LocalProviderOptions {
  /** QEMU binary (path or name in PATH); default qemu-system-x86_64. */
  readonly qemu?: string;
  /** "auto" (default): KVM when the probe guest runs under it, else TCG. */
  readonly accel?: Accel | "auto";
  readonly limits?: Partial<SizeLimits>;
  /** A console line that means the guest is up; default DEFAULT_READY_PATTERN. */
  readonly readyPattern?: RegExp;
  readonly failPattern?: RegExp;
  /** How long a guest may take to come up; default 10 minutes (TCG is slow). */
  readonly readyTimeoutMs?: number;
}

/** What `launch.json` records in the machine's directory. */
export interface LaunchRecord {
  readonly machineId: string;
  readonly machineName: string;
  readonly mode: string;
  readonly accel: Accel;
  readonly accelReason: string;
  readonly spec: QemuMachineSpec;
  readonly requestedAt: string;
  /** KVM or TCG decided (the probe runs once per process). */
  readonly accelDecidedAt: string;
  /** Every disk written from the PIT. */
  readonly hydratedAt: string;
  readonly startedAt: string;
  readonly firstOutputAt: string | null;
  readonly guestUpAt: string;
  readonly readyLine: string;
}

export class LocalProvider implements Provider {
  readonly name = "local";
  private readonly limits: SizeLimits;

  constructor(private readonly options: LocalProviderOptions = {}) {
    this.limits = { ...defaultSizeLimits(), ...options.limits };
  }

  /** The machine spec for a request: every blueprint check, nothing written or started. */
  spec(
    req: Pick<LaunchRequest, "machineName" | "machineId" | "mode" | "blueprint" | "source">,
    disks: readonly string[],
  ): QemuMachineSpec {
    const bp = req.blueprint;
    const size = machineSize(bp, req.source, this.limits);
    return {
      name: req.machineName,
      cpus: size.cpus,
      memoryMiB: size.memoryMiB,
      disks: disks.map((source) => ({ source, format: "raw", bus: bp.diskBus })),
      nic: machineNic(bp, req.mode, req.machineId),
      bootMode: bp.bootMode,
      oemStrings: machineOemStrings(bp, req.machineId, req.mode),
    };
  }

  async launch(req: LaunchRequest): Promise<LaunchedTarget> {
    const requestedAt = new Date();
    // Everything that can be refused is refused before a byte is written.
    const planned = this.spec(
      req,
      req.timeline.info.disks.map((d) => d.id),
    );
    await findTool(QEMU_SYSTEM, this.options.qemu);
    if (planned.bootMode === "uefi") {
      await requireFile(OVMF.code, OVMF.debianPackage);
      await requireFile(OVMF.vars, OVMF.debianPackage);
    }
    const verdict = await this.accel(req.signal);
    const accelDecidedAt = new Date();
    req.onLog?.(`${verdict.accel.toUpperCase()}: ${verdict.reason}`);

    // Raw whatever the request's format: QEMU boots raw images as they are.
    const hydrated = await new ExportProvider().launch({ ...req, format: "raw" });
    const hydratedAt = new Date();
    const dir = hydrated.ref;
    let machine: QemuMachine | undefined;
    try {
      const spec = this.spec(req, hydrated.disks);
      let accel = verdict.accel;
      let accelReason = verdict.reason;
      let up;
      while (true) {
        machine = await QemuMachine.start(spec, {
          dir,
          accel,
          ...(this.options.qemu === undefined ? {} : { qemu: this.options.qemu }),
          ...(req.signal ? { signal: req.signal } : {}),
        });
        req.onLog?.(
          `started ${spec.cpus} CPUs, ${spec.memoryMiB} MiB, ${spec.bootMode.toUpperCase()}, ${accel.toUpperCase()}; console ${machine.consoleLog}`,
        );
        try {
          up = await machine.waitForConsole(this.options.readyPattern ?? DEFAULT_READY_PATTERN, {
            timeoutMs: this.options.readyTimeoutMs ?? 600_000,
            failPattern: this.options.failPattern ?? DEFAULT_FAIL_PATTERN,
            ...(req.signal ? { signal: req.signal } : {}),
          });
          break;
        } catch (err) {
          if (!(err instanceof KvmEmulationError) || accel !== "kvm") throw err;
          // The probe passed but this guest does not run under KVM: remember, and use TCG.
          await machine.stop();
          accelReason = `KVM unusable: ${err.message}; using TCG`;
          await markKvmUnusable(
            accelReason,
            this.options.qemu === undefined ? {} : { qemu: this.options.qemu },
          );
          req.onLog?.(accelReason);
          accel = "tcg";
        }
      }
      const record: LaunchRecord = {
        machineId: req.machineId,
        machineName: req.machineName,
        mode: req.mode,
        accel,
        accelReason,
        spec,
        requestedAt: requestedAt.toISOString(),
        accelDecidedAt: accelDecidedAt.toISOString(),
        hydratedAt: hydratedAt.toISOString(),
        startedAt: machine.startedAt.toISOString(),
        firstOutputAt: machine.firstOutputAt?.toISOString() ?? null,
        guestUpAt: up.at.toISOString(),
        readyLine: up.line,
      };
      await writeFileDurably(join(dir, "launch.json"), JSON.stringify(record, null, 2));
      req.onLog?.(
        `guest up after ${((up.at.getTime() - requestedAt.getTime()) / 1000).toFixed(1)} s: ${up.line}`,
      );
      return {
        ref: dir,
        disks: hydrated.disks,
        startedAt: machine.startedAt,
        guestUpAt: up.at,
        consoleLog: machine.consoleLog,
      };
    } catch (err) {
      // A failed launch leaves nothing running and nothing behind.
      await machine?.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Stops the machine and removes its directory (disks included). Idempotent. */
  async terminate(target: LaunchedTarget): Promise<void> {
    await QemuMachine.stopInDir(target.ref);
    await rm(target.ref, { recursive: true, force: true });
  }

  /** Stops the machine and keeps its directory (disks, console log). Idempotent. */
  async stop(target: Pick<LaunchedTarget, "ref">): Promise<boolean> {
    return QemuMachine.stopInDir(target.ref);
  }

  private async accel(signal?: AbortSignal): Promise<{ accel: Accel; reason: string }> {
    const chosen = this.options.accel ?? "auto";
    if (chosen !== "auto") return { accel: chosen, reason: "chosen by the provider's options" };
    try {
      return await accelVerdict({
        ...(this.options.qemu === undefined ? {} : { qemu: this.options.qemu }),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new Error(`Cannot decide between KVM and TCG: ${String(err)}`, { cause: err });
    }
  }
}
