/**
 * `lifeboat demo`: a whole DR drill on the embedded default, in a temporary directory, with
 * real processes, real TLS, real ext4 images and real checks. It follows the seed's
 * walk-through (steps 3 to 8): project and token, two source machines with two disks each,
 * initial sync and CDP, a test launch checked bit for bit, a recovery launch from a PIT
 * chosen by time, failback of only the changed blocks, return to normal without a full
 * resync, and a summary. Every check is recorded; the drill fails if any check fails.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../common/errors.js";
import type { Job, Machine } from "../common/model.js";
import { formatBytes, formatDuration } from "../cli/output/format.js";
import { ProgressBar } from "../cli/output/progress-bar.js";
import { renderTable } from "../cli/output/table.js";
import { renderMachines } from "../cli/commands/machines.js";
import type { MachineView } from "../console/api/machine-view.js";
import { ApiClient } from "../cli/client/api-client.js";
import type { ClientConfig } from "../cli/client/client-config.js";
import {
  fsckClean,
  generateFiles,
  makeExt4,
  readFromImage,
  sha256File,
  writeIntoImage,
} from "./source-disks.js";
import { waitFor } from "../common/wait-for.js";
import { startLifeboat, stop, tail, type Proc } from "./processes.js";

export interface DrillOptions {
  readonly rootMiB: number;
  readonly dataMiB: number;
  /** Keep the drill directory (default: removed when every check passed). */
  readonly keep?: boolean;
  readonly workDir?: string;
  readonly out?: (line: string) => void;
}

export interface DrillCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface MachineFigures {
  name: string;
  id: string;
  diskBytes: number;
  rpoSeconds: number;
  rtoTestSeconds: number | null;
  rtoRecoverySeconds: number | null;
  rtoFailbackSeconds: number | null;
  initialSyncBytes: number;
  continuousBytes: number;
  failbackBytes: number;
  returnToNormalBytes: number;
}

export interface DrillResult {
  readonly passed: boolean;
  readonly checks: readonly DrillCheck[];
  readonly machines: readonly MachineFigures[];
  readonly dir: string;
}

const MACHINES = ["web-1", "db-1"] as const;
/** The snapshot the drill names after the first changes, and launches the test from. */
const BASELINE = "drill baseline";
const PROJECT = "demo-dr";

interface Source {
  readonly name: string;
  readonly disks: string[];
  readonly stateDir: string;
  agent: Proc | null;
  id: string;
  figures: MachineFigures;
}

