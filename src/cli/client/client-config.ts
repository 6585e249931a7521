/**
 * The CLI's connection settings, as `lifeboat up` writes them: JSON
 * `{consoleUrl, caPem, apiKey}`. Found at --config, else $LIFEBOAT_CONFIG, else
 * ./lifeboat-data/client.json. The file holds the admin key: keep it at mode 0600.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { UsageError } from "../args.js";

export const DEFAULT_CLIENT_CONFIG = "./lifeboat-data/client.json";

export interface ClientConfig {
  readonly consoleUrl: string;
  readonly caPem: string;
  readonly apiKey: string;
}

export function clientConfigPath(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string {
  return flag ?? env["LIFEBOAT_CONFIG"] ?? DEFAULT_CLIENT_CONFIG;
}

export function loadClientConfig(path: string): ClientConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === "ENOENT"
        ? `No client config at ${path}: run \`lifeboat up\` first, or pass --config FILE or set LIFEBOAT_CONFIG`
        : `Cannot read client config ${path}: ${(err as Error).message}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`Client config ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const { consoleUrl, caPem, apiKey } = (typeof value === "object" && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  for (const [name, field] of Object.entries({ consoleUrl, caPem, apiKey })) {
    if (typeof field !== "string" || field === "") {
      throw new UsageError(`Client config ${path} has no ${name}: expected JSON {consoleUrl, caPem, apiKey}`);
    }
  }
  return { consoleUrl: String(consoleUrl), caPem: String(caPem), apiKey: String(apiKey) };
}

/** Writes a client config at mode 0600 (it holds the admin key), atomically. For `lifeboat up`. */
export function writeClientConfig(path: string, config: ClientConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}
