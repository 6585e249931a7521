/**
 * Decides whether launched machines run under KVM or TCG by booting a tiny guest, never by
 * looking at /dev/kvm: on some hosts the device is there and opens, yet every real guest
 * stops with a KVM "emulation failure" (nested KVM that emulates instead of running the
 * guest: BIOS real-mode code passes, the boot loader's first protected-mode iret fails).
 * The probe guest is one 512-byte boot sector (kvm-probe.S) that goes through real mode,
 * protected mode with an interrupt, and long mode with paging and an interrupt, as every
 * boot loader and kernel does, then prints a marker on COM1 and ends QEMU through the
 * isa-debug-exit port; KVM is used only when the marker comes back. The verdict is cached
 * per process (and per QEMU binary), so a site pays for it once.
 */
import { spawn } from "node:child_process";
import { access, constants, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findTool, QEMU_SYSTEM } from "./host-tools.js";

export type Accel = "kvm" | "tcg";

export interface AccelVerdict {
  readonly accel: Accel;
  /** Why, in a sentence an operator can act on (it is logged with every launch). */
  readonly reason: string;
}

export interface ProbeOptions {
  /** QEMU binary (path or name in PATH); default qemu-system-x86_64. */
  readonly qemu?: string;
  /** How long the probe guest may take to print its marker; default 15 s. */
  readonly timeoutMs?: number;
  /** Device checked before running the probe at all; default /dev/kvm. */
  readonly kvmDevice?: string;
  readonly signal?: AbortSignal;
}

export interface ProbeRun {
  /** The guest printed its marker. */
  readonly ok: boolean;
  /** What happened, for the verdict's reason: "marker seen", "emulation failure", ... */
  readonly detail: string;
  readonly elapsedMs: number;
}

export const PROBE_MARKER = "lifeboat-probe-ok";
const EXIT_PORT = 0xf4; // isa-debug-exit: the guest's write of 0x10 makes QEMU exit with 33

/** kvm-probe.S assembled: everything before the marker, which sits at 0x7c00 + 290. */
const PROBE_CODE = Buffer.from(
  "fafc31c08ed88ec08ed0bc007cbaf803b072ee660f0116f07c0f20c06683c8010f22c066ea2b7c0000080066b810008ed88e" +
    "c08ed0bc007c00000f011dfe7c0000cd20b070eebf0010000031c0b9000c0000f3abc7050010000003200000c70500200000" +
    "03300000c7050030000083000000b8001000000f22d80f20e083c8200f22e0b9800000c00f320d000100000f3066baf8030f" +
    "20c00d000000800f22c0eaa77c000018000f011c25187d0000cd20b06ceebe227d0000ac84c07403eeebf8b010e6f4f4ebfd" +
    "cf48cf0f1f4400000000000000000000ffff0000009acf00ffff00000092cf00ffff0000009aaf001f00d07c0000c87c0800" +
    "008e00000701f67b00000f1f4000c97c1800008e000000000000000000000f02087b000000000000",
  "hex",
);
/** The letters the probe prints as it leaves each stage behind. */
const STAGES: Readonly<Record<string, string>> = { r: "real mode", p: "protected mode", l: "long mode" };

/**
 * The probe guest (kvm-probe.S): a BIOS boot sector that runs real mode, protected mode
 * with an interrupt, and long mode with paging and an interrupt, printing a letter after
 * each on COM1, then `marker` and CR LF, then exits QEMU through isa-debug-exit.
 */
export function probeBootSector(marker: string = PROBE_MARKER): Buffer {
  const room = 510 - PROBE_CODE.length - 3;
  if (marker.length < 1 || marker.length > room || !/^[\x20-\x7e]+$/.test(marker))
    throw new Error(
      `Probe marker must be 1 to ${room} printable ASCII characters: ${JSON.stringify(marker)}`,
    );
  const sector = Buffer.alloc(512);
  PROBE_CODE.copy(sector, 0);
  sector.write(`${marker}\r\n`, PROBE_CODE.length, "latin1"); // the zero after it ends the string
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

/** "after real mode" from the stage letters the guest printed before it stopped. */
function stageReached(serial: string): string {
  const letters = [...serial.replace(/[^rpl]/g, "")];
  const last = letters.at(-1);
  return last === undefined ? "before real mode finished" : `after ${STAGES[last] ?? last}`;
}

/** One line out of what QEMU wrote on stderr that says why the guest did not run. */
function stderrSummary(stderr: string): string | undefined {
  if (/emulation failure/i.test(stderr)) return "emulation failure";
  const line = stderr
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "");
  return line === undefined ? undefined : line.slice(0, 200);
}

