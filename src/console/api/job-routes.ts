/** Jobs (with per-machine results, timings and log) and the audit log: read-only. */
import { UserError } from "../../common/errors.js";
import { defineRoute, type Route } from "../http/route.js";
import { resolveProject, type ApiContext } from "./api-context.js";

export function jobRoutes(ctx: ApiContext): Route[] {
  return [
    defineRoute({
      method: "GET",
      path: "/api/jobs",
      summary: "List jobs, newest first",
      auth: "admin",
      tag: "jobs",
      query: [{ name: "project", description: "Project id or name" }],
      handle: async ({ query }) => {
        const filter = query.get("project");
        const project = filter === null ? undefined : await resolveProject(ctx, filter);
        return ctx.state.listJobs(project === undefined ? {} : { projectId: project.id });
      },
    }),
    defineRoute({
      method: "GET",
      path: "/api/jobs/:id",
      summary: "Get a job with its per-machine results and log",
      auth: "admin",
      tag: "jobs",
      handle: async ({ params }) => {
        const job = await ctx.state.getJob(params["id"] ?? "");
        if (job === undefined) throw new UserError(`Job not found: ${params["id"] ?? ""}`, 404);
        return job;
      },
    }),
    defineRoute({
      method: "GET",
      path: "/api/audit",
      summary: "Audit log of operator actions and agent registrations, newest first",
      auth: "admin",
      tag: "audit",
      query: [
        { name: "project", description: "Project id or name" },
        { name: "limit", description: "Maximum entries (default 1000)" },
      ],
      handle: async ({ query }) => {
        const filter = query.get("project");
        const project = filter === null ? undefined : await resolveProject(ctx, filter);
        const limitText = query.get("limit");
        const limit = limitText === null ? 1000 : Number(limitText);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
          throw new UserError(`Invalid limit ${limitText ?? ""}: use an integer from 1 to 100000`, 400);
        }
        return ctx.state.listAudit({ ...(project === undefined ? {} : { projectId: project.id }), limit });
      },
    }),
  ];
}
