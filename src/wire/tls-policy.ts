/**
 * The one TLS policy every lifeboat endpoint uses: TLS 1.3 only, AES-256-GCM only.
 * Node takes TLS 1.3 suite names in `ciphers`.
 */
import type { SecureContextOptions } from "node:tls";

export const TLS_POLICY = {
  minVersion: "TLSv1.3",
  maxVersion: "TLSv1.3",
  ciphers: "TLS_AES_256_GCM_SHA384",
} as const satisfies Pick<SecureContextOptions, "minVersion" | "maxVersion" | "ciphers">;