export async function runDrill(opts: DrillOptions): Promise<DrillResult> {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const dir = opts.workDir ?? (await mkdtemp(join(tmpdir(), "lifeboat-drill-")));
  await mkdir(dir, { recursive: true });
  const checks: DrillCheck[] = [];
  const procs: Proc[] = [];
  const check = (name: string, ok: boolean, detail: string): void => {
    checks.push({ name, ok, detail });
    out(`  ${ok ? "PASS" : "FAIL"}  ${name}${detail ? `: ${detail}` : ""}`);
  };
  const step = (n: number, title: string): void => out(`\n== ${n}. ${title} ==`);
  const cmd = (line: string): void => out(`  $ lifeboat ${line}`);
  const sources: Source[] = [];

  try {
    // 1. The standby site.
    step(1, "Standby site: console and replicator (lifeboat up), project, install token");
    const site = join(dir, "site");
    cmd(`up --data ${site}`);
    const up = startLifeboat(
      "up",
      ["up", "--data", site, "--api-port", "0", "--replication-port", "0"],
      join(dir, "up.log"),
    );
    procs.push(up);
    const configPath = join(site, "client.json");
    const config = await waitFor(
      "the console to start (client.json)",
      async () => {
        if (up.child.exitCode !== null) throw new Error(`lifeboat up exited: ${await tail(up)}`);
        return JSON.parse(await readFile(configPath, "utf8")) as ClientConfig;
      },
      60_000,
    );
    const api = new ApiClient(config);
    await waitFor("the console API", () => api.get("/api/health").then(() => true), 30_000);
    out(`  console ${config.consoleUrl}`);
    cmd(`project create ${PROJECT} --type dr`);
    await api.post("/api/projects", { name: PROJECT, type: "dr" });
    cmd(`token create --project ${PROJECT} --ttl 2h`);
    const { token } = await api.post<{ token: string }>(`/api/projects/${PROJECT}/tokens`, {
      ttlSeconds: 7200,
    });
    out(`  install token ${token.slice(0, 12)}... (carries the console URL and the CA fingerprint)`);

    // 2. Source machines.
    step(2, "Two source machines, two ext4 disks each; agents installed with the token");
    for (const name of MACHINES) {
      const mdir = join(dir, "sources", name);
      const disks = [join(mdir, "root.img"), join(mdir, "data.img")];
      await generateFiles(join(mdir, "files-root"), 6, 256 * 1024, 1);
      await generateFiles(join(mdir, "files-data"), 8, 1024 * 1024, 2);
      await makeExt4(disks[0]!, opts.rootMiB, join(mdir, "files-root"), `${name}-root`);
      await makeExt4(disks[1]!, opts.dataMiB, join(mdir, "files-data"), `${name}-data`);
      const diskBytes = (await stat(disks[0]!)).size + (await stat(disks[1]!)).size;
      out(`  ${name}: root.img ${opts.rootMiB} MiB, data.img ${opts.dataMiB} MiB (mke2fs -d)`);
      sources.push({
        name,
        disks,
        stateDir: join(mdir, "agent-state"),
        agent: null,
        id: "",
        figures: {
          name,
          id: "",
          diskBytes,
          rpoSeconds: 0,
          rtoTestSeconds: null,
          rtoRecoverySeconds: null,
          rtoFailbackSeconds: null,
          initialSyncBytes: 0,
          continuousBytes: 0,
          failbackBytes: 0,
          returnToNormalBytes: 0,
        },
      });
    }
    const startAgent = (s: Source): void => {
      cmd(`agent --token ${token.slice(0, 12)}... --disk ${s.disks.join(" --disk ")} --name ${s.name}`);
      s.agent = startLifeboat(
        `agent-${s.name}`,
        [
          "agent",
          "--token",
          token,
          "--name",
          s.name,
          "--state-dir",
          s.stateDir,
          ...s.disks.flatMap((d) => ["--disk", d]),
        ],
        join(dir, `agent-${s.name}.log`),
      );
      procs.push(s.agent);
    };
    for (const s of sources) startAgent(s);

    const machines = async (): Promise<MachineView[]> =>
      api.get<MachineView[]>(`/api/machines?project=${PROJECT}`);
    const byName = async (): Promise<Map<string, Machine>> =>
      new Map((await machines()).map((m) => [m.name, m]));
    await waitFor(
      "both agents to register",
      async () => (await machines()).length === MACHINES.length,
      60_000,
    );
    for (const [name, m] of await byName()) {
      const s = sources.find((x) => x.name === name)!;
      s.id = m.id;
      s.figures.id = m.id;
    }

    // 3. Initial sync, then CDP.
    step(3, "Initial sync, then continuous data protection");
    await waitContinuous(api, sources, 600_000);
    for (const [name, m] of await byName())
      sources.find((x) => x.name === name)!.figures.initialSyncBytes = m.replication.bytesSent;
    cmd(`machines --project ${PROJECT}`);
    out(indent(renderMachines(await machines())));

    out("  Changing files on the sources while they replicate...");
    const changed1 = await changeSources(dir, sources, "changed-1.bin", 4);
    const rpo1 = await waitDurable(api, sources, changed1.at, 120_000);
    for (const s of sources) s.figures.rpoSeconds = Math.max(s.figures.rpoSeconds, rpo1.get(s.id) ?? 0);
    const hashesA = await hashDisks(sources);
    const timeA = new Date();
    for (const s of sources) {
      cmd(`pits ${s.name}`);
      const pits = await api.get<{ seq: number; time: string }[]>(`/api/machines/${s.id}/pits`);
      out(
        indent(
          renderTable(
            ["seq", "time"],
            pits.slice(-4).map((p) => [String(p.seq), p.time]),
          ),
        ),
      );
      check(`${s.name}: PITs listed`, pits.length > 0, `${pits.length} PITs`);
      cmd(`snapshot create ${s.name} --name "${BASELINE}"`);
      const named = await api.post<{ seq: number; keep: boolean }>(`/api/machines/${s.id}/snapshots`, {
        name: BASELINE,
      });
      check(
        `${s.name}: newest PIT named "${BASELINE}", kept until deleted`,
        named.keep && named.seq === pits.at(-1)?.seq,
        `seq ${named.seq}`,
      );
    }

    // 4. Test launch.
    step(4, "Test launch from the named snapshot, verified, then cleaned up");
    const launched = join(dir, "launched");
    cmd(
      `launch ${MACHINES.join(" ")} --mode test --pit "snapshot:${BASELINE}" --provider export --out ${launched} --wait`,
    );
    const testJob = await launchAndWait(
      api,
      sources.map((s) => s.id),
      "test",
      `snapshot:${BASELINE}`,
      launched,
      out,
    );
    for (const s of sources) {
      const r = testJob.machines.find((x) => x.machineId === s.id);
      s.figures.rtoTestSeconds = r?.rtoSeconds ?? null;
      await verifyLaunched(s, r?.disks ?? [], hashesA.get(s.name)!, changed1.files.get(s.name)!, check);
    }
    for (const m of await machines())
      check(`${m.name}: lifecycle after the test`, m.lifecycle === "TESTED_RECENTLY", m.lifecycle);
    cmd(`cleanup --project ${PROJECT}`);
    await jobAndWait(api, `/api/projects/${PROJECT}/cleanup`, out);
    for (const s of sources) {
      const disks = testJob.machines.find((x) => x.machineId === s.id)?.disks ?? [];
      const gone = await Promise.all(
        disks.map((d) =>
          stat(d).then(
            () => false,
            () => true,
          ),
        ),
      );
      check(
        `${s.name}: test machine cleaned up`,
        disks.length > 0 && gone.every(Boolean),
        `${disks.length} disks removed`,
      );
    }

    // 5. Recovery (failover) from a PIT chosen by time.
    step(5, "Failover: recovery launch from a PIT chosen by time");
    out("  More changes on the sources (after the chosen time)...");
    const changed2 = await changeSources(dir, sources, "changed-2.bin", 2);
    const rpo2 = await waitDurable(api, sources, changed2.at, 120_000);
    for (const s of sources) s.figures.rpoSeconds = Math.max(s.figures.rpoSeconds, rpo2.get(s.id) ?? 0);
    for (const [name, m] of await byName()) {
      const f = sources.find((x) => x.name === name)!.figures;
      f.continuousBytes = m.replication.bytesSent - f.initialSyncBytes;
    }
    const pitTime = timeA.toISOString();
    cmd(`launch ${MACHINES.join(" ")} --mode recovery --pit ${pitTime} --out ${launched} --wait`);
    const recJob = await launchAndWait(
      api,
      sources.map((s) => s.id),
      "recovery",
      pitTime,
      launched,
      out,
    );
    const recovered = new Map<string, string[]>();
    for (const s of sources) {
      const r = recJob.machines.find((x) => x.machineId === s.id);
      s.figures.rtoRecoverySeconds = r?.rtoSeconds ?? null;
      recovered.set(s.name, [...(r?.disks ?? [])]);
      await verifyLaunched(s, r?.disks ?? [], hashesA.get(s.name)!, changed1.files.get(s.name)!, check);
      const ds = r?.disks ?? [];
      let hasChange2 = false;
      if (ds[1])
        hasChange2 = await readFromImage(ds[1], "changed-2.bin").then(
          (b) => b.length > 0,
          () => false,
        );
      check(
        `${s.name}: recovered at the chosen time, not later`,
        !hasChange2,
        `PIT ${r?.pitTime ?? "?"} <= ${pitTime}`,
      );
    }
    for (const m of await machines())
      check(`${m.name}: lifecycle after recovery`, m.lifecycle === "FAILED_OVER", m.lifecycle);
    out("  The primary site is lost: the agents stop (kill -9).");
    for (const s of sources) if (s.agent) await stop(s.agent, "SIGKILL");
    out("  Writing files on the recovered machines...");
    const disasterFiles = new Map<string, Buffer>();
    for (const s of sources) {
      const data = randomBytes(3 * 1024 * 1024);
      const host = join(dir, `disaster-${s.name}.bin`);
      await writeFile(host, data);
      await writeIntoImage(recovered.get(s.name)![1]!, host, "written-during-disaster.bin");
      disasterFiles.set(s.name, data);
    }

    // 6. Failback.
    step(6, "Failback: prepare, failback client on the original disks, launch back on the source");
    cmd(`failback prepare --project ${PROJECT} --wait`);
    await jobAndWait(api, `/api/projects/${PROJECT}/failback/prepare`, out);
    const clients = new Map<string, Proc>();
    for (const s of sources) {
      cmd(
        `failback-client --token ${token.slice(0, 12)}... --machine ${s.id} --disk ${s.disks.join(" --disk ")}`,
      );
      const p = startLifeboat(
        `failback-${s.name}`,
        [
          "failback-client",
          "--token",
          token,
          "--machine",
          s.id,
          ...s.disks.flatMap((d) => ["--disk", d]),
          "--json",
        ],
        join(dir, `failback-${s.name}.log`),
      );
      procs.push(p);
      clients.set(s.name, p);
    }
    await waitFor(
      "failback replication to catch up",
      async () => {
        const ms = await machines();
        return ms.every((m) => m.lifecycle === "READY_FOR_FAILBACK_LAUNCH");
      },
      600_000,
      500,
    );
    for (const m of await machines())
      check(
        `${m.name}: failback replication caught up`,
        m.lifecycle === "READY_FOR_FAILBACK_LAUNCH",
        m.lifecycle,
      );
    cmd(`launch ${MACHINES.join(" ")} --mode recovery --wait   # launch back on the source`);
    const backJob = await launchAndWait(
      api,
      sources.map((s) => s.id),
      "recovery",
      "latest",
      launched,
      out,
    );
    for (const s of sources) {
      const p = clients.get(s.name)!;
      const giveUp = new AbortController();
      const code = await Promise.race([
        p.exited,
        sleep(60_000, "timeout" as const, { signal: giveUp.signal }).catch(() => "timeout" as const),
      ]);
      giveUp.abort();
      check(`${s.name}: failback client finished`, code === 0, `exit ${String(code)}`);
      const summary = (await readFile(p.logFile, "utf8"))
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { receivedBytes?: number })
        .at(-1);
      s.figures.failbackBytes = summary?.receivedBytes ?? 0;
      s.figures.rtoFailbackSeconds = backJob.machines.find((x) => x.machineId === s.id)?.rtoSeconds ?? null;
      out(
        `  ${s.name}: ${formatBytes(s.figures.failbackBytes)} of changed blocks received for ${formatBytes(s.figures.diskBytes)} of disks`,
      );
      check(
        `${s.name}: failback sent only changed blocks`,
        s.figures.failbackBytes > 0 && s.figures.failbackBytes < s.figures.diskBytes / 4,
        `${formatBytes(s.figures.failbackBytes)} of ${formatBytes(s.figures.diskBytes)}`,
      );
      const rec = recovered.get(s.name)!;
      for (const [i, d] of s.disks.entries()) {
        const [a, b] = [await sha256File(d), await sha256File(rec[i]!)];
        check(`${s.name}: source disk ${i} equals the recovered one`, a === b, a.slice(0, 16));
      }
      const got = await readFromImage(s.disks[1]!, "written-during-disaster.bin").catch(() =>
        Buffer.alloc(0),
      );
      check(
        `${s.name}: data written during the disaster is on the source`,
        got.equals(disasterFiles.get(s.name)!),
        formatBytes(got.length),
      );
    }
    for (const m of await machines())
      check(`${m.name}: lifecycle after failback`, m.lifecycle === "FAILED_BACK", m.lifecycle);

    // 7. Return to normal.
    step(7, "Return to normal operation: forward replication resumes without a full resync");
    cmd(`return-to-normal --project ${PROJECT} --wait`);
    await jobAndWait(api, `/api/projects/${PROJECT}/return-to-normal`, out);
    const restartedAt = Date.now();
    for (const s of sources) startAgent(s);
    await waitFor(
      "the agents to replicate forward again",
      async () =>
        // Reports of the restarted agents only: the console keeps the killed agents' last ones.
        (await machines()).every(
          (m) =>
            Date.parse(m.replication.updatedAt) > restartedAt &&
            m.replication.state === "CONTINUOUS" &&
            m.lifecycle === "NORMAL",
        ),
      300_000,
      500,
    );
    for (const [name, m] of await byName()) {
      const s = sources.find((x) => x.name === name)!;
      s.figures.returnToNormalBytes = m.replication.bytesSent;
      out(
        `  ${name}: ${formatBytes(m.replication.bytesSent)} sent to resume (hash lists and differences) for ${formatBytes(s.figures.diskBytes)} of disks`,
      );
      check(
        `${name}: resumed without a full resync`,
        m.replication.bytesSent < s.figures.diskBytes / 20,
        formatBytes(m.replication.bytesSent),
      );
    }
    const changed3 = await changeSources(dir, sources, "changed-3.bin", 1);
    const rpo3 = await waitDurable(api, sources, changed3.at, 120_000);
    for (const s of sources) {
      s.figures.rpoSeconds = Math.max(s.figures.rpoSeconds, rpo3.get(s.id) ?? 0);
      check(
        `${s.name}: new writes replicate after return to normal`,
        rpo3.has(s.id),
        `lag ${(rpo3.get(s.id) ?? 0).toFixed(1)} s`,
      );
    }
  } catch (err) {
    check("drill ran to the end", false, errorMessage(err));
    for (const p of procs) out(`  --- last lines of ${p.name} (${p.logFile}) ---\n${indent(await tail(p))}`);
  } finally {
    for (const p of [...procs].reverse()) await stop(p);
  }

  // 8. Summary.
  const passed = checks.length > 0 && checks.every((c) => c.ok);
  step(8, "Summary");
  const rto = (s: number | null): string => (s === null ? "-" : formatDuration(s));
  out(
    indent(
      renderTable(
        [
          "machine",
          "RPO (max lag)",
          "RTO test",
          "RTO recovery",
          "RTO failback",
          "initial sync",
          "continuous",
          "failback",
          "return to normal",
          "disks",
        ],
        sources.map((s) => [
          s.name,
          `${s.figures.rpoSeconds.toFixed(1)} s`,
          rto(s.figures.rtoTestSeconds),
          rto(s.figures.rtoRecoverySeconds),
          rto(s.figures.rtoFailbackSeconds),
          formatBytes(s.figures.initialSyncBytes),
          formatBytes(s.figures.continuousBytes),
          formatBytes(s.figures.failbackBytes),
          formatBytes(s.figures.returnToNormalBytes),
          formatBytes(s.figures.diskBytes),
        ]),
      ),
    ),
  );
  const failed = checks.filter((c) => !c.ok);
  out(
    passed
      ? `\nVERDICT: PASSED: all ${checks.length} checks passed.`
      : `\nVERDICT: FAILED: ${failed.length} of ${checks.length} checks failed:\n${failed.map((c) => `  - ${c.name}: ${c.detail}`).join("\n")}\n  Drill directory kept: ${dir}`,
  );
  if (passed && !opts.keep && !opts.workDir) await rm(dir, { recursive: true, force: true });
  return { passed, checks, machines: sources.map((s) => s.figures), dir };
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}

