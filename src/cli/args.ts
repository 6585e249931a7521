/**
 * The CLI's own argument parser: `--flag value`, `--flag=value`, repeatable flags, boolean
 * flags (`--json`, `--json=false`), positionals, and `--` to end flags. It knows the flags
 * a command declares and rejects anything else with a UsageError (exit code 2).
 */

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface FlagSpec {
  readonly type: "string" | "boolean";
  readonly description: string;
  /** May be given several times; the values are kept in order. */
  readonly multiple?: boolean;
  /** Shown in help: `--ttl DURATION`. */
  readonly placeholder?: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export class ParsedArgs {
  constructor(
    readonly flags: ReadonlyMap<string, readonly string[]>,
    readonly positionals: readonly string[],
  ) {}

  /** The last value of a string flag, or undefined. */
  string(name: string): string | undefined {
    return this.flags.get(name)?.at(-1);
  }

  /** A string flag that must be present. */
  required(name: string, command: string): string {
    const value = this.string(name);
    if (value === undefined) throw new UsageError(`Missing --${name} for \`lifeboat ${command}\``);
    return value;
  }

  strings(name: string): readonly string[] {
    return this.flags.get(name) ?? [];
  }

  boolean(name: string): boolean {
    return this.flags.get(name)?.at(-1) === "true";
  }
}

const BOOLEAN_VALUES: Readonly<Record<string, string>> = {
  true: "true",
  yes: "true",
  "1": "true",
  false: "false",
  no: "false",
  "0": "false",
};

export function parseArgs(argv: readonly string[], specs: FlagSpecs, command = ""): ParsedArgs {
  const flags = new Map<string, string[]>();
  const positionals: string[] = [];
  const where = command === "" ? "" : ` for \`lifeboat ${command}\``;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--") || arg === "-") {
      if (arg === "-h") {
        flags.set("help", ["true"]);
        continue;
      }
      if (arg.startsWith("-") && arg.length > 1 && !/^-\d/.test(arg)) {
        throw new UsageError(`Unknown flag ${arg}${where}: flags are spelled --name`);
      }
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const spec = specs[name];
    if (spec === undefined) {
      throw new UsageError(
        `Unknown flag --${name}${where}: see \`lifeboat ${command === "" ? "" : command + " "}--help\``,
      );
    }
    let value: string;
    if (spec.type === "boolean") {
      const given = eq < 0 ? "true" : arg.slice(eq + 1);
      const normalized = BOOLEAN_VALUES[given.toLowerCase()];
      if (normalized === undefined) throw new UsageError(`Flag --${name} takes true or false, got ${given}`);
      value = normalized;
    } else if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        throw new UsageError(
          `Flag --${name} needs a value${spec.placeholder === undefined ? "" : ` (${spec.placeholder})`}`,
        );
      }
      value = next;
      i++;
    }
    const existing = flags.get(name);
    if (existing !== undefined && spec.multiple !== true && spec.type !== "boolean") {
      throw new UsageError(`Flag --${name} was given twice${where}`);
    }
    flags.set(name, [...(existing ?? []), value]);
  }
  return new ParsedArgs(flags, positionals);
}
