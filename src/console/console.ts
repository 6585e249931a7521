/**
 * Starts the console: state store, internal CA, job runner and the HTTPS API in one object
 * with one `close()`. TLS is 1.3 only with TLS_AES_256_GCM_SHA384; client certificates are
 * requested but not required, so agents authenticate by certificate and operators by API
 * key on the same port. On the first start an admin API key is created and returned once
 * (`adminApiKey`); later starts return null.
 */
import { mkdirSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { CertificateAuthority } from "./ca/certificate-authority.js";
import { agentRoutes } from "./api/agent-routes.js";
import type { ApiContext } from "./api/api-context.js";
import { createApiKey, verifyApiKey } from "./api/api-keys.js";
import { jobRoutes } from "./api/job-routes.js";
import { launchRoutes } from "./api/launch-routes.js";
import { machineRoutes } from "./api/machine-routes.js";
import { metricsRoutes } from "./api/metrics-routes.js";
import { projectRoutes } from "./api/project-routes.js";
import { CONSOLE_VERSION, systemRoutes } from "./api/system-routes.js";
import { createApiListener } from "./http/api-server.js";
import { buildOpenApi } from "./http/openapi.js";
import type { Route } from "./http/route.js";
import type { JobHandlers } from "./jobs/job-handlers.js";
import { JobRunner } from "./jobs/job-runner.js";
import type { ReplicatorControl } from "./replicator-control.js";
import { SqliteStateStore } from "./state/sqlite/sqlite-state-store.js";
import type { StateStore } from "./state/state-store.js";
import { RetentionSweeper } from "./retention-sweeper.js";
import { StateConsoleLink } from "./state-console-link.js";

export const TLS_CIPHER = "TLS_AES_256_GCM_SHA384";

export interface ConsoleOptions {
  /** Holds console.db and ca/. */
  readonly dataDir: string;
  /** Listen address (default 127.0.0.1). */
  readonly host?: string;
  /** Default 8443; 0 picks a free port. */
  readonly port?: number;
  /** Host name or address agents use to reach the console (default: host, or 127.0.0.1 for a wildcard). */
  readonly advertisedHost?: string;
  readonly replicator: ReplicatorControl;
  readonly jobHandlers: JobHandlers;
  /** A state store to use instead of `<dataDir>/console.db`; the caller closes it. */
  readonly state?: StateStore;
  /** Clock, for tests of time-derived states. */
  readonly now?: () => number;
  /** Where errors go (default console.error). Never receives secrets. */
  readonly logError?: (message: string, err: unknown) => void;
  /** How often each project's PIT retention policy is applied (default one minute). */
  readonly retentionIntervalMs?: number;
}

export interface RunningConsole {
  /** e.g. https://127.0.0.1:8443 */
  readonly url: string;
  readonly ca: CertificateAuthority;
  readonly state: StateStore;
  /** Hand this to the replicator. */
  readonly link: StateConsoleLink;
  /** Applies PIT retention on a timer; `sweep()` runs a pass now. */
  readonly retention: RetentionSweeper;
  readonly jobs: JobRunner;
  /** The admin API key, on the first start only; null afterwards. */
  readonly adminApiKey: string | null;
  readonly routes: readonly Route[];
  close(): Promise<void>;
}

function defaultLogError(message: string, err: unknown): void {
  console.error(`lifeboat console: ${message}:`, err);
}

export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const now = options.now ?? Date.now;
  const logError = options.logError ?? defaultLogError;
  const host = options.host ?? "127.0.0.1";
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const ownsState = options.state === undefined;
  const state = options.state ?? new SqliteStateStore(join(options.dataDir, "console.db"));
  let server: Server | undefined;
  let jobs: JobRunner | undefined;
  try {
    const ca = await CertificateAuthority.open(options.dataDir);
    const adminApiKey =
      (await state.listApiKeys()).length === 0 ? await createApiKey(state, "admin", new Date(now())) : null;
    const advertised =
      options.advertisedHost ?? (host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host);
    const { certPem, keyPem } = await ca.issueServerCert(["localhost", "127.0.0.1", "::1", host, advertised]);

    jobs = new JobRunner({
      state,
      replicator: options.replicator,
      handlers: options.jobHandlers,
      now,
      logError,
    });
    const runner = jobs;
    let url = "";
    const ctx: ApiContext = {
      state,
      ca,
      replicator: options.replicator,
      consoleUrl: () => url,
      now,
      wakeJobs: () => runner.wake(),
    };
    const routes: Route[] = [];
    routes.push(
      ...systemRoutes(ctx, () => buildOpenApi(routes, CONSOLE_VERSION)),
      ...projectRoutes(ctx),
      ...machineRoutes(ctx),
      ...launchRoutes(ctx),
      ...jobRoutes(ctx),
      ...agentRoutes(ctx),
      ...metricsRoutes(ctx),
    );
    const listener = createApiListener({ routes, verifyApiKey: (key) => verifyApiKey(state, key), logError });
    const srv = createServer(
      {
        key: keyPem,
        cert: certPem,
        ca: [ca.certPem],
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: "TLSv1.3",
        maxVersion: "TLSv1.3",
        ciphers: TLS_CIPHER,
      },
      listener,
    );
    server = srv;
    srv.headersTimeout = 30_000;
    srv.requestTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(options.port ?? 8443, host, () => {
        srv.off("error", reject);
        resolve();
      });
    });
    const port = (srv.address() as AddressInfo).port;
    url = `https://${advertised.includes(":") ? `[${advertised}]` : advertised}:${port}`;
    await runner.start();
    const link = new StateConsoleLink(state, now, logError);
    const retention = new RetentionSweeper({
      state,
      replicator: options.replicator,
      now,
      logError,
      ...(options.retentionIntervalMs === undefined ? {} : { intervalMs: options.retentionIntervalMs }),
    });
    retention.start();

    let closed: Promise<void> | undefined;
    return {
      url,
      ca,
      state,
      link,
      jobs: runner,
      retention,
      adminApiKey,
      routes,
      close: () => {
        closed ??= (async () => {
          await new Promise<void>((resolve) => {
            srv.close(() => resolve());
            srv.closeAllConnections();
          });
          await retention.close();
          await runner.close();
          await link.idle();
          if (ownsState) await state.close();
        })();
        return closed;
      },
    };
  } catch (err) {
    server?.close();
    await jobs?.close();
    if (ownsState) await state.close();
    throw err;
  }
}