async function waitContinuous(api: ApiClient, sources: Source[], timeoutMs: number): Promise<void> {
  const bar = new ProgressBar(process.stdout, { intervalMs: 3000 });
  try {
    await waitFor(
      "initial sync to finish (CONTINUOUS)",
      async () => {
        const ms = (await api.get<Machine[]>(`/api/machines?project=${PROJECT}`)).filter((m) =>
          sources.some((s) => s.id === m.id),
        );
        const pct =
          ms.reduce(
            (s, m) => s + (m.replication.state === "CONTINUOUS" ? 100 : m.replication.progressPercent),
            0,
          ) / sources.length;
        const eta = Math.max(0, ...ms.map((m) => m.replication.etaSeconds ?? 0));
        bar.update(pct, eta > 0 ? eta : null, ms.map((m) => `${m.name} ${m.replication.state}`).join(", "));
        return ms.length === sources.length && ms.every((m) => m.replication.state === "CONTINUOUS");
      },
      timeoutMs,
      500,
    );
  } finally {
    bar.done();
  }
}

/** Writes a new file of `mib` MiB into each source's data disk and rewrites a text file on its root disk. */
async function changeSources(
  dir: string,
  sources: Source[],
  name: string,
  mib: number,
): Promise<{ at: number; files: Map<string, Buffer> }> {
  const files = new Map<string, Buffer>();
  for (const s of sources) {
    const data = randomBytes(mib * 1024 * 1024);
    const host = join(dir, `${s.name}-${name}`);
    await writeFile(host, data);
    await writeIntoImage(s.disks[1]!, host, name);
    await writeFile(`${host}.txt`, `${name} written at ${new Date().toISOString()}\n`);
    await writeIntoImage(s.disks[0]!, `${host}.txt`, "notes-0.txt");
    files.set(s.name, data);
  }
  return { at: Date.now(), files };
}

