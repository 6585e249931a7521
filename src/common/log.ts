/**
 * A small structured logger: one line per event on stderr, `time role message`. Callers
 * must never pass secrets (tokens, keys, API keys); messages name ids, not credentials.
 */
export type Logger = (message: string) => void;

export function logger(role: string, quiet = process.env.LIFEBOAT_QUIET === "1"): Logger {
  return (message: string) => {
    if (!quiet) process.stderr.write(`${new Date().toISOString()} ${role} ${message}\n`);
  };
}