/** Boots the probe sector once under `accel`; kills QEMU before returning, whatever happened. */
export async function runProbeGuest(accel: Accel, options: ProbeOptions = {}): Promise<ProbeRun> {
  const qemu = await findTool(QEMU_SYSTEM, options.qemu);
  const timeoutMs = options.timeoutMs ?? 15_000;
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-probe-"));
  const started = Date.now();
  try {
    const image = join(dir, "probe.img");
    await writeFile(image, probeBootSector());
    // prettier-ignore
    const child = spawn(qemu, [
      "-accel", accel, "-machine", "pc", "-m", "16", "-smp", "1",
      "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
      "-serial", "stdio",
      "-drive", `file=${image},format=raw,if=ide,index=0`,
      "-device", `isa-debug-exit,iobase=${EXIT_PORT},iosize=1`,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    const closed = new Promise<number | null>((resolve) => {
      child.once("close", (code) => resolve(code));
      child.once("error", () => resolve(null));
    });
    let stdout = "";
    let stderr = "";
    let spawnError: Error | undefined;
    child.once("error", (err) => (spawnError = err));
    try {
      const detail = await new Promise<{ ok: boolean; detail: string }>((resolve) => {
        const finish = (result: { ok: boolean; detail: string }): void => {
          clearTimeout(timer);
          options.signal?.removeEventListener("abort", onAbort);
          resolve(result);
        };
        const failed = (why: string): void => finish({ ok: false, detail: `${why} ${stageReached(stdout)}` });
        const onAbort = (): void => finish({ ok: false, detail: "probe aborted" });
        const timer = setTimeout(
          () => failed(stderrSummary(stderr) ?? `no marker within ${timeoutMs} ms`),
          timeoutMs,
        );
        options.signal?.addEventListener("abort", onAbort, { once: true });
        if (options.signal?.aborted) onAbort();
        child.stdout.on("data", (chunk: Buffer) => {
          stdout += chunk.toString("latin1");
          if (stdout.includes(PROBE_MARKER)) finish({ ok: true, detail: "marker seen" });
        });
        child.stderr.on("data", (chunk: Buffer) => {
          stderr += chunk.toString("utf8");
          // A KVM internal error pauses the guest instead of ending QEMU: no need to wait.
          if (/KVM internal error|emulation failure/i.test(stderr) && /\n/.test(stderr)) {
            failed(stderrSummary(stderr) ?? "KVM internal error");
          }
        });
        void closed.then((code) => {
          if (stdout.includes(PROBE_MARKER)) finish({ ok: true, detail: "marker seen" });
          else if (spawnError) finish({ ok: false, detail: `cannot run ${qemu}: ${spawnError.message}` });
          else failed(stderrSummary(stderr) ?? `QEMU exited with code ${String(code)}`);
        });
      });
      options.signal?.throwIfAborted();
      return { ...detail, elapsedMs: Date.now() - started };
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await closed;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const verdicts = new Map<string, Promise<AccelVerdict>>();

async function decide(options: ProbeOptions): Promise<AccelVerdict> {
  const device = options.kvmDevice ?? "/dev/kvm";
  try {
    await access(device, constants.R_OK | constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    return { accel: "tcg", reason: `KVM unusable: cannot open ${device} (${code}); using TCG` };
  }
  const run = await runProbeGuest("kvm", options);
  if (run.ok)
    return { accel: "kvm", reason: `KVM works: the probe guest ran under KVM in ${run.elapsedMs} ms` };
  return { accel: "tcg", reason: `KVM unusable: ${run.detail}; using TCG (software emulation, much slower)` };
}

/**
 * KVM when a probe guest really runs under it, TCG otherwise, with the reason. Cached per
 * process and QEMU binary; a missing QEMU rejects with a UserError naming the package
 * (and is not cached, so installing it fixes the next call).
 */
export async function accelVerdict(options: ProbeOptions = {}): Promise<AccelVerdict> {
  const qemu = await findTool(QEMU_SYSTEM, options.qemu);
  const key = `${qemu}\0${options.kvmDevice ?? "/dev/kvm"}`;
  let verdict = verdicts.get(key);
  if (verdict === undefined) {
    verdict = decide({ ...options, qemu });
    verdicts.set(key, verdict);
    // A probe that failed to run at all (aborted, QEMU vanished) is not a verdict to keep.
    verdict.catch(() => verdicts.delete(key));
  }
  return verdict;
}

/**
 * Records that KVM failed a real guest although the probe passed (a guest the probe does
 * not cover): later launches in this process use TCG without probing again.
 */
export async function markKvmUnusable(
  reason: string,
  options: Pick<ProbeOptions, "qemu" | "kvmDevice"> = {},
): Promise<void> {
  const qemu = await findTool(QEMU_SYSTEM, options.qemu);
  verdicts.set(`${qemu}\0${options.kvmDevice ?? "/dev/kvm"}`, Promise.resolve({ accel: "tcg", reason }));
}

/** Forgets cached verdicts (tests). */
export function forgetAccelVerdicts(): void {
  verdicts.clear();
}
