/**
 * Shared by the commands that start jobs: print the job id, and with --wait poll the job
 * with a progress line (machines done / total) until it ends; exit 1 if it failed.
 */
import type { Job } from "../../common/model.js";
import type { CommandIo } from "../command.js";
import { ProgressBar } from "../output/progress-bar.js";
import { encode, printJson } from "./common-flags.js";

const POLL_MS = 500;

export async function finishJobCommand(
  io: CommandIo,
  job: Job,
  wait: boolean,
  json: boolean,
): Promise<number> {
  if (!wait) {
    if (json) printJson(io, job);
    else io.stdout.write(`Job ${job.id} (${job.kind}) started: follow it with \`lifeboat job ${job.id}\`\n`);
    return 0;
  }
  const bar = new ProgressBar(io.stderr);
  const started = Date.now();
  let current = job;
  for (;;) {
    current = await io.client().get<Job>(`/api/jobs/${encode(job.id)}`);
    const total = current.machines.length;
    const done = current.machines.filter((m) => m.status === "COMPLETED" || m.status === "FAILED").length;
    const ended = current.status === "COMPLETED" || current.status === "FAILED";
    const percent = ended ? 100 : total === 0 ? 0 : (done / total) * 100;
    const elapsed = Math.round((Date.now() - started) / 1000);
    bar.update(
      percent,
      null,
      `${current.kind} ${current.status} ${total > 0 ? `${done}/${total} machines ` : ""}${elapsed}s`,
    );
    if (ended) break;
    await io.sleep(Number(io.env["LIFEBOAT_POLL_MS"] ?? POLL_MS));
  }
  bar.done();
  if (json) printJson(io, current);
  else if (current.status === "COMPLETED") io.stdout.write(`Job ${current.id} completed\n`);
  if (current.status === "FAILED") {
    io.stderr.write(`Job ${current.id} failed: ${current.error ?? "no reason given"}\n`);
    return 1;
  }
  return 0;
}
