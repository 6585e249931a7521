/**
 * Where the intercept tracker serves its disks, and the NBD URIs (the NBD project's URI
 * scheme, as qemu, libnbd, nbdfuse and nbdcopy take them) that name each disk's export
 * there: `nbd+unix:///NAME?socket=PATH` for a Unix socket, `nbd://HOST:PORT/NAME` for TCP.
 */
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { UserError } from "../../../common/errors.js";

/** One Unix socket in a directory (default), or a TCP address. */
export type NbdListen = { readonly socketPath: string } | { readonly host: string; readonly port: number };

/** The socket's name inside `--nbd-dir`. */
export const NBD_SOCKET_NAME = "nbd.sock";

/** A Unix socket path must fit in sockaddr_un (108 bytes with its terminating zero). */
const MAX_SOCKET_PATH = 107;

export function socketIn(dir: string): NbdListen {
  const socketPath = join(resolve(dir), NBD_SOCKET_NAME);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH - 12)
    throw new UserError(
      `NBD socket path ${socketPath} is too long for a Unix socket: give a shorter --nbd-dir`,
    );
  return { socketPath };
}

/** Parses `--nbd-listen HOST:PORT` (`[::1]:10809` for IPv6; port 0 picks a free one). */
export function parseNbdListen(text: string): NbdListen {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || !Number.isInteger(port) || port > 65535)
    throw new UserError(`--nbd-listen must be HOST:PORT (e.g. 127.0.0.1:10809), got ${text}`);
  return { host, port };
}

/** The URI of export `name`; `port` is the port actually bound (it differs when 0 was asked). */
export function exportUri(listen: NbdListen, name: string, port?: number): string {
  const path = encodeURIComponent(name);
  if ("socketPath" in listen) return `nbd+unix:///${path}?socket=${listen.socketPath}`;
  // A wildcard address is no address a client can dial: name this host instead.
  const host = listen.host === "0.0.0.0" || listen.host === "::" ? hostname() : listen.host;
  const shown = host.includes(":") ? `[${host}]` : host;
  return `nbd://${shown}:${port ?? listen.port}/${path}`;
}
