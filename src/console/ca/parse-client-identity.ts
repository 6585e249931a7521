/**
 * Reads the machine identity out of a client certificate the console's CA issued: the CN
 * is the machine id and a SAN URI `urn:lifeboat:machine:<id>:<role>` names the role. The
 * console's agent routes and the replicator both use it after TLS has verified the chain
 * (`socket.authorized`); it checks only the shape, never the signature.
 */
import { X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";

export type ClientRole = "source" | "failback";

export interface ClientIdentity {
  readonly machineId: string;
  readonly role: ClientRole;
}

const URI_PATTERN = /(?:^|,\s*)URI:urn:lifeboat:machine:([A-Za-z0-9._-]+):(source|failback)(?:,|$)/;

export function clientIdentityUri(machineId: string, role: ClientRole): string {
  return `urn:lifeboat:machine:${machineId}:${role}`;
}

/** The identity in a peer certificate (from `socket.getPeerCertificate()`) or a PEM; null if none. */
export function parseClientIdentity(
  peerCert: PeerCertificate | string | null | undefined,
): ClientIdentity | null {
  if (peerCert === null || peerCert === undefined) return null;
  let cert: X509Certificate;
  try {
    if (typeof peerCert === "string") cert = new X509Certificate(peerCert);
    else if (Buffer.isBuffer(peerCert.raw) && peerCert.raw.length > 0)
      cert = new X509Certificate(peerCert.raw);
    else return null;
  } catch {
    return null;
  }
  const match = URI_PATTERN.exec(cert.subjectAltName ?? "");
  if (match === null) return null;
  const machineId = match[1] ?? "";
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  if (cn !== machineId) return null;
  return { machineId, role: match[2] === "failback" ? "failback" : "source" };
}
