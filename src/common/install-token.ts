/**
 * The install token an operator hands to an agent: `lbt1.` + base64url(JSON {c, f, s})
 * with the console URL (c), the CA fingerprint the agent pins (f) and a random secret (s).
 * One string is all an agent needs to find the console, trust it and register. The
 * console keeps only sha256(secret).
 */
import { createHash, randomBytes } from "node:crypto";
import { UserError } from "./errors.js";

export const INSTALL_TOKEN_PREFIX = "lbt1.";

export interface InstallTokenContents {
  /** Console URL, e.g. https://10.0.0.5:8443 */
  readonly consoleUrl: string;
  /** SHA-256 hex of the console CA certificate DER. */
  readonly caFingerprint: string;
  readonly secret: string;
}

export function newTokenSecret(): string {
  return randomBytes(32).toString("base64url");
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

export function formatInstallToken(contents: InstallTokenContents): string {
  const json = JSON.stringify({ c: contents.consoleUrl, f: contents.caFingerprint, s: contents.secret });
  return INSTALL_TOKEN_PREFIX + Buffer.from(json, "utf8").toString("base64url");
}

/** Parses a token string; throws UserError 400 saying what is wrong with it. */
export function parseInstallToken(token: string): InstallTokenContents {
  const trimmed = token.trim();
  if (!trimmed.startsWith(INSTALL_TOKEN_PREFIX)) {
    throw new UserError(`Invalid install token: it must start with "${INSTALL_TOKEN_PREFIX}"`, 400);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(trimmed.slice(INSTALL_TOKEN_PREFIX.length), "base64url").toString("utf8"));
  } catch (err) {
    throw new UserError("Invalid install token: it is truncated or mangled; copy it again", 400, {
      cause: err,
    });
  }
  const { c, f, s } = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  if (typeof c !== "string" || typeof f !== "string" || typeof s !== "string" || !/^[0-9a-f]{64}$/.test(f)) {
    throw new UserError(
      "Invalid install token: it is missing the console URL, CA fingerprint or secret",
      400,
    );
  }
  return { consoleUrl: c, caFingerprint: f, secret: s };
}