/**
 * Waits until every machine's standby copy is newer than `since` and a PIT holds it;
 * returns the largest lag seen per machine meanwhile (the measured RPO).
 */
async function waitDurable(
  api: ApiClient,
  sources: Source[],
  since: number,
  timeoutMs: number,
): Promise<Map<string, number>> {
  const maxLag = new Map<string, number>();
  await waitFor(
    "the changes to be durable at the standby",
    async () => {
      const ms = await api.get<Machine[]>(`/api/machines?project=${PROJECT}`);
      let all = true;
      for (const s of sources) {
        const m = ms.find((x) => x.id === s.id);
        const lag = m?.replication.lagSeconds;
        if (!m || lag === null || lag === undefined) {
          all = false;
          continue;
        }
        maxLag.set(s.id, Math.max(maxLag.get(s.id) ?? 0, lag));
        const durableAsOf = Date.parse(m.replication.updatedAt) - lag * 1000;
        if (!(durableAsOf > since)) all = false;
      }
      return all;
    },
    timeoutMs,
    250,
  );
  // The PIT of that pass is cut within a second of it becoming durable.
  await sleep(1500);
  return maxLag;
}

async function launchAndWait(
  api: ApiClient,
  machineIds: string[],
  mode: string,
  pit: string,
  outDir: string,
  out: (l: string) => void,
): Promise<Job> {
  const job = await api.post<Job>("/api/launches", { machineIds, mode, pit, provider: "export", outDir });
  return waitJob(api, job.id, out);
}

