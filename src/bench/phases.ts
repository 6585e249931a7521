/**
 * Every phase a bench child process can run, by name: the one place that lists them
 * (phase-child.ts looks names up here). Add a suite's phases when the suite is built.
 */
import type { Phase, PhaseResult } from "./phase.js";
import { bigDiskPhase } from "./store/big-disk-phase.js";
import { changedRangesPhase } from "./store/changed-ranges-phase.js";
import { idlePhase } from "./store/idle-phase.js";
import { ingestPhase } from "./store/ingest-phase.js";
import { pitHourPhase } from "./store/pit-hour-phase.js";
import { pitReadPhase } from "./store/pit-read-phase.js";
import { randomWritePhase } from "./store/random-write-phase.js";

const ALL: ReadonlyArray<Phase<never, PhaseResult>> = [
  idlePhase,
  ingestPhase,
  randomWritePhase,
  pitHourPhase,
  pitReadPhase,
  changedRangesPhase,
  bigDiskPhase,
];

export const PHASES: ReadonlyMap<string, Phase<never, PhaseResult>> = new Map(ALL.map((p) => [p.name, p]));
