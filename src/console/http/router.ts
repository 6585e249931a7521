/**
 * Matches a method and a path against the route table: literal segments and `:param`
 * segments, no wildcards. A path that matches no route is a 404; a path that matches only
 * under other methods is a 405 with the allowed methods.
 */
import type { HttpMethod, Route } from "./route.js";

export type RouteMatch =
  | { readonly kind: "found"; readonly route: Route; readonly params: Record<string, string> }
  | { readonly kind: "not-found" }
  | { readonly kind: "wrong-method"; readonly allowed: readonly HttpMethod[] };

interface CompiledRoute {
  readonly route: Route;
  readonly segments: readonly string[];
}

function split(path: string): string[] {
  return path.split("/").filter((s) => s.length > 0);
}

export class Router {
  readonly #routes: CompiledRoute[];

  constructor(routes: readonly Route[]) {
    this.#routes = routes.map((route) => ({ route, segments: split(route.path) }));
  }

  get routes(): readonly Route[] {
    return this.#routes.map((r) => r.route);
  }

  match(method: string, pathname: string): RouteMatch {
    let segments: string[];
    try {
      segments = split(pathname).map((s) => decodeURIComponent(s));
    } catch {
      return { kind: "not-found" };
    }
    const allowed: HttpMethod[] = [];
    // Literal segments win over params: `/api/machines/:id` must not swallow a literal route.
    let best: { route: Route; params: Record<string, string>; literals: number } | undefined;
    for (const compiled of this.#routes) {
      const params = matchSegments(compiled.segments, segments);
      if (params === undefined) continue;
      if (compiled.route.method !== method) {
        allowed.push(compiled.route.method);
        continue;
      }
      const literals = compiled.segments.filter((s) => !s.startsWith(":")).length;
      if (best === undefined || literals > best.literals) best = { route: compiled.route, params, literals };
    }
    if (best !== undefined) return { kind: "found", route: best.route, params: best.params };
    if (allowed.length > 0) return { kind: "wrong-method", allowed: [...new Set(allowed)] };
    return { kind: "not-found" };
  }
}

function matchSegments(
  pattern: readonly string[],
  actual: readonly string[],
): Record<string, string> | undefined {
  if (pattern.length !== actual.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] ?? "";
    const a = actual[i] ?? "";
    if (p.startsWith(":")) {
      if (a.length === 0) return undefined;
      params[p.slice(1)] = a;
    } else if (p !== a) {
      return undefined;
    }
  }
  return params;
}
