/**
 * The agent's identity in its state directory: machine id, the EC P-256 key it made
 * itself (mode 0600), the certificate the console's CA issued for that key, the pinned CA,
 * where the console and the replicator are. Identity is the key, not the hardware: a new
 * NIC or MAC changes nothing.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileDurably } from "../common/durable-file.js";

export interface AgentIdentity {
  readonly machineId: string;
  readonly consoleUrl: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly replicator: { readonly host: string; readonly port: number };
  readonly disks: readonly { readonly id: string; readonly path: string; readonly sizeBytes: number }[];
}

export function newKeyPair(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

export async function loadIdentity(stateDir: string, file = "identity.json"): Promise<AgentIdentity | null> {
  try {
    return JSON.parse(await readFile(join(stateDir, file), "utf8")) as AgentIdentity;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new Error(
      `Cannot read the agent identity in ${stateDir}: remove the state directory to register anew`,
      {
        cause: err,
      },
    );
  }
}

export async function saveIdentity(
  stateDir: string,
  identity: AgentIdentity,
  file = "identity.json",
): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeFileDurably(join(stateDir, file), JSON.stringify(identity, null, 2), 0o600);
}
