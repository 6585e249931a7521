import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate, createHash, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority, publicKeyFingerprint } from "./certificate-authority.js";
import { parseClientIdentity } from "./parse-client-identity.js";

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "lifeboat-ca-"));
}

test("CertificateAuthority.open() creates a CA once, keeps the key at 0600, and reloads it", async () => {
  const dir = tempDir();
  try {
    const ca = await CertificateAuthority.open(dir);
    const again = await CertificateAuthority.open(dir);
    assert.equal(again.fingerprint(), ca.fingerprint());
    assert.equal(statSync(join(dir, "ca", "ca.key")).mode & 0o777, 0o600);
    const cert = new X509Certificate(ca.certPem);
    assert.equal(ca.fingerprint(), createHash("sha256").update(cert.raw).digest("hex"));
    assert.equal(cert.ca, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("issueServerCert() names DNS and IP SANs and chains to the CA", async () => {
  const dir = tempDir();
  try {
    const ca = await CertificateAuthority.open(dir);
    const { certPem, keyPem } = await ca.issueServerCert(["localhost", "127.0.0.1"]);
    const cert = new X509Certificate(certPem);
    assert.ok(cert.checkIssued(new X509Certificate(ca.certPem)));
    assert.ok(cert.verify(new X509Certificate(ca.certPem).publicKey));
    assert.match(cert.subjectAltName ?? "", /DNS:localhost/);
    assert.match(cert.subjectAltName ?? "", /IP Address:127.0.0.1/);
    assert.ok(cert.checkHost("localhost"));
    assert.match(keyPem, /BEGIN PRIVATE KEY/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("issueClientCert() binds a machine id and role that parseClientIdentity() reads", async () => {
  const dir = tempDir();
  try {
    const ca = await CertificateAuthority.open(dir);
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    const certPem = await ca.issueClientCert("m-0123456789ab", "source", pem);
    const cert = new X509Certificate(certPem);
    assert.ok(cert.verify(new X509Certificate(ca.certPem).publicKey));
    assert.equal(cert.publicKey.export({ type: "spki", format: "pem" }).toString(), pem);
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    assert.ok(days > 364 && days < 367, `validity ${days} days`);
    assert.deepEqual(parseClientIdentity(certPem), { machineId: "m-0123456789ab", role: "source" });
    const failback = await ca.issueClientCert("m-0123456789ab", "failback", pem);
    assert.deepEqual(parseClientIdentity(failback), { machineId: "m-0123456789ab", role: "failback" });
    assert.equal(publicKeyFingerprint(pem).length, 64);
    await assert.rejects(ca.issueClientCert("m-1", "source", "not a key"), /Invalid public key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("parseClientIdentity() returns null for server certs, garbage and empty peers", async () => {
  const dir = tempDir();
  try {
    const ca = await CertificateAuthority.open(dir);
    const { certPem } = await ca.issueServerCert(["localhost"]);
    assert.equal(parseClientIdentity(certPem), null);
    assert.equal(parseClientIdentity("garbage"), null);
    assert.equal(parseClientIdentity(null), null);
    assert.equal(parseClientIdentity({} as never), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
