/**
 * Turns an S3 or Azure SDK failure into a lifeboat error that names the backend and never
 * carries a secret. SDK errors can hold what they were sent (S3's SignatureDoesNotMatch
 * echoes the canonical request, session token included), so the `cause` kept is a plain
 * Error with the service's code, status and request id, never the SDK's object.
 */
import { UserError } from "../../common/errors.js";

const AUTH_CODES = new Set([
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "AuthenticationFailed",
  "AuthorizationFailure",
  "AuthorizationPermissionMismatch",
  "InvalidAuthenticationInfo",
  "CredentialsProviderError",
]);

const STATUS_NAMES: Record<number, string> = { 401: "Unauthorized", 403: "Forbidden", 404: "NotFound" };

/** The service's error code ("NoSuchKey", "BlobNotFound", "AccessDenied"), or the error's name. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const o = err as { code?: unknown; Code?: unknown; name?: unknown };
  for (const v of [o.Code, o.code, o.name]) if (typeof v === "string" && v !== "Error") return v;
  return undefined;
}

/** The HTTP status of the failed request, when there was one. */
export function errorStatus(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const o = err as { statusCode?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const status = o.$metadata?.httpStatusCode ?? o.statusCode;
  return typeof status === "number" ? status : undefined;
}

/**
 * `what` says which call on which backend ("S3 put of k in s3://b/p"); `hint` tells an
 * operator what to check when the service refused the credentials.
 */
export function cloudError(err: unknown, what: string, hint: string): Error {
  const status = errorStatus(err);
  // A HEAD has no body to carry a code: the SDK then says "Unknown".
  const named = errorCode(err);
  const code =
    named === undefined || named === "Unknown" ? (STATUS_NAMES[status ?? 0] ?? "UnknownError") : named;
  const at = status === undefined ? "" : ` (HTTP ${status})`;
  const cause = new Error(`${code}${at}${requestIdOf(err)}`);
  if (AUTH_CODES.has(code) || status === 401 || status === 403) {
    return new UserError(`${what} was refused: ${code}${at}: ${hint}`, 403, { cause });
  }
  const message = err instanceof Error ? firstLine(err.message) : String(err);
  return new Error(`${what} failed: ${code}${at}: ${message}`, { cause });
}

function requestIdOf(err: unknown): string {
  if (typeof err !== "object" || err === null) return "";
  const o = err as { $metadata?: { requestId?: unknown }; request?: { requestId?: unknown } };
  const id = o.$metadata?.requestId ?? o.request?.requestId;
  return typeof id === "string" ? `, request id ${id}` : "";
}

/** Azure's messages append the XML details on later lines; the first line says it. */
function firstLine(message: string): string {
  return message.split("\n")[0]?.slice(0, 300) ?? "";
}
