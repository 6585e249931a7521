/**
 * Helper process for the crash test (crash-writer.test.ts), doing what the replicator does
 * to its store: it opens the encrypted store in argv[2] (roll threshold argv[4], aggressive
 * compaction) and appends the deterministic batches `crashBatch(id)` for ids from argv[3]
 * upwards, four at a time, forever, printing `ack <id> <seq>` for each acknowledged batch.
 * Beside the appends it cuts a PIT every few batches and prints `pit <seq> <xxh64 of every
 * disk at that PIT>`, drops old PITs as a retention policy would (printing `drop <seq>`
 * first), and asks for compaction. The test kills it with SIGKILL at a random moment, then
 * checks every acknowledged batch and every recorded PIT.
 */
import { CRASH_DISKS, crashBatch, digestAt, openCrashStore } from "./test-support.js";

const [dir, firstIdArg, thresholdArg] = process.argv.slice(2);
if (dir === undefined || firstIdArg === undefined || thresholdArg === undefined) {
  console.error("Usage: crash-writer <store dir> <first id> <roll threshold bytes>");
  process.exit(2);
}
const store = await openCrashStore(dir, Number(thresholdArg));
const timeline = store.has("crash")
  ? store.timeline("crash")
  : await store.createTimeline("crash", CRASH_DISKS, { keyScope: "crash-project" });
process.stdout.write(`ready ${timeline.lastSeq()}\n`);
let next = Number(firstIdArg);

async function writer(): Promise<void> {
  for (;;) {
    const id = next++;
    const seq = await timeline.append(crashBatch(id), { tag: id });
    // Pipes are synchronous on Linux: once this returns the parent will see the line.
    process.stdout.write(`ack ${id} ${seq}\n`);
  }
}

/** PITs, retention (keep the newest four, and four older ones whose seq is a multiple of 8) and compaction. */
async function keeper(): Promise<void> {
  for (let n = 0; ; n++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    const pit = await timeline.cutPit();
    process.stdout.write(`pit ${pit.seq} ${await digestAt(timeline, pit.seq)}\n`);
    const pits = timeline.pits();
    const older = pits.slice(0, -4);
    const anchors = older.filter((p) => p.seq % 8 === 0).slice(-4);
    const doomed = older.filter((p) => !anchors.includes(p));
    for (const p of doomed) process.stdout.write(`drop ${p.seq}\n`);
    await timeline.dropPits(doomed.map((p) => p.seq));
    if (n % 3 === 0) await timeline.compact();
  }
}

await Promise.all([writer(), writer(), writer(), writer(), keeper()]);
