/**
 * One REST route: method, path with `:params`, who may call it, the TypeBox schema of its
 * body, and its handler. The route table is the single source for dispatch, validation
 * and the OpenAPI document, so the three cannot drift apart.
 */
import type { IncomingMessage } from "node:http";
import type { Static, TSchema } from "@sinclair/typebox";
import type { ClientIdentity } from "../ca/parse-client-identity.js";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * none: anyone (health, CA, OpenAPI, and the routes an install token authenticates);
 * admin: `Authorization: Bearer <api key>`; source / failback: a client certificate the
 * console's CA issued for that role.
 */
export type RouteAuth = "none" | "admin" | "source" | "failback";

export interface RequestContext<B = unknown> {
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly body: B;
  /** "admin", "agent:<machineId>", "failback:<machineId>" or "anonymous": for the audit log. */
  readonly actor: string;
  /** The verified client certificate identity on source / failback routes. */
  readonly identity: ClientIdentity | null;
  readonly req: IncomingMessage;
}

/** What a handler returns: a body with the route's success status, or an explicit status. */
export type RouteResult = unknown;

export interface Route {
  readonly method: HttpMethod;
  readonly path: string;
  readonly summary: string;
  readonly auth: RouteAuth;
  readonly tag: string;
  /** Success status (default 200). */
  readonly status?: number;
  readonly body?: TSchema;
  /** Query parameters, for the OpenAPI document. */
  readonly query?: readonly { readonly name: string; readonly description: string }[];
  /** Raw responses (not JSON), e.g. the CA PEM. */
  readonly contentType?: string;
  handle(ctx: RequestContext): Promise<RouteResult>;
}

export interface RouteDefinition<S extends TSchema | undefined> extends Omit<Route, "handle" | "body"> {
  readonly body?: S;
  handle(ctx: RequestContext<S extends TSchema ? Static<S> : undefined>): Promise<RouteResult>;
}

/** Types a route's handler by its body schema; the server validates before calling it. */
export function defineRoute<S extends TSchema | undefined = undefined>(
  definition: RouteDefinition<S>,
): Route {
  return definition as unknown as Route;
}
