/**
 * What a CLI command is, and the registry `main.ts` dispatches over. A command has a name
 * of one or more words ("launch", "project create"), the flags it accepts, and `run`. The
 * registry is filled explicitly by `commands/index.ts`: to add a command, write
 * `commands/<name>.ts` exporting a Command and add it to the list there.
 */
import type { ApiClient } from "./client/api-client.js";
import { UsageError, type FlagSpecs, type ParsedArgs } from "./args.js";

export interface OutputStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export interface CommandIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The console client from --config / LIFEBOAT_CONFIG / ./lifeboat-data/client.json (loaded on first use). */
  client(): ApiClient;
  /**
   * For long-running commands (`up`, `agent`): installs SIGINT/SIGTERM handlers and returns
   * a signal that aborts on the first one, so the command can shut down cleanly; a second
   * one exits at once. Commands that never call it keep Node's default (Ctrl-C exits).
   */
  interruptSignal(): AbortSignal;
  /** Sleeps; returns early once interruptSignal() (if taken) aborts. */
  sleep(ms: number): Promise<void>;
}

export interface Command {
  /** One or more words: "machines", "project create". */
  readonly name: string;
  readonly summary: string;
  /** Positionals in the usage line, e.g. "MACHINE..." */
  readonly usage?: string;
  readonly flags: FlagSpecs;
  /** Positional count bounds (default 0..0). */
  readonly positionals?: { readonly min: number; readonly max: number };
  /** Resolves with the exit code (default 0). Throw UsageError for exit code 2. */
  run(args: ParsedArgs, io: CommandIo): Promise<number | void>;
}

export class CommandRegistry {
  readonly #commands = new Map<string, Command>();

  add(command: Command): this {
    if (this.#commands.has(command.name)) throw new Error(`Command registered twice: ${command.name}`);
    this.#commands.set(command.name, command);
    return this;
  }

  get commands(): readonly Command[] {
    return [...this.#commands.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The command named by the longest run of leading words, and the arguments after it. */
  find(argv: readonly string[]): { command: Command; rest: readonly string[] } | undefined {
    for (let n = Math.min(argv.length, 3); n >= 1; n--) {
      const command = this.#commands.get(argv.slice(0, n).join(" "));
      if (command !== undefined) return { command, rest: argv.slice(n) };
    }
    return undefined;
  }

  /** Commands whose name starts with `word` (for `lifeboat project`). */
  group(word: string): readonly Command[] {
    return this.commands.filter((c) => c.name.startsWith(`${word} `));
  }
}

/** Checks the positional count against the command's bounds. */
export function checkPositionals(command: Command, args: ParsedArgs): void {
  const { min, max } = command.positionals ?? { min: 0, max: 0 };
  const n = args.positionals.length;
  if (n < min) {
    throw new UsageError(`\`lifeboat ${command.name}\` needs ${command.usage ?? "an argument"}: see --help`);
  }
  if (n > max) {
    throw new UsageError(
      `Unexpected argument ${args.positionals[max] ?? ""} for \`lifeboat ${command.name}\``,
    );
  }
}
