/**
 * Error types that cross role boundaries. A user-facing error says what failed, with the
 * value, and what to do next; `cause` carries the underlying error.
 */

/** Bad input from a caller: maps to HTTP 4xx, a wire ERROR frame, or a CLI exit code 2. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 401 | 403 | 404 | 409 | 410 | 413 | 422 = 400,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "UserError";
  }
}

/** A peer broke the wire protocol: the connection is closed and nothing is applied. */
export class ProtocolError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
  }
}

/** Stored data failed a check on read (torn record, bad checksum, missing layer). */
export class CorruptionError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CorruptionError";
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
