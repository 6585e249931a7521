/**
 * A file-backed export on a Unix socket in a fresh temporary directory, with the dirty map
 * on, for tests: `close()` stops the server, closes the backend and removes the directory.
 */
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirtyMap } from "../dirty-map.js";
import { FileBackend } from "../file-backend.js";
import { NbdServer, type ExportOptions, type NbdServerOptions } from "../nbd-server.js";
import { TrackedBackend } from "../tracked-backend.js";
import { nbdUnixUri } from "./run-tool.js";

export interface ServedTestFile {
  readonly dir: string;
  readonly file: string;
  readonly socketPath: string;
  readonly uri: string;
  readonly exportName: string;
  readonly server: NbdServer;
  readonly backend: TrackedBackend;
  readonly dirty: DirtyMap;
  /** Log lines the server wrote. */
  readonly logs: string[];
  close(): Promise<void>;
}

export interface ServeTestFileOptions {
  readonly sizeBytes?: number;
  /** Initial content at offset 0 (the rest is a hole). */
  readonly content?: Buffer;
  readonly readOnly?: boolean;
  readonly exportName?: string;
  readonly server?: NbdServerOptions;
  readonly export?: ExportOptions;
}

export async function serveTestFile(options: ServeTestFileOptions = {}): Promise<ServedTestFile> {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-nbd-"));
  const file = join(dir, "disk.img");
  await writeFile(file, options.content ?? Buffer.alloc(0));
  await truncate(file, options.sizeBytes ?? 16 * 1024 * 1024);
  const logs: string[] = [];
  const server = new NbdServer({ log: (m) => logs.push(m), ...options.server });
  const inner = await FileBackend.open(file, { readOnly: options.readOnly ?? false });
  const dirty = new DirtyMap(inner.size);
  const backend = new TrackedBackend(inner, { dirty });
  const exportName = options.exportName ?? "disk";
  server.addExport(exportName, backend, options.export);
  const socketPath = join(dir, "nbd.sock");
  await server.listen({ socketPath });
  return {
    dir,
    file,
    socketPath,
    uri: nbdUnixUri(exportName, socketPath),
    exportName,
    server,
    backend,
    dirty,
    logs,
    async close() {
      await server.close();
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
