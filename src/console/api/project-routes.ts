/**
 * Projects and their install tokens. A token's secret is returned once, inside the token
 * string, and only its sha256 is stored.
 */
import { UserError } from "../../common/errors.js";
import {
  DEFAULT_PROJECT_SETTINGS,
  type InstallToken,
  type Project,
  type ProjectSettings,
} from "../../common/model.js";
import { defineRoute, type Route } from "../http/route.js";
import { audit, isoNow, newId, resolveProject, type ApiContext } from "./api-context.js";
import { formatInstallToken, hashSecret, newTokenSecret } from "../../common/install-token.js";
import { parseRetentionPolicy } from "../../store/retention/retention-policy.js";
import { CreateProjectBody, CreateTokenBody, PatchProjectBody } from "./schemas.js";

type SettingsPatch = Partial<ProjectSettings>;

/**
 * Settings a body passed the schema with, checked for what the schema cannot express; the
 * retention policy is replaced whole, never merged. Throws UserError (400) naming the field.
 */
function checkSettings(patch: SettingsPatch | undefined): SettingsPatch {
  if (patch?.retention === undefined) return { ...patch };
  return { ...patch, retention: parseRetentionPolicy(patch.retention, "/settings/retention") };
}

export const DEFAULT_TOKEN_TTL_SECONDS = 86_400;

export function projectRoutes(ctx: ApiContext): Route[] {
  return [
    defineRoute({
      method: "POST",
      path: "/api/projects",
      summary: "Create a project (dr or migration)",
      auth: "admin",
      tag: "projects",
      status: 201,
      body: CreateProjectBody,
      handle: async ({ body, actor }) => {
        const settings = checkSettings(body.settings);
        if ((await ctx.state.getProject(body.name)) !== undefined) {
          throw new UserError(`Project ${body.name} already exists: choose another name`, 409);
        }
        const project: Project = {
          id: newId("p"),
          name: body.name,
          type: body.type,
          settings: { ...DEFAULT_PROJECT_SETTINGS, ...settings },
          direction: "FAILOVER",
          createdAt: isoNow(ctx),
        };
        await ctx.state.createProject(project);
        await audit(ctx, {
          actor,
          action: "project.create",
          target: project.id,
          projectId: project.id,
          details: { name: project.name, type: project.type },
        });
        return project;
      },
    }),
    defineRoute({
      method: "GET",
      path: "/api/projects",
      summary: "List projects",
      auth: "admin",
      tag: "projects",
      handle: () => ctx.state.listProjects(),
    }),
    defineRoute({
      method: "GET",
      path: "/api/projects/:project",
      summary: "Get a project by id or name",
      auth: "admin",
      tag: "projects",
      handle: ({ params }) => resolveProject(ctx, params["project"] ?? ""),
    }),
    defineRoute({
      method: "PATCH",
      path: "/api/projects/:project",
      summary: "Change project settings (partial)",
      auth: "admin",
      tag: "projects",
      body: PatchProjectBody,
      handle: async ({ params, body, actor }) => {
        const settings = checkSettings(body.settings);
        const project = await resolveProject(ctx, params["project"] ?? "");
        const updated = await ctx.state.updateProject(project.id, {
          settings: { ...project.settings, ...settings },
        });
        await audit(ctx, {
          actor,
          action: "project.update",
          target: project.id,
          projectId: project.id,
          details: { settings: body.settings },
        });
        return updated;
      },
    }),
    defineRoute({
      method: "POST",
      path: "/api/projects/:project/tokens",
      summary: "Create an install token for agents (returned once)",
      auth: "admin",
      tag: "tokens",
      status: 201,
      body: CreateTokenBody,
      handle: async ({ params, body, actor }) => {
        const project = await resolveProject(ctx, params["project"] ?? "");
        const secret = newTokenSecret();
        const ttl = body.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
        const token: InstallToken = {
          id: newId("t"),
          projectId: project.id,
          expiresAt: new Date(ctx.now() + ttl * 1000).toISOString(),
          revokedAt: null,
          createdAt: isoNow(ctx),
        };
        await ctx.state.createInstallToken(token, hashSecret(secret));
        await audit(ctx, {
          actor,
          action: "token.create",
          target: token.id,
          projectId: project.id,
          details: { expiresAt: token.expiresAt },
        });
        const text = formatInstallToken({
          consoleUrl: ctx.consoleUrl(),
          caFingerprint: ctx.ca.fingerprint(),
          secret,
        });
        return { id: token.id, projectId: project.id, token: text, expiresAt: token.expiresAt };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/api/projects/:project/tokens",
      summary: "List a project's install tokens (without secrets)",
      auth: "admin",
      tag: "tokens",
      handle: async ({ params }) => {
        const project = await resolveProject(ctx, params["project"] ?? "");
        return ctx.state.listInstallTokens(project.id);
      },
    }),
    defineRoute({
      method: "DELETE",
      path: "/api/tokens/:id",
      summary: "Revoke an install token (idempotent)",
      auth: "admin",
      tag: "tokens",
      handle: async ({ params, actor }) => {
        const id = params["id"] ?? "";
        const existing = await ctx.state.getInstallToken(id);
        if (existing === undefined) throw new UserError(`Install token not found: ${id}`, 404);
        const token = await ctx.state.revokeInstallToken(id, isoNow(ctx));
        await audit(ctx, { actor, action: "token.revoke", target: id, projectId: token.projectId });
        return token;
      },
    }),
  ];
}
