/**
 * The agent's and failback client's calls to the console over HTTPS: registration with the
 * install token (the CA is fetched once and pinned by the fingerprint the token carries),
 * then status reports authenticated by the machine's client certificate.
 */
import { request } from "node:https";
import { X509Certificate } from "node:crypto";
import { errorMessage } from "../common/errors.js";
import { TLS_POLICY } from "../wire/tls-policy.js";

export interface ClientTls {
  readonly caPem: string;
  readonly certPem?: string;
  readonly keyPem?: string;
}

export class ConsoleRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "ConsoleRequestError";
  }
}

function call(
  url: string,
  method: string,
  body: unknown,
  tls: ClientTls | { insecure: true },
  timeoutMs = 15_000,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {},
        ...TLS_POLICY,
        ...("insecure" in tls
          ? { rejectUnauthorized: false }
          : { ca: tls.caPem, ...(tls.certPem ? { cert: tls.certPem } : {}), ...(tls.keyPem ? { key: tls.keyPem } : {}) }),
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`Console did not answer within ${timeoutMs} ms: ${url}`)));
    req.on("error", (err) => reject(new Error(`Cannot reach the console at ${u.origin}: ${err.message}`, { cause: err })));
    req.end(payload);
  });
}

/** Calls a JSON route; throws ConsoleRequestError with the console's message on 4xx/5xx. */
export async function consoleJson<T>(consoleUrl: string, method: string, path: string, body: unknown, tls: ClientTls): Promise<T> {
  const { status, text } = await call(consoleUrl + path, method, body, tls);
  if (status >= 400) {
    let message = text;
    try {
      const body = JSON.parse(text) as { error?: { message?: string } | string };
      message = (typeof body.error === "string" ? body.error : body.error?.message) ?? text;
    } catch {
      // plain text error
    }
    throw new ConsoleRequestError(message, status);
  }
  return JSON.parse(text) as T;
}

/**
 * Fetches the console's CA and checks it against the fingerprint from the install token,
 * so the first contact cannot be intercepted.
 */
export async function fetchPinnedCa(consoleUrl: string, fingerprint: string): Promise<string> {
  let text: string;
  try {
    ({ text } = await call(`${consoleUrl}/api/ca`, "GET", undefined, { insecure: true }));
  } catch (err) {
    throw new Error(`Cannot fetch the console CA from ${consoleUrl}: ${errorMessage(err)}`, { cause: err });
  }
  let got: string;
  try {
    got = new X509Certificate(text).fingerprint256.replace(/:/g, "").toLowerCase();
  } catch (err) {
    throw new Error(`Console at ${consoleUrl} did not return a CA certificate`, { cause: err });
  }
  if (got !== fingerprint.toLowerCase())
    throw new Error(
      `Console CA fingerprint ${got} does not match the install token's ${fingerprint}: refusing to register (wrong console, or someone in between)`,
    );
  return text;
}
