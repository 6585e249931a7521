/**
 * Builds the OpenAPI 3.1 document from the route table: the same TypeBox schemas that
 * validate request bodies describe them here, so the document cannot drift from the code.
 */
import type { Route } from "./route.js";

const ERROR_SCHEMA = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: { status: { type: "integer" }, message: { type: "string" } },
      required: ["status", "message"],
    },
  },
  required: ["error"],
};

/** JSON round trip drops TypeBox's symbol-keyed metadata. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

export function buildOpenApi(routes: readonly Route[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
    const parameters = [
      ...[...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({
        name: m[1],
        in: "path",
        required: true,
        schema: { type: "string" },
      })),
      ...(route.query ?? []).map((q) => ({
        name: q.name,
        in: "query",
        required: false,
        description: q.description,
        schema: { type: "string" },
      })),
    ];
    const security =
      route.auth === "admin"
        ? [{ apiKey: [] }]
        : route.auth === "none"
          ? []
          : [{ [route.auth === "source" ? "agentCertificate" : "failbackCertificate"]: [] }];
    const operation: Record<string, unknown> = {
      operationId: `${route.method.toLowerCase()}${route.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase())}`,
      summary: route.summary,
      tags: [route.tag],
      security,
      parameters,
      responses: {
        [String(route.status ?? 200)]: {
          description: "Success",
          content: { [route.contentType ?? "application/json"]: {} },
        },
        default: { description: "Error", content: { "application/json": { schema: ERROR_SCHEMA } } },
      },
    };
    if (route.body !== undefined) {
      operation["requestBody"] = {
        required: true,
        content: { "application/json": { schema: plain(route.body) } },
      };
    }
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "lifeboat console API",
      version,
      description:
        "Control plane of lifeboat: projects, install tokens, machines, blueprints, launches, jobs.",
    },
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "Admin API key from client.json" },
        agentCertificate: { type: "mutualTLS", description: "Client certificate with role source" },
        failbackCertificate: { type: "mutualTLS", description: "Client certificate with role failback" },
      },
    },
    paths,
  };
}
