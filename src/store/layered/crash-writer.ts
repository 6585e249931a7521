/**
 * Helper process for the crash test (crash-writer.test.ts): opens the store in argv[2] with
 * the roll threshold in argv[4], then appends the deterministic batches `crashBatch(id)` for
 * ids from argv[3] upwards, four at a time, forever, printing `ack <id> <seq>` for each
 * acknowledged batch. The test kills it with SIGKILL at a random moment and checks that
 * every acknowledged batch reads back.
 */
import { LayeredStore } from "./layered-store.js";
import { CRASH_DISKS, crashBatch } from "./test-support.js";

const [dir, firstIdArg, thresholdArg] = process.argv.slice(2);
if (dir === undefined || firstIdArg === undefined || thresholdArg === undefined) {
  console.error("Usage: crash-writer <store dir> <first id> <roll threshold bytes>");
  process.exit(2);
}
const store = await LayeredStore.open(dir, { rollThresholdBytes: Number(thresholdArg) });
const timeline = store.has("crash")
  ? store.timeline("crash")
  : await store.createTimeline("crash", CRASH_DISKS);
process.stdout.write(`ready ${timeline.lastSeq()}\n`);
let next = Number(firstIdArg);

async function worker(): Promise<void> {
  for (;;) {
    const id = next++;
    const seq = await timeline.append(crashBatch(id), { tag: id });
    // Pipes are synchronous on Linux: once this returns the parent will see the line.
    process.stdout.write(`ack ${id} ${seq}\n`);
  }
}

await Promise.all([worker(), worker(), worker(), worker()]);
