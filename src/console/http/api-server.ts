/**
 * The request pipeline in front of the route table: match, authenticate, read the JSON
 * body under a size limit, validate it against the route's schema, call the handler and
 * write JSON. Errors take one shape, `{ "error": { "status", "message" } }`: a UserError
 * keeps its status; anything else is a 500 that is logged here (bad input must never
 * reach that branch). Secrets (API keys, tokens) are never logged.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { UserError, errorMessage } from "../../common/errors.js";
import { parseClientIdentity, type ClientIdentity } from "../ca/parse-client-identity.js";
import type { RequestContext, Route } from "./route.js";
import { Router } from "./router.js";
import { compileBodyChecker, type BodyChecker } from "./validate-body.js";

export const MAX_BODY_BYTES = 1024 * 1024;
/** Past this a client is cut off rather than drained: nobody honest sends it. */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;

export interface ApiServerOptions {
  readonly routes: readonly Route[];
  /** Resolves true when the bearer key is a valid admin key (constant-time comparison). */
  readonly verifyApiKey: (key: string) => Promise<boolean>;
  readonly logError: (message: string, err: unknown) => void;
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(text);
}

export function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  headers?: Record<string, string>,
) {
  sendJson(res, status, { error: { status, message } }, headers);
}

/** Reads the body; resolves undefined for an empty body, throws UserError 413/400. */
async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      tooLarge = true;
      if (size > DRAIN_LIMIT_BYTES) {
        req.destroy();
        break;
      }
      continue; // drain so the client can read our 413
    }
    chunks.push(chunk);
  }
  if (tooLarge) {
    throw new UserError(`Request body too large: the limit is ${MAX_BODY_BYTES} bytes`, 413);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UserError(`Invalid request body: not valid JSON (${errorMessage(err)})`, 400);
  }
}

function peerIdentity(req: IncomingMessage): ClientIdentity | null {
  const socket = req.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== "function" || !socket.authorized) return null;
  return parseClientIdentity(socket.getPeerCertificate());
}

export function createApiListener(options: ApiServerOptions): RequestListener {
  const router = new Router(options.routes);
  const checkers = new Map<Route, BodyChecker>();
  for (const route of options.routes) {
    if (route.body !== undefined) checkers.set(route, compileBodyChecker(route.body));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "https://console.invalid");
    } catch {
      req.resume();
      sendError(res, 400, `Invalid request target: ${JSON.stringify((req.url ?? "").slice(0, 200))}`);
      return;
    }
    const match = router.match(req.method ?? "GET", url.pathname);
    if (match.kind === "not-found") {
      req.resume();
      sendError(res, 404, `No such route: ${req.method ?? "GET"} ${url.pathname}`);
      return;
    }
    if (match.kind === "wrong-method") {
      req.resume();
      sendError(
        res,
        405,
        `Method ${req.method ?? ""} not allowed on ${url.pathname}: use ${match.allowed.join(", ")}`,
        {
          allow: match.allowed.join(", "),
        },
      );
      return;
    }
    const { route, params } = match;
    let actor = "anonymous";
    let identity: ClientIdentity | null = null;
    if (route.auth === "admin") {
      const header = req.headers.authorization ?? "";
      const key = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
      if (key === undefined) {
        req.resume();
        sendError(res, 401, "Missing API key: send `Authorization: Bearer <api key>` (see client.json)", {
          "www-authenticate": "Bearer",
        });
        return;
      }
      if (!(await options.verifyApiKey(key))) {
        req.resume();
        sendError(res, 401, "Invalid API key: check the apiKey in your client config", {
          "www-authenticate": "Bearer",
        });
        return;
      }
      actor = "admin";
    } else if (route.auth === "source" || route.auth === "failback") {
      identity = peerIdentity(req);
      if (identity === null || identity.role !== route.auth) {
        req.resume();
        sendError(
          res,
          401,
          `This route needs a ${route.auth === "source" ? "agent" : "failback client"} certificate issued by this console`,
        );
        return;
      }
      actor = `${route.auth === "source" ? "agent" : "failback"}:${identity.machineId}`;
    }

    let body: unknown = undefined;
    if (route.body !== undefined) {
      // An empty body is an empty object: required fields are then named one by one.
      const parsed = await readJsonBody(req);
      body = parsed === undefined ? {} : parsed;
      const problem = checkers.get(route)?.(body) ?? null;
      if (problem !== null) throw new UserError(`Invalid request body: ${problem}`, 400);
    } else {
      req.resume();
    }

    const ctx: RequestContext = { params, query: url.searchParams, body, actor, identity, req };
    const result = await route.handle(ctx);
    if (route.contentType !== undefined) {
      const text = String(result);
      res.writeHead(route.status ?? 200, {
        "content-type": route.contentType,
        "content-length": Buffer.byteLength(text),
      });
      res.end(text);
      return;
    }
    sendJson(res, route.status ?? 200, result ?? null);
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof UserError) {
        sendError(res, err.status, err.message, err.status === 413 ? { connection: "close" } : {});
      } else {
        options.logError(`${req.method ?? "?"} ${(req.url ?? "").split("?")[0] ?? ""} failed`, err);
        sendError(res, 500, "Internal error: the console logged the details");
      }
    });
  };
}
