/**
 * Entry point of the `lifeboat` command (bin/lifeboat.js imports this file): dispatches
 * over the registry that commands/index.ts fills, and sets the exit code.
 */
import { createCommandRegistry } from "./commands/index.js";
import { runCli } from "./run-cli.js";

const abort = new AbortController();
process.once("SIGINT", () => {
  abort.abort();
  process.exitCode = 130;
});

process.exitCode = await runCli(createCommandRegistry(), process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: abort.signal,
});
