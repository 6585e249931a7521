import { test } from "node:test";
import assert from "node:assert/strict";
import { UsageError } from "./args.js";
import { CommandRegistry, type Command } from "./command.js";
import { runCli } from "./run-cli.js";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    env: {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t) },
      env: {},
    },
  };
}

const echo: Command = {
  name: "thing show",
  summary: "Shows a thing",
  usage: "NAME",
  positionals: { min: 1, max: 1 },
  flags: { loud: { type: "boolean", description: "Shout" } },
  run(args, io) {
    const name = args.positionals[0] ?? "";
    if (name === "bad") throw new UsageError("bad name");
    if (name === "broken") return Promise.reject(new Error("Console refused the request (409): nope"));
    io.stdout.write(args.boolean("loud") ? name.toUpperCase() : name);
    return Promise.resolve();
  },
};

test("runCli() dispatches multi-word commands and maps errors to exit codes", async () => {
  const registry = new CommandRegistry().add(echo);
  let c = capture();
  assert.equal(await runCli(registry, ["thing", "show", "x", "--loud"], c.env), 0);
  assert.deepEqual(c.out, ["X"]);
  c = capture();
  assert.equal(await runCli(registry, ["thing", "show"], c.env), 2);
  assert.match(c.err.join(""), /needs NAME/);
  c = capture();
  assert.equal(await runCli(registry, ["thing", "show", "bad"], c.env), 2);
  assert.match(c.err.join(""), /^lifeboat thing show: bad name/);
  c = capture();
  assert.equal(await runCli(registry, ["thing", "show", "broken"], c.env), 1);
  assert.match(c.err.join(""), /Console refused the request \(409\): nope/);
  c = capture();
  assert.equal(await runCli(registry, ["thing", "show", "x", "--what"], c.env), 2);
  c = capture();
  assert.equal(await runCli(registry, ["thing", "show", "--help"], c.env), 0);
  assert.match(c.out.join(""), /Usage: lifeboat thing show NAME \[--loud\]/);
  c = capture();
  assert.equal(await runCli(registry, ["thing"], c.env), 2);
  assert.match(c.err.join(""), /thing show/);
  c = capture();
  assert.equal(await runCli(registry, ["nothing"], c.env), 2);
  assert.match(c.err.join(""), /unknown command nothing/);
  assert.throws(() => registry.add(echo), /registered twice/);
});

test("runCli() hands long-running commands an interrupt signal that ends their sleeps", async () => {
  const abort = new AbortController();
  const daemon: Command = {
    name: "daemon",
    summary: "Runs until interrupted",
    flags: {},
    async run(_args, io) {
      const signal = io.interruptSignal();
      setTimeout(() => abort.abort(), 10);
      while (!signal.aborted) await io.sleep(60_000);
      io.stdout.write("stopped");
    },
  };
  const c = capture();
  const started = Date.now();
  const code = await runCli(new CommandRegistry().add(daemon), ["daemon"], {
    ...c.env,
    interruptSignal: () => abort.signal,
  });
  assert.equal(code, 0);
  assert.deepEqual(c.out, ["stopped"]);
  assert.ok(Date.now() - started < 5000);
});
