/** Unauthenticated routes: health, the CA certificate (for pinning by fingerprint) and the OpenAPI document. */
import { defineRoute, type Route } from "../http/route.js";
import type { ApiContext } from "./api-context.js";

export const CONSOLE_VERSION = "0.1.0";

export function systemRoutes(ctx: ApiContext, openApi: () => Record<string, unknown>): Route[] {
  return [
    defineRoute({
      method: "GET",
      path: "/api/health",
      summary: "Liveness",
      auth: "none",
      tag: "system",
      handle: () =>
        Promise.resolve({ status: "ok", version: CONSOLE_VERSION, time: new Date(ctx.now()).toISOString() }),
    }),
    defineRoute({
      method: "GET",
      path: "/api/ca",
      summary: "The console CA certificate (PEM); check its SHA-256 against the install token",
      auth: "none",
      tag: "system",
      contentType: "application/x-pem-file",
      handle: () => Promise.resolve(ctx.ca.certPem),
    }),
    defineRoute({
      method: "GET",
      path: "/api/openapi.json",
      summary: "This document",
      auth: "none",
      tag: "system",
      handle: () => Promise.resolve(openApi()),
    }),
  ];
}
