import { test } from "node:test";
import assert from "node:assert/strict";
import { ProgressLine } from "./progress-line.js";

test("ProgressLine redraws one line on a terminal and writes nothing elsewhere", () => {
  const tty: string[] = [];
  const line = new ProgressLine("ingest", 4 * 1024 ** 3, "bytes", { isTTY: true, write: (t) => tty.push(t) });
  line.update(1024 ** 3);
  line.update(1024 ** 3 + 1); // within the redraw interval: skipped
  line.update(4 * 1024 ** 3); // the end is always drawn
  line.done();
  assert.equal(tty.length, 3);
  const CLEAR = "\r\x1b[2K";
  assert.ok(tty[0]?.startsWith(CLEAR));
  assert.match(tty[0]?.slice(CLEAR.length) ?? "", /^ {2}ingest: 25% \(1\.0 GiB \/ 4\.0 GiB, \d+ MB\/s\)$/);
  assert.equal(tty[2], CLEAR);

  const log: string[] = [];
  const quiet = new ProgressLine("pits", 3600, "items", { isTTY: false, write: (t) => log.push(t) });
  quiet.update(10);
  quiet.done();
  assert.deepEqual(log, []);
  assert.match(quiet.render(1800), /^ {2}pits: 50% \(1800 \/ 3600, \d+\/s\)$/);
});
