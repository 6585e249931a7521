/** `lifeboat up`: console and replicator in one process, all state under --data (the embedded default). */
import { startEmbedded } from "../../embedded/embedded-site.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";

function port(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`--${flag} must be a port number (0-65535), got ${value}`);
  return n;
}

export const up: Command = {
  name: "up",
  summary: "Run the console and a replicator (embedded default); writes DIR/client.json for the CLI",
  flags: {
    data: { type: "string", description: "Data directory (default ./lifeboat-data)", placeholder: "DIR" },
    "api-port": {
      type: "string",
      description: "Console HTTPS port (default 8443; 0 = any free port)",
      placeholder: "N",
    },
    "replication-port": {
      type: "string",
      description: "Replication TLS port (default 1500; 0 = any)",
      placeholder: "N",
    },
    host: {
      type: "string",
      description: "Address to listen on and advertise (default 127.0.0.1)",
      placeholder: "ADDR",
    },
  },
  async run(args, io) {
    const dataDir = args.string("data") ?? "./lifeboat-data";
    const site = await startEmbedded({
      dataDir,
      apiPort: port(args.string("api-port"), 8443, "api-port"),
      replicationPort: port(args.string("replication-port"), 1500, "replication-port"),
      ...(args.string("host") ? { host: args.string("host")! } : {}),
    });
    io.stdout.write(
      `lifeboat is up: console ${site.console.url}, replicator ${site.replicator.endpoint.host}:${site.replicator.endpoint.port}\n` +
        `CLI config: ${site.configPath} (export LIFEBOAT_CONFIG=${site.configPath})\n`,
    );
    const stopSignal = io.interruptSignal();
    await new Promise<void>((resolve) => {
      if (stopSignal.aborted) resolve();
      stopSignal.addEventListener("abort", () => resolve(), { once: true });
    });
    io.stderr.write("lifeboat: shutting down\n");
    await site.close();
  },
};
