/**
 * Breaks the construction cycle of an embedded setup (`lifeboat up`): the replicator needs
 * a ConsoleLink before the console exists, and the console needs the replicator. Give the
 * replicator a DeferredConsoleLink, start the console, then `attach(console.link)`; reports
 * made before that are buffered (bounded) and replayed in order.
 */
import type { Pit } from "../store/staging-store.js";
import type { ConsoleLink } from "./replicator-control.js";

const MAX_BUFFERED = 10_000;

export class DeferredConsoleLink implements ConsoleLink {
  #target: ConsoleLink | undefined;
  #buffer: ((link: ConsoleLink) => void)[] = [];

  attach(target: ConsoleLink): void {
    this.#target = target;
    const buffered = this.#buffer;
    this.#buffer = [];
    for (const call of buffered) call(target);
  }

  #send(call: (link: ConsoleLink) => void): void {
    if (this.#target !== undefined) call(this.#target);
    // Dropping the oldest is safe: every report is superseded by a later one.
    else if (this.#buffer.push(call) > MAX_BUFFERED) this.#buffer.shift();
  }

  connectionChanged(machineId: string, role: "source" | "failback", connected: boolean): void {
    this.#send((l) => l.connectionChanged(machineId, role, connected));
  }

  pitCut(machineId: string, timelineId: string, pit: Pit): void {
    this.#send((l) => l.pitCut(machineId, timelineId, pit));
  }

  failbackProgress(
    machineId: string,
    progress: { sentBytes: number; totalBytes: number; caughtUp: boolean },
  ): void {
    this.#send((l) => l.failbackProgress(machineId, progress));
  }
}
