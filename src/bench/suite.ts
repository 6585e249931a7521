/**
 * The contract between `npm run bench` and a suite: a suite gets the resolved options, a
 * fresh working directory and an abort signal, runs its phases (each measured part in a
 * child process, see phase.ts) and returns a report of figures. It throws only when it
 * could not measure; a figure that misses its target is a FAIL row, not an error.
 */
import type { CacheMode } from "./page-cache.js";
import type { Figure } from "./figure.js";

export interface BenchOptions {
  /** --size: the suite's main size in bytes (its own default when not given). */
  readonly sizeBytes: number | undefined;
  /** --dir: where the working directory is made (default os.tmpdir()). */
  readonly dir: string | undefined;
  readonly json: boolean;
  /** --quick: tiny sizes for a smoke run; the numbers mean nothing. */
  readonly quick: boolean;
  /** --cache: how reads are prepared (default cold when this process may drop the page cache). */
  readonly cache: CacheMode | undefined;
  /** --keep: leave the working directory in place. */
  readonly keep: boolean;
  /** --seed: content of the test image and of the writes. */
  readonly seed: number;
}

export interface SuiteContext {
  readonly options: BenchOptions;
  /** Cache mode resolved for this machine. */
  readonly cache: CacheMode;
  /** A fresh directory for this run, on the filesystem the baselines use too. */
  readonly dir: string;
  readonly signal: AbortSignal;
  /** A heading line on stderr ("phase: ..."), never on stdout. */
  readonly log: (line: string) => void;
}

/** What one child-process phase cost, as the child measured itself. */
export interface PhaseCost {
  readonly phase: string;
  readonly seconds: number;
  readonly peakRssBytes: number;
  /** Sampled peaks of the JS heap and of Buffers; the rest of RSS is Node.js itself and native memory. */
  readonly peakHeapUsedBytes: number;
  readonly peakArrayBuffersBytes: number;
  readonly writeBytes: number;
}

/** A baseline tool run: the command line and what it cost. */
export interface BaselineRun {
  readonly command: string;
  readonly seconds: number;
  readonly writeBytes: number;
  /** Sampled every 20 ms while it ran, so a lower bound. */
  readonly peakRssBytes: number;
}

export interface SuiteReport {
  readonly suite: string;
  readonly figures: readonly Figure[];
  readonly phases: readonly PhaseCost[];
  readonly baselines: readonly BaselineRun[];
  /** How the figures were measured, the machine's load, anything a reader must know. */
  readonly notes: readonly string[];
}

export interface Suite {
  readonly name: string;
  readonly description: string;
  /** `run` is missing for a suite that is planned but not built yet. */
  readonly run?: (context: SuiteContext) => Promise<SuiteReport>;
  /** For a suite not built yet: where it will come from, e.g. "issue 4". */
  readonly plannedIn?: string;
}
