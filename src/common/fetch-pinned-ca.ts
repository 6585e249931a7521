/**
 * Trust on first contact, pinned: an agent that holds only an install token fetches the
 * console's CA certificate over an unverified TLS 1.3 connection and accepts it only if
 * its SHA-256 (DER) equals the fingerprint in the token. Every later connection verifies
 * against that CA.
 */
import { X509Certificate, createHash } from "node:crypto";
import { request } from "node:https";
import { UserError } from "./errors.js";

export function caFingerprint(caPem: string): string {
  return createHash("sha256").update(new X509Certificate(caPem).raw).digest("hex");
}

export function fetchPinnedCa(
  consoleUrl: string,
  fingerprint: string,
  signal?: AbortSignal,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL("/api/ca", consoleUrl),
      // Unverified on purpose: the fingerprint check below is the verification.
      {
        method: "GET",
        rejectUnauthorized: false,
        minVersion: "TLSv1.3",
        timeout: 30_000,
        ...(signal ? { signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const pem = Buffer.concat(chunks).toString("utf8");
          let actual: string;
          try {
            actual = caFingerprint(pem);
          } catch (err) {
            reject(
              new Error(
                `The console at ${consoleUrl} did not return a CA certificate (HTTP ${res.statusCode ?? 0})`,
                { cause: err },
              ),
            );
            return;
          }
          if (actual !== fingerprint.toLowerCase()) {
            reject(
              new UserError(
                `CA fingerprint mismatch for ${consoleUrl}: the token expects ${fingerprint}, the console has ${actual}; check the console URL or create a new token`,
                401,
              ),
            );
            return;
          }
          resolve(pem);
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 30 s")));
    req.on("error", (err) =>
      reject(new Error(`Cannot reach the console at ${consoleUrl}: ${err.message}`, { cause: err })),
    );
    req.end();
  });
}
