/**
 * The CLI's command registry, filled explicitly: one file per command in this folder.
 * To add a command, write `<name>.ts` exporting a `Command` and add it below.
 */
import { CommandRegistry } from "../command.js";
import { agent } from "./agent.js";
import { audit } from "./audit.js";
import { blueprint } from "./blueprint.js";
import { demo } from "./demo.js";
import { failbackClient } from "./failback-client.js";
import { job } from "./job.js";
import { jobs } from "./jobs.js";
import { launch } from "./launch.js";
import { machines } from "./machines.js";
import { pits } from "./pits.js";
import { projectCreate } from "./project-create.js";
import { projectList } from "./project-list.js";
import { projectSettings } from "./project-settings.js";
import { cleanup, failbackPrepare, returnToNormal } from "./project-operations.js";
import { snapshotCreate, snapshotDelete } from "./snapshot.js";
import { tokenCreate } from "./token-create.js";
import { tokenRevoke } from "./token-revoke.js";
import { up } from "./up.js";

export function createCommandRegistry(): CommandRegistry {
  return new CommandRegistry()
    .add(up)
    .add(agent)
    .add(failbackClient)
    .add(demo)
    .add(projectCreate)
    .add(projectList)
    .add(projectSettings)
    .add(tokenCreate)
    .add(tokenRevoke)
    .add(machines)
    .add(pits)
    .add(snapshotCreate)
    .add(snapshotDelete)
    .add(blueprint)
    .add(launch)
    .add(jobs)
    .add(job)
    .add(failbackPrepare)
    .add(returnToNormal)
    .add(cleanup)
    .add(audit);
}
