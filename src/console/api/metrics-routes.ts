/**
 * Prometheus exposition at `GET /metrics` (admin key as a bearer token, which Prometheus
 * supports): per-machine replication state, lag, RPO breach, progress and bytes sent, and
 * job counts by kind and status. Derived states (DISCONNECTED) are applied as in the API.
 */
import { REPLICATION_STATES } from "../../common/states.js";
import { defineRoute, type Route } from "../http/route.js";
import type { ApiContext } from "./api-context.js";
import { machineView } from "./machine-view.js";

function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labels(pairs: Record<string, string>): string {
  return `{${Object.entries(pairs)
    .map(([k, v]) => `${k}="${label(v)}"`)
    .join(",")}}`;
}

export function metricsRoutes(ctx: ApiContext): Route[] {
  return [
    defineRoute({
      method: "GET",
      path: "/metrics",
      summary: "Prometheus metrics",
      auth: "admin",
      tag: "system",
      contentType: "text/plain; version=0.0.4; charset=utf-8",
      handle: async () => {
        const projects = new Map((await ctx.state.listProjects()).map((p) => [p.id, p]));
        const machines = (await ctx.state.listMachines()).map((m) =>
          machineView(m, projects.get(m.projectId), ctx.now()),
        );
        const out: string[] = [];
        const family = (name: string, type: "gauge" | "counter", help: string) =>
          out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
        family(
          "lifeboat_machine_replication_state",
          "gauge",
          "1 for the machine's current replication state",
        );
        for (const m of machines) {
          const base = {
            project: projects.get(m.projectId)?.name ?? m.projectId,
            machine: m.name,
            machine_id: m.id,
          };
          for (const state of REPLICATION_STATES) {
            out.push(
              `lifeboat_machine_replication_state${labels({ ...base, state })} ${m.replication.state === state ? 1 : 0}`,
            );
          }
        }
        const perMachine: [string, string, (m: (typeof machines)[number]) => number | null][] = [
          [
            "lifeboat_machine_lag_seconds",
            "Seconds since the newest source write durable at the standby",
            (m) => m.replication.lagSeconds,
          ],
          [
            "lifeboat_machine_rpo_breached",
            "1 when lag exceeds the project's RPO target",
            (m) => (m.rpoBreached ? 1 : 0),
          ],
          [
            "lifeboat_machine_initial_sync_percent",
            "Initial sync progress",
            (m) => m.replication.progressPercent,
          ],
        ];
        for (const [name, help, value] of perMachine) {
          family(name, "gauge", help);
          for (const m of machines) {
            const v = value(m);
            if (v === null) continue;
            out.push(
              `${name}${labels({ project: projects.get(m.projectId)?.name ?? m.projectId, machine: m.name, machine_id: m.id })} ${v}`,
            );
          }
        }
        family("lifeboat_machine_sent_bytes_total", "counter", "Bytes the agent has put on the wire");
        for (const m of machines) {
          out.push(
            `lifeboat_machine_sent_bytes_total${labels({ project: projects.get(m.projectId)?.name ?? m.projectId, machine: m.name, machine_id: m.id })} ${m.replication.bytesSent}`,
          );
        }
        family("lifeboat_jobs", "gauge", "Jobs by kind and status");
        const counts = new Map<string, number>();
        for (const job of await ctx.state.listJobs()) {
          const key = `${job.kind}\u0000${job.status}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        for (const [key, n] of counts) {
          const [kind = "", status = ""] = key.split("\u0000");
          out.push(`lifeboat_jobs${labels({ kind, status })} ${n}`);
        }
        return `${out.join("\n")}\n`;
      },
    }),
  ];
}
