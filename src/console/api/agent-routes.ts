/**
 * The routes agents and failback clients call. Registration is authenticated by the install
 * token (checked before anything is created); status reports by the client certificate
 * issued at registration. The status answer carries the machine's current timeline and
 * direction, which is how an agent learns that return-to-normal moved it to a new timeline.
 */
import { UserError } from "../../common/errors.js";
import type { DiskInfo, InstallToken, Project } from "../../common/model.js";
import { BLOCK_SIZE } from "../../store/staging-store.js";
import { publicKeyFingerprint } from "../ca/certificate-authority.js";
import { defineRoute, type Route } from "../http/route.js";
import type { MachineRecord } from "../state/state-store.js";
import { audit, isoNow, newId, type ApiContext } from "./api-context.js";
import { hashSecret, parseInstallToken } from "../../common/install-token.js";
import { AgentRegisterBody, AgentStatusBody, FailbackRegisterBody, FailbackStatusBody } from "./schemas.js";

const NEW_TOKEN_HINT = "create a new one with `lifeboat token create`";

/** The token's project, or UserError 401 saying why the token is refused. */
async function authenticateToken(
  ctx: ApiContext,
  text: string,
): Promise<{ token: InstallToken; project: Project }> {
  let secret: string;
  try {
    secret = parseInstallToken(text).secret;
  } catch (err) {
    throw new UserError(`Install token refused: ${(err as Error).message}`, 401, { cause: err });
  }
  const token = await ctx.state.findInstallTokenByHash(hashSecret(secret));
  if (token === undefined)
    throw new UserError(`Install token refused: this console does not know it; ${NEW_TOKEN_HINT}`, 401);
  if (token.revokedAt !== null) {
    throw new UserError(
      `Install token ${token.id} was revoked at ${token.revokedAt}: ${NEW_TOKEN_HINT}`,
      401,
    );
  }
  if (Date.parse(token.expiresAt) <= ctx.now()) {
    throw new UserError(`Install token expired at ${token.expiresAt}: ${NEW_TOKEN_HINT}`, 401);
  }
  const project = await ctx.state.getProject(token.projectId);
  if (project === undefined) throw new UserError(`Install token refused: its project no longer exists`, 401);
  return { token, project };
}

function checkDiskSizes(disks: readonly { path: string; sizeBytes: number }[]): void {
  for (const disk of disks) {
    if (disk.sizeBytes <= 0 || disk.sizeBytes % BLOCK_SIZE !== 0) {
      throw new UserError(
        `Invalid disk ${disk.path}: size ${disk.sizeBytes} is not a positive multiple of ${BLOCK_SIZE} bytes`,
        400,
      );
    }
  }
}

async function machineFromCert(ctx: ApiContext, machineId: string): Promise<MachineRecord> {
  const machine = await ctx.state.getMachine(machineId);
  if (machine === undefined) {
    throw new UserError(
      `Machine ${machineId} is not registered with this console: register the agent again`,
      401,
    );
  }
  return machine;
}

