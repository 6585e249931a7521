/**
 * Entry point of the `lifeboat` command (bin/lifeboat.js imports this file): dispatches
 * over the registry that commands/index.ts fills, and sets the exit code.
 */
import { createCommandRegistry } from "./commands/index.js";
import { runCli } from "./run-cli.js";

function interruptSignal(): AbortSignal {
  const abort = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write(`lifeboat: ${name} received, shutting down (again to force)\n`);
    abort.abort(new Error(`Interrupted by ${name}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return abort.signal;
}

process.exitCode = await runCli(createCommandRegistry(), process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  interruptSignal,
});
