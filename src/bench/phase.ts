/**
 * A measured part of a suite that runs alone in a child process, so the peak RSS and the
 * storage bytes written it reports are its own and nothing of the parent's (the test
 * image, earlier phases, the report). Params and results cross the process boundary as
 * JSON; phases.ts lists every phase by name for the child to find.
 */

/** What every phase reports about the window it measured. */
export interface PhaseResult {
  readonly seconds: number;
  /** Storage bytes the phase's process wrote in that window. */
  readonly writeBytes: number;
}

export interface Phase<P, R extends PhaseResult> {
  /** Unique across suites, e.g. "store.ingest". */
  readonly name: string;
  /** Runs in the child; should stop soon after `signal` aborts. */
  run(params: P, signal: AbortSignal): Promise<R>;
}

/** Where a child's memory went, from process.memoryUsage() sampled every 50 ms (so lower bounds). */
export interface MemoryPeaks {
  /** Live JS objects. */
  readonly peakHeapUsedBytes: number;
  /** Buffers and other ArrayBuffers (outside the JS heap, inside RSS once touched). */
  readonly peakArrayBuffersBytes: number;
}

/** A result, the child's peak resident set over its whole life (VmHWM), and its memory peaks. */
export type Outcome<R> = R & MemoryPeaks & { readonly peakRssBytes: number };

/** Parent to child: the params. Child to parent: the outcome, or why it failed. */
export type ChildReply<R> =
  { readonly ok: true; readonly outcome: Outcome<R> } | { readonly ok: false; readonly error: string };

export function definePhase<P, R extends PhaseResult>(
  name: string,
  run: (params: P, signal: AbortSignal) => Promise<R>,
): Phase<P, R> {
  return { name, run };
}
