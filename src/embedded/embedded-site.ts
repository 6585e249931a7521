/**
 * The embedded default (`lifeboat up`): a console and a replicator in one process, all
 * state under one data directory: `console/` (SQLite state, CA), `replicator/`
 * (assignments, capture state), `store/` (the staging store) and `keys/` (the master key
 * and each project's wrapped data key, which encrypt the store). Writes `client.json`
 * (console URL, CA, admin API key) for the CLI the first time; later starts keep it.
 */
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { loadClientConfig, writeClientConfig, type ClientConfig } from "../cli/client/client-config.js";
import { logger, type Logger } from "../common/log.js";
import { startConsole, type RunningConsole } from "../console/console.js";
import { jobHandlers } from "../console/jobs/handlers/index.js";
import { Replicator } from "../replicator/replicator.js";
import { KeyRing } from "../store/codec/key-ring.js";
import { LocalMasterKeyWrapper } from "../store/codec/local-master-key-wrapper.js";
import { LayeredStore } from "../store/layered/layered-store.js";

export interface EmbeddedOptions {
  readonly dataDir: string;
  readonly host?: string;
  readonly apiPort?: number;
  readonly replicationPort?: number;
  readonly log?: Logger;
}

export interface EmbeddedSite {
  readonly console: RunningConsole;
  readonly replicator: Replicator;
  readonly config: ClientConfig;
  readonly configPath: string;
  close(): Promise<void>;
}

/**
 * The site's staging store, encrypted at rest: one data key per project, wrapped by the
 * site's master key under `<dataDir>/keys`. Also for tools and tests that inspect a
 * stopped site's store.
 */
export async function openSiteStore(dataDir: string): Promise<LayeredStore> {
  const masterKey = await LocalMasterKeyWrapper.open(LocalMasterKeyWrapper.defaultPath(dataDir));
  const keyRing = await KeyRing.open(join(dataDir, "keys"), masterKey);
  return await LayeredStore.open(join(dataDir, "store"), { keyRing });
}

export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedSite> {
  const log = opts.log ?? logger("lifeboat");
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const store = await openSiteStore(opts.dataDir);
  const replicator = await Replicator.open({
    id: "replicator-1",
    dataDir: join(opts.dataDir, "replicator"),
    store,
    host: opts.host ?? "127.0.0.1",
    port: opts.replicationPort ?? 1500,
    log,
  });
  const running = await startConsole({
    dataDir: join(opts.dataDir, "console"),
    host: opts.host ?? "127.0.0.1",
    port: opts.apiPort ?? 8443,
    replicator,
    jobHandlers: jobHandlers({ launchDir: resolve(opts.dataDir, "launched") }),
    logError: (message, err) => log(`${message}: ${err instanceof Error ? err.message : String(err)}`),
  });
  replicator.link = running.link;
  const names = ["localhost", "127.0.0.1", opts.host ?? "127.0.0.1"];
  const replicatorCert = await running.ca.issueServerCert(names);
  await replicator.listen({ ...replicatorCert, caPem: running.ca.certPem });
  const configPath = join(opts.dataDir, "client.json");
  // The admin key is only known on the first start; later starts keep it and update the URL.
  const config: ClientConfig = running.adminApiKey
    ? { consoleUrl: running.url, caPem: running.ca.certPem, apiKey: running.adminApiKey }
    : { ...loadClientConfig(configPath), consoleUrl: running.url };
  writeClientConfig(configPath, config);
  log(
    `Console ${running.url}, replicator ${replicator.endpoint.host}:${replicator.endpoint.port}, data ${opts.dataDir}`,
  );
  return {
    console: running,
    replicator,
    config,
    configPath,
    async close() {
      await replicator.close();
      await running.close();
      await store.close();
    },
  };
}