export function agentRoutes(ctx: ApiContext): Route[] {
  const replicatorInfo = () => ({
    id: ctx.replicator.endpoint.id,
    host: ctx.replicator.endpoint.host,
    port: ctx.replicator.endpoint.port,
  });
  return [
    defineRoute({
      method: "POST",
      path: "/api/agent/register",
      summary: "Register an agent with an install token: returns its machine id and certificate",
      auth: "none",
      tag: "agent",
      status: 201,
      body: AgentRegisterBody,
      handle: async ({ body }) => {
        const { token, project } = await authenticateToken(ctx, body.token);
        checkDiskSizes(body.disks);
        const fingerprint = publicKeyFingerprint(body.publicKeyPem);
        if ((await ctx.state.findMachinesByName(body.name, project.id)).length > 0) {
          throw new UserError(
            `Machine ${body.name} is already registered in project ${project.name}: use another --name, or remove the old machine`,
            409,
          );
        }
        const machineId = newId("m");
        const timelineId = `tl-${machineId}-1`;
        const disks: DiskInfo[] = body.disks.map((d, i) => ({
          id: `disk${i}`,
          path: d.path,
          sizeBytes: d.sizeBytes,
        }));
        const certPem = await ctx.ca.issueClientCert(machineId, "source", body.publicKeyPem);
        const now = isoNow(ctx);
        const machine: MachineRecord = {
          id: machineId,
          projectId: project.id,
          name: body.name,
          hostname: body.hostname,
          cpus: body.cpus,
          memoryMiB: body.memoryMiB,
          disks,
          replicatorId: ctx.replicator.endpoint.id,
          timelineId,
          lifecycle: project.type === "dr" ? "NOT_TESTED" : "READY_FOR_TESTING",
          lastTestAt: null,
          replication: {
            state: "INITIATING",
            step: "AUTHENTICATE",
            progressPercent: 0,
            lagSeconds: null,
            etaSeconds: null,
            disks: disks.map((d) => ({
              id: d.id,
              totalBytes: d.sizeBytes,
              replicatedBytes: 0,
              backlogBytes: 0,
              rescannedBytes: 0,
            })),
            bytesSent: 0,
            updatedAt: now,
          },
          createdAt: now,
          publicKeyFingerprint: fingerprint,
          lastSeenAt: null,
          maxLagSeconds: null,
          replicatorConnected: null,
          newestPitTime: null,
          failbackBranchId: null,
          failbackConnected: null,
          failback: null,
        };
        // The replicator first: a machine record without a timeline would be a dead end.
        await ctx.replicator.assignMachine(
          machineId,
          timelineId,
          disks.map((d) => ({ id: d.id, sizeBytes: d.sizeBytes })),
          project.id,
        );
        await ctx.state.createMachine(machine);
        await audit(ctx, {
          actor: `agent:${machineId}`,
          action: "machine.register",
          target: machineId,
          projectId: project.id,
          details: { name: body.name, hostname: body.hostname, tokenId: token.id, disks: disks.length },
        });
        return {
          machineId,
          projectId: project.id,
          certPem,
          caPem: ctx.ca.certPem,
          timelineId,
          disks,
          replicator: replicatorInfo(),
        };
      },
    }),
    defineRoute({
      method: "POST",
      path: "/api/agent/status",
      summary: "Agent replication status report (client certificate, role source)",
      auth: "source",
      tag: "agent",
      body: AgentStatusBody,
      handle: async ({ body, identity }) => {
        const machine = await machineFromCert(ctx, identity?.machineId ?? "");
        const now = isoNow(ctx);
        const lag = body.lagSeconds;
        const maxLag = lag === null ? machine.maxLagSeconds : Math.max(lag, machine.maxLagSeconds ?? 0);
        await ctx.state.updateMachine(machine.id, {
          replication: {
            state: body.state,
            ...(body.step === undefined ? {} : { step: body.step }),
            progressPercent: body.progressPercent,
            lagSeconds: body.lagSeconds,
            etaSeconds: body.etaSeconds,
            ...(body.reason === undefined ? {} : { reason: body.reason }),
            disks: body.disks,
            bytesSent: body.bytesSent,
            ...(body.tracker === undefined ? {} : { tracker: body.tracker }),
            updatedAt: now,
          },
          lastSeenAt: now,
          maxLagSeconds: maxLag,
        });
        const project = await ctx.state.getProject(machine.projectId);
        return {
          timelineId: machine.timelineId,
          direction: project?.direction ?? "FAILOVER",
          paused: false,
          bandwidthLimitMbps: project?.settings.bandwidthLimitMbps ?? 0,
        };
      },
    }),
    defineRoute({
      method: "POST",
      path: "/api/failback/register",
      summary: "Register a failback client for a machine prepared for failback",
      auth: "none",
      tag: "failback",
      status: 201,
      body: FailbackRegisterBody,
      handle: async ({ body }) => {
        const { token, project } = await authenticateToken(ctx, body.token);
        const machine = await ctx.state.getMachine(body.machineId);
        if (machine === undefined || machine.projectId !== project.id) {
          throw new UserError(`Machine not found in project ${project.name}: ${body.machineId}`, 404);
        }
        const prepareHint = `run \`lifeboat failback prepare --project ${project.name}\` first`;
        if (
          project.direction !== "FAILBACK" ||
          (machine.lifecycle !== "PREPARING_FOR_FAILBACK" && machine.lifecycle !== "FAILBACK_REPLICATING")
        ) {
          throw new UserError(
            `Machine ${machine.name} is not prepared for failback (lifecycle ${machine.lifecycle}, direction ${project.direction}): ${prepareHint}`,
            409,
          );
        }
        if (machine.failbackBranchId === null) {
          throw new UserError(
            `Machine ${machine.name} is still being prepared for failback: retry when the failback prepare job completes`,
            409,
          );
        }
        checkDiskSizes(body.disks);
        if (body.disks.length !== machine.disks.length) {
          throw new UserError(
            `Disk count mismatch: machine ${machine.name} has ${machine.disks.length} disk(s), the failback client sent ${body.disks.length}`,
            400,
          );
        }
        body.disks.forEach((disk, i) => {
          const expected = machine.disks[i]?.sizeBytes;
          if (disk.sizeBytes !== expected) {
            throw new UserError(
              `Disk size mismatch: disk ${i} (${disk.path}) has ${disk.sizeBytes} bytes, machine ${machine.name} has ${expected ?? 0}`,
              400,
            );
          }
        });
        const certPem = await ctx.ca.issueClientCert(machine.id, "failback", body.publicKeyPem);
        await audit(ctx, {
          actor: `failback:${machine.id}`,
          action: "failback.register",
          target: machine.id,
          projectId: project.id,
          details: { tokenId: token.id },
        });
        return {
          machineId: machine.id,
          certPem,
          caPem: ctx.ca.certPem,
          replicator: replicatorInfo(),
          branchId: machine.failbackBranchId,
        };
      },
    }),
    defineRoute({
      method: "POST",
      path: "/api/failback/status",
      summary: "Failback client progress report (client certificate, role failback)",
      auth: "failback",
      tag: "failback",
      body: FailbackStatusBody,
      handle: async ({ body, identity }) => {
        const machine = await machineFromCert(ctx, identity?.machineId ?? "");
        await ctx.state.updateMachine(machine.id, {
          failback: { ...body, updatedAt: isoNow(ctx) },
          failbackConnected: true,
        });
        const project = await ctx.state.getProject(machine.projectId);
        return { branchId: machine.failbackBranchId, direction: project?.direction ?? "FAILOVER" };
      },
    }),
  ];
}
