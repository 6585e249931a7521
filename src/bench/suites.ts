/**
 * The bench suites `npm run bench -- SUITE` knows: the one file that names them.
 */
import { storeSuite } from "./store/store-suite.js";
import type { Suite } from "./suite.js";

export const SUITES: readonly Suite[] = [
  storeSuite,
  { name: "cdp", description: "agent to replicator replication: throughput, lag, RPO", plannedIn: "issue 4" },
  { name: "launch", description: "launch from a PIT: time to boot, RTO", plannedIn: "issue 5" },
];

export function findSuite(name: string): Suite | undefined {
  return SUITES.find((s) => s.name === name);
}
