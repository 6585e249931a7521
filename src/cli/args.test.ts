import { test } from "node:test";
import assert from "node:assert/strict";
import { parseArgs, UsageError, type FlagSpecs } from "./args.js";

const SPECS: FlagSpecs = {
  mode: { type: "string", description: "" },
  set: { type: "string", description: "", multiple: true },
  json: { type: "boolean", description: "" },
  help: { type: "boolean", description: "" },
};

test("parseArgs() reads --x value, --x=value, repeatable flags, booleans and positionals", () => {
  const args = parseArgs(["web-1", "--mode", "test", "--set=a=1", "--set", "b=2", "--json", "web-2"], SPECS);
  assert.deepEqual(args.positionals, ["web-1", "web-2"]);
  assert.equal(args.string("mode"), "test");
  assert.deepEqual(args.strings("set"), ["a=1", "b=2"]);
  assert.equal(args.boolean("json"), true);
  assert.equal(args.boolean("help"), false);
  assert.equal(parseArgs(["--json=false"], SPECS).boolean("json"), false);
  assert.deepEqual(parseArgs(["--", "--mode", "-x"], SPECS).positionals, ["--mode", "-x"]);
  assert.equal(parseArgs(["-h"], SPECS).boolean("help"), true);
  assert.equal(parseArgs(["--mode="], SPECS).string("mode"), "");
});

test("parseArgs() rejects unknown flags, missing values and repeated single flags", () => {
  assert.throws(
    () => parseArgs(["--nope"], SPECS, "launch"),
    (e: unknown) => e instanceof UsageError && /Unknown flag --nope for `lifeboat launch`/.test(e.message),
  );
  assert.throws(() => parseArgs(["--mode"], SPECS), /Flag --mode needs a value/);
  assert.throws(() => parseArgs(["--mode", "--json"], SPECS), /needs a value/);
  assert.throws(() => parseArgs(["--mode", "a", "--mode", "b"], SPECS), /given twice/);
  assert.throws(() => parseArgs(["--json=maybe"], SPECS), /takes true or false/);
  assert.throws(() => parseArgs(["-x"], SPECS), /Unknown flag -x/);
  assert.equal(parseArgs(["required-missing"], SPECS).string("mode"), undefined);
  assert.throws(
    () => parseArgs([], SPECS).required("mode", "launch"),
    /Missing --mode for `lifeboat launch`/,
  );
});
