/**
 * Machines as operators see them (derived states applied), their PITs as the replicator
 * lists them, and their launch blueprints (partial merge, validated as a whole).
 */
import { isIPv4 } from "node:net";
import { UserError } from "../../common/errors.js";
import { DEFAULT_BLUEPRINT, type Blueprint } from "../../common/model.js";
import { defineRoute, type Route } from "../http/route.js";
import { audit, resolveMachine, resolveProject, type ApiContext } from "./api-context.js";
import { machineView } from "./machine-view.js";
import { BlueprintPatch, SnapshotBody } from "./schemas.js";
import type { Pit } from "../../store/staging-store.js";

/** A PIT as the API shows it: named snapshots carry their name and `keep: true`. */
function pitView(p: Pit): { seq: number; time: string; name: string | null; keep: boolean } {
  return { seq: p.seq, time: new Date(p.time).toISOString(), name: p.label ?? null, keep: p.keep === true };
}

/** Checks the rules a schema cannot express; throws UserError 400. */
export function checkBlueprint(blueprint: Blueprint): void {
  if (blueprint.ipPolicy === "fixed") {
    if (blueprint.fixedIp === null) {
      throw new UserError("Invalid blueprint: /fixedIp is required when ipPolicy is fixed", 400);
    }
    if (!isIPv4(blueprint.fixedIp)) {
      throw new UserError(
        `Invalid blueprint: /fixedIp must be an IPv4 address, got ${blueprint.fixedIp}`,
        400,
      );
    }
  } else if (blueprint.fixedIp !== null) {
    throw new UserError(
      `Invalid blueprint: /fixedIp is only allowed when ipPolicy is fixed (ipPolicy is ${blueprint.ipPolicy})`,
      400,
    );
  }
  if (blueprint.mac !== null && (Number.parseInt(blueprint.mac.slice(0, 2), 16) & 1) === 1) {
    throw new UserError(
      `Invalid blueprint: /mac must be a unicast address (even first octet), got ${blueprint.mac}`,
      400,
    );
  }
}

export function machineRoutes(ctx: ApiContext): Route[] {
  return [
    defineRoute({
      method: "GET",
      path: "/api/machines",
      summary: "List machines with replication state and lifecycle",
      auth: "admin",
      tag: "machines",
      query: [{ name: "project", description: "Project id or name" }],
      handle: async ({ query }) => {
        const filter = query.get("project");
        const project = filter === null ? undefined : await resolveProject(ctx, filter);
        const machines = await ctx.state.listMachines(project?.id);
        const projects = new Map((await ctx.state.listProjects()).map((p) => [p.id, p]));
        return machines.map((m) => machineView(m, projects.get(m.projectId), ctx.now()));
      },
    }),
    defineRoute({
      method: "GET",
      path: "/api/machines/:id",
      summary: "Get a machine by id (or unique name)",
      auth: "admin",
      tag: "machines",
      handle: async ({ params }) => {
        const machine = await resolveMachine(ctx, params["id"] ?? "");
        return machineView(machine, await ctx.state.getProject(machine.projectId), ctx.now());
      },
    }),
    defineRoute({
      method: "GET",
      path: "/api/machines/:id/pits",
      summary: "Points in time of the machine's current timeline, oldest first",
      auth: "admin",
      tag: "machines",
      handle: async ({ params }) => {
        const machine = await resolveMachine(ctx, params["id"] ?? "");
        const pits = await ctx.replicator.pits(machine.timelineId);
        return pits.map(pitView);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/api/machines/:id/snapshots",
      summary: "Name a PIT (default: the newest) as a snapshot kept until deleted",
      auth: "admin",
      tag: "machines",
      body: SnapshotBody,
      handle: async ({ params, body, actor }) => {
        const machine = await resolveMachine(ctx, params["id"] ?? "");
        const pit = await ctx.replicator.nameSnapshot(machine.timelineId, body.name, body.seq);
        await audit(ctx, {
          actor,
          action: "snapshot.create",
          target: machine.id,
          projectId: machine.projectId,
          details: { name: body.name, seq: pit.seq },
        });
        return pitView(pit);
      },
    }),
    defineRoute({
      method: "DELETE",
      path: "/api/machines/:id/snapshots/:seq",
      summary: "Delete a named snapshot: its PIT becomes ordinary and retention may drop it",
      auth: "admin",
      tag: "machines",
      handle: async ({ params, actor }) => {
        const machine = await resolveMachine(ctx, params["id"] ?? "");
        const text = params["seq"] ?? "";
        const seq = Number(text);
        if (!/^\d{1,15}$/.test(text) || !Number.isSafeInteger(seq)) {
          throw new UserError(`Invalid snapshot seq ${JSON.stringify(text)}: expected a PIT's seq number`);
        }
        const pit = await ctx.replicator.deleteSnapshot(machine.timelineId, seq);
        await audit(ctx, {
          actor,
          action: "snapshot.delete",
          target: machine.id,
          projectId: machine.projectId,
          details: { seq },
        });
        return pitView(pit);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/api/machines/:id/blueprint",
      summary: "Get the launch blueprint",
      auth: "admin",
      tag: "machines",
      handle: async ({ params }) => {
        const machine = await resolveMachine(ctx, params["id"] ?? "");
        return (await ctx.state.getBlueprint(machine.id)) ?? DEFAULT_BLUEPRINT;
      },
    }),
    defineRoute({
      method: "PUT",
      path: "/api/machines/:id/blueprint",
      summary: "Change the launch blueprint (fields given are merged)",
      auth: "admin",
      tag: "machines",
      body: BlueprintPatch,
      handle: async ({ params, body, actor }) => {
        const machine = await resolveMachine(ctx, params["id"] ?? "");
        const current = (await ctx.state.getBlueprint(machine.id)) ?? DEFAULT_BLUEPRINT;
        const next: Blueprint = { ...current, ...body };
        // Leaving a fixed address drops it, so `--set ipPolicy=copy-source` just works.
        const merged: Blueprint =
          next.ipPolicy !== "fixed" && body.fixedIp === undefined ? { ...next, fixedIp: null } : next;
        checkBlueprint(merged);
        await ctx.state.putBlueprint(machine.id, merged);
        await audit(ctx, {
          actor,
          action: "blueprint.update",
          target: machine.id,
          projectId: machine.projectId,
          details: { changes: body },
        });
        return merged;
      },
    }),
  ];
}
