/**
 * Runs one CLI invocation against a command registry: finds the command, parses its flags
 * (plus the global --config and --help), runs it and maps failures to exit codes: 2 for
 * usage errors, 1 for everything else, with one clear line on stderr.
 */
import { errorMessage } from "../common/errors.js";
import { parseArgs, UsageError, type FlagSpecs } from "./args.js";
import { ApiClient } from "./client/api-client.js";
import { clientConfigPath, loadClientConfig } from "./client/client-config.js";
import {
  checkPositionals,
  type Command,
  type CommandIo,
  type CommandRegistry,
  type OutputStream,
} from "./command.js";

export const GLOBAL_FLAGS: FlagSpecs = {
  config: {
    type: "string",
    description: "Client config (default $LIFEBOAT_CONFIG or ./lifeboat-data/client.json)",
    placeholder: "FILE",
  },
  help: { type: "boolean", description: "Show help" },
};

export interface CliEnvironment {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Installs interrupt handling and returns its signal (main.ts: SIGINT/SIGTERM). */
  readonly interruptSignal?: () => AbortSignal;
}

function usageLine(command: Command): string {
  const flags = Object.entries(command.flags)
    .map(([name, spec]) => {
      const text = spec.type === "boolean" ? `--${name}` : `--${name} ${spec.placeholder ?? "VALUE"}`;
      return spec.multiple === true ? `[${text} ...]` : `[${text}]`;
    })
    .join(" ");
  return `lifeboat ${command.name}${command.usage === undefined ? "" : ` ${command.usage}`} ${flags}`.trimEnd();
}

export function commandHelp(command: Command): string {
  const flags = { ...command.flags, ...GLOBAL_FLAGS };
  const width = Math.max(...Object.keys(flags).map((n) => n.length)) + 2;
  const lines = [`Usage: ${usageLine(command)}`, "", command.summary, "", "Flags:"];
  for (const [name, spec] of Object.entries(flags)) {
    lines.push(
      `  --${name.padEnd(width)}${spec.description}${spec.multiple === true ? " (repeatable)" : ""}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export function generalHelp(registry: CommandRegistry, only?: readonly Command[]): string {
  const commands = only ?? registry.commands;
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    "Usage: lifeboat COMMAND [flags]   (lifeboat COMMAND --help for its flags)",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
  ].join("\n");
}

export async function runCli(
  registry: CommandRegistry,
  argv: readonly string[],
  environment: CliEnvironment,
): Promise<number> {
  const { stdout, stderr, env } = environment;
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    (argv.length === 0 ? stderr : stdout).write(generalHelp(registry));
    return argv.length === 0 ? 2 : 0;
  }
  const found = registry.find(argv);
  if (found === undefined) {
    const group = registry.group(argv[0] ?? "");
    if (group.length > 0) {
      stderr.write(generalHelp(registry, group));
      return 2;
    }
    stderr.write(`lifeboat: unknown command ${argv[0] ?? ""}: see \`lifeboat --help\`\n`);
    return 2;
  }
  const { command, rest } = found;
  try {
    const args = parseArgs(rest, { ...command.flags, ...GLOBAL_FLAGS }, command.name);
    if (args.boolean("help")) {
      stdout.write(commandHelp(command));
      return 0;
    }
    checkPositionals(command, args);
    let client: ApiClient | undefined;
    let interrupt: AbortSignal | undefined;
    const io: CommandIo = {
      stdout,
      stderr,
      env,
      client: () =>
        (client ??= new ApiClient(loadClientConfig(clientConfigPath(args.string("config"), env)))),
      interruptSignal: () => (interrupt ??= environment.interruptSignal?.() ?? new AbortController().signal),
      sleep: (ms) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          interrupt?.addEventListener("abort", () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    };
    return (await command.run(args, io)) ?? 0;
  } catch (err) {
    stderr.write(`lifeboat ${command.name}: ${errorMessage(err)}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}
