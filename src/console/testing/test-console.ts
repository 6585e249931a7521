/**
 * Test helper: a console on an ephemeral port in a temp directory with a FakeReplicator,
 * an HTTPS client that pins its CA, and an agent that registers with a fresh key.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startConsole, type RunningConsole } from "../console.js";
import type { JobHandlers } from "../jobs/job-handlers.js";
import { FakeReplicator } from "./fake-replicator.js";

export interface TestResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  // Tests read fields freely; a typed view per route would add nothing here.
  readonly body: Record<string, unknown> & { error?: { status: number; message: string } };
  readonly text: string;
}

export interface RequestOptions {
  /** Admin key; default the console's admin key; null sends none. */
  readonly apiKey?: string | null;
  readonly clientCert?: { readonly certPem: string; readonly keyPem: string };
  /** Sent as is instead of JSON.stringify(body). */
  readonly raw?: string | Buffer;
}

export interface TestConsole {
  readonly console: RunningConsole;
  readonly replicator: FakeReplicator;
  readonly dataDir: string;
  readonly clock: { now: number };
  request(method: string, path: string, body?: unknown, options?: RequestOptions): Promise<TestResponse>;
  close(): Promise<void>;
}

export async function startTestConsole(jobHandlers: JobHandlers = {}): Promise<TestConsole> {
  const dataDir = mkdtempSync(join(tmpdir(), "lifeboat-console-"));
  const replicator = new FakeReplicator();
  const clock = { now: Date.now() };
  const errors: unknown[] = [];
  const running = await startConsole({
    dataDir,
    port: 0,
    replicator,
    jobHandlers,
    now: () => clock.now,
    logError: (_m, err) => errors.push(err),
  });
  const adminKey = running.adminApiKey ?? "";
  const url = new URL(running.url);

  function send(
    method: string,
    path: string,
    body?: unknown,
    options: RequestOptions = {},
  ): Promise<TestResponse> {
    const payload = options.raw ?? (body === undefined ? undefined : JSON.stringify(body));
    const headers: Record<string, string | number> = {};
    const key = options.apiKey === undefined ? adminKey : options.apiKey;
    if (key !== null) headers["authorization"] = `Bearer ${key}`;
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(payload);
    }
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          method,
          path,
          headers,
          ca: running.ca.certPem,
          minVersion: "TLSv1.3",
          ...(options.clientCert === undefined
            ? {}
            : { cert: options.clientCert.certPem, key: options.clientCert.keyPem }),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: TestResponse["body"] = {};
            try {
              parsed = JSON.parse(text) as TestResponse["body"];
            } catch {
              // Not JSON (the CA PEM): tests read `text`.
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  return {
    console: running,
    replicator,
    dataDir,
    clock,
    request: send,
    close: async () => {
      await running.close();
      rmSync(dataDir, { recursive: true, force: true });
      if (errors.length > 0) throw new Error(`The console logged errors: ${errors.map(String).join("; ")}`);
    },
  };
}

export interface TestAgent {
  readonly machineId: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly publicKeyPem: string;
  readonly timelineId: string;
}

export function newAgentKey(): { publicKeyPem: string; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

/** Creates a project (if needed) and a token, and registers an agent named `name`. */
export async function registerAgent(
  tc: TestConsole,
  project: string,
  name: string,
  disks: readonly { path: string; sizeBytes: number }[] = [{ path: "/dev/sda", sizeBytes: 1 << 20 }],
): Promise<TestAgent> {
  const token = await tc.request("POST", `/api/projects/${project}/tokens`, {});
  if (token.status !== 201) throw new Error(`token: ${token.text}`);
  const key = newAgentKey();
  const res = await tc.request(
    "POST",
    "/api/agent/register",
    {
      token: token.body["token"],
      name,
      hostname: `${name}.local`,
      cpus: 2,
      memoryMiB: 2048,
      disks,
      publicKeyPem: key.publicKeyPem,
    },
    { apiKey: null },
  );
  if (res.status !== 201) throw new Error(`register: ${res.text}`);
  return {
    machineId: String(res.body["machineId"]),
    certPem: String(res.body["certPem"]),
    keyPem: key.keyPem,
    publicKeyPem: key.publicKeyPem,
    timelineId: String(res.body["timelineId"]),
  };
}

/** Reports a status as the agent (default CONTINUOUS, lag 2 s). */
export async function reportStatus(
  tc: TestConsole,
  agent: TestAgent,
  status: Record<string, unknown> = {},
): Promise<TestResponse> {
  return tc.request(
    "POST",
    "/api/agent/status",
    {
      state: "CONTINUOUS",
      progressPercent: 100,
      lagSeconds: 2,
      etaSeconds: null,
      disks: [],
      bytesSent: 10,
      ...status,
    },
    { apiKey: null, clientCert: agent },
  );
}