async function jobAndWait(api: ApiClient, path: string, out: (l: string) => void): Promise<Job> {
  const job = await api.post<Job>(path, {});
  return waitJob(api, job.id, out);
}

async function waitJob(api: ApiClient, id: string, out: (l: string) => void): Promise<Job> {
  const job = await waitFor(
    `job ${id}`,
    async () => {
      const j = await api.get<Job>(`/api/jobs/${id}`);
      return j.status === "COMPLETED" || j.status === "FAILED" ? j : undefined;
    },
    600_000,
    250,
  );
  for (const l of job.log) out(`    ${l.message}`);
  if (job.status !== "COMPLETED")
    throw new Error(`Job ${id} (${job.kind}) failed: ${job.error ?? "no error given"}`);
  return job;
}

async function hashDisks(sources: Source[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const s of sources) out.set(s.name, await Promise.all(s.disks.map((d) => sha256File(d))));
  return out;
}

async function verifyLaunched(
  s: Source,
  disks: readonly string[],
  expected: readonly string[],
  changedFile: Buffer,
  check: (name: string, ok: boolean, detail: string) => void,
): Promise<void> {
  check(
    `${s.name}: launched with ${s.disks.length} disks`,
    disks.length === s.disks.length,
    disks.join(", "),
  );
  for (const [i, d] of disks.entries()) {
    const h = await sha256File(d);
    check(
      `${s.name}: launched disk ${i} is bit-for-bit the source at the PIT`,
      h === expected[i],
      h.slice(0, 16),
    );
    const fsck = await fsckClean(d);
    check(
      `${s.name}: launched disk ${i} filesystem clean (e2fsck -fn)`,
      fsck.clean,
      fsck.clean ? "clean" : fsck.output.slice(-200),
    );
  }
  if (disks[1]) {
    const got = await readFromImage(disks[1], "changed-1.bin").catch(() => Buffer.alloc(0));
    check(
      `${s.name}: launched data disk holds the file changed while replicating`,
      got.equals(changedFile),
      formatBytes(got.length),
    );
  }
}
