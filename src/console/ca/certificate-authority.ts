/**
 * The console's internal certificate authority. On first start it creates a root CA
 * (ECDSA P-256, ten years) under `<dataDir>/ca/` with the key file at mode 0600; later
 * starts load it. It issues the console's own server certificate and the agents' and
 * failback clients' client certificates: one certificate names one machine (CN and a SAN
 * URI `urn:lifeboat:machine:<id>:<role>`), bound to the key the agent generated, so the
 * identity is the key and not the hardware. Agents pin the CA by its fingerprint (the
 * SHA-256 of the CA certificate DER), which travels inside the install token.
 */
import "reflect-metadata";
import { createHash, createPublicKey, randomBytes, webcrypto } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { UserError } from "../../common/errors.js";
import { clientIdentityUri, type ClientRole } from "./parse-client-identity.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;
/** Backdating absorbs small clock differences between the console and its agents. */
const BACKDATE_MS = 5 * 60_000;

export interface IssuedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive INTEGER
  return bytes.toString("hex");
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}

async function exportPrivateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

export class CertificateAuthority {
  readonly #cert: x509.X509Certificate;
  readonly #key: webcrypto.CryptoKey;
  /** The CA certificate, PEM. */
  readonly certPem: string;

  private constructor(cert: x509.X509Certificate, key: webcrypto.CryptoKey) {
    this.#cert = cert;
    this.#key = key;
    this.certPem = cert.toString("pem") + "\n";
  }

  /** Loads the CA from `<dataDir>/ca/`, creating it on first use. */
  static async open(dataDir: string): Promise<CertificateAuthority> {
    const dir = join(dataDir, "ca");
    const certFile = join(dir, "ca.crt");
    const keyFile = join(dir, "ca.key");
    if (existsSync(certFile) && existsSync(keyFile)) {
      const cert = new x509.X509Certificate(readFileSync(certFile, "utf8"));
      const key = await webcrypto.subtle.importKey(
        "pkcs8",
        pemToDer(readFileSync(keyFile, "utf8")),
        EC_ALGORITHM,
        true,
        ["sign"],
      );
      return new CertificateAuthority(cert, key);
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const keys = await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ["sign", "verify"]);
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serialNumber(),
      name: `CN=lifeboat internal CA ${randomBytes(4).toString("hex")}`,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + 3650 * DAY_MS),
      signingAlgorithm: SIGNING_ALGORITHM,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    // Key first: a certificate without its key would be loaded as a broken CA.
    writeFileAtomic(keyFile, await exportPrivateKeyPem(keys.privateKey), 0o600);
    writeFileAtomic(certFile, cert.toString("pem") + "\n", 0o644);
    return new CertificateAuthority(cert, keys.privateKey);
  }

  /** SHA-256 hex of the CA certificate DER: what install tokens carry for pinning. */
  fingerprint(): string {
    return createHash("sha256").update(Buffer.from(this.#cert.rawData)).digest("hex");
  }

  async #issue(
    subject: string,
    publicKey: webcrypto.CryptoKey | Buffer,
    extensions: x509.Extension[],
    days: number,
  ): Promise<string> {
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject,
      issuer: this.#cert.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + days * DAY_MS),
      signingAlgorithm: SIGNING_ALGORITHM,
      publicKey,
      signingKey: this.#key,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        await x509.AuthorityKeyIdentifierExtension.create(this.#cert.publicKey),
        ...extensions,
      ],
    });
    return cert.toString("pem") + "\n";
  }

  /** A TLS server certificate (and a fresh P-256 key) for DNS names and IP addresses. */
  async issueServerCert(names: readonly string[]): Promise<IssuedCertificate> {
    const unique = [...new Set(names)];
    if (unique.length === 0) throw new UserError("Cannot issue a server certificate: no names given", 400);
    const keys = await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ["sign", "verify"]);
    const certPem = await this.#issue(
      `CN=${unique[0] ?? "lifeboat"}`,
      keys.publicKey,
      [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(
          unique.map((n) => ({ type: isIP(n) === 0 ? "dns" : "ip", value: n }) as const),
        ),
      ],
      365,
    );
    return { certPem, keyPem: await exportPrivateKeyPem(keys.privateKey) };
  }

  /**
   * A client certificate for a machine's agent ("source") or failback client ("failback"),
   * for the public key the client generated (PEM, SPKI). Rejects a key that does not parse.
   */
  async issueClientCert(machineId: string, role: ClientRole, publicKeyPem: string): Promise<string> {
    let spki: Buffer;
    try {
      spki = createPublicKey(publicKeyPem).export({ type: "spki", format: "der" });
    } catch (err) {
      throw new UserError("Invalid public key: expected a PEM-encoded public key (SPKI)", 400, {
        cause: err,
      });
    }
    return this.#issue(
      `CN=${machineId}`,
      spki,
      [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([
          { type: "url", value: clientIdentityUri(machineId, role) },
        ]),
      ],
      365,
    );
  }
}

/** sha256 hex of a public key's SPKI DER; throws UserError 400 for a key that does not parse. */
export function publicKeyFingerprint(publicKeyPem: string): string {
  try {
    const der = createPublicKey(publicKeyPem).export({ type: "spki", format: "der" });
    return createHash("sha256").update(der).digest("hex");
  } catch (err) {
    throw new UserError("Invalid public key: expected a PEM-encoded public key (SPKI)", 400, { cause: err });
  }
}
