/**
 * Reads who a TLS peer is from its certificate: the console's CA writes the machine id and
 * role into a SAN URI `urn:lifeboat:machine:<machineId>:<role>` (docs/wire-protocol.md).
 */
import type { PeerCertificate } from "node:tls";
import type { Role } from "./frames.js";

export interface PeerIdentity {
  readonly machineId: string;
  readonly role: Role;
}

const URI = /URI:urn:lifeboat:machine:([A-Za-z0-9_-]{1,64}):(source|failback)(?:,|$)/;

export function peerIdentity(cert: PeerCertificate | null | undefined): PeerIdentity | null {
  const san = cert?.subjectaltname;
  if (typeof san !== "string") return null;
  const m = URI.exec(san);
  if (!m) return null;
  return { machineId: m[1]!, role: m[2] as Role };
}
