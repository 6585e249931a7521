/**
 * Reading a byte range out of an HTTP response body, for the cloud backends. A server may
 * answer a ranged GET with more than was asked (the whole object, or a range that starts
 * earlier: HTTP lets it ignore `Range`), so the caller passes where the body starts and
 * this keeps exactly the bytes wanted, stops reading once it has them, and fails on a
 * short body instead of returning part of a range.
 */
import { Readable } from "node:stream";
import { rangePastEndError } from "./object-key.js";

export interface ContentRange {
  readonly start: number;
  readonly end: number;
  /** Object size, when the server said. */
  readonly total: number | undefined;
}

/** Parses `bytes start-end/total` (total may be `*`); undefined for anything else. */
export function parseContentRange(header: string | undefined): ContentRange | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header?.trim() ?? "");
  if (m === null) return undefined;
  const total = m[3] === "*" ? undefined : Number(m[3]);
  return { start: Number(m[1]), end: Number(m[2]), total };
}

/** What a ranged GET's response covers: where its body starts, and how far the object reaches. */
export interface RangeResponse {
  readonly bodyStart: number;
  /** The object's size, or at least the end of what the body holds; undefined when unknown. */
  readonly reach: number | undefined;
}

/** Reads a response's Content-Range (206) or, when the server ignored the range (200), its length. */
export function rangeResponse(
  contentRange: string | undefined,
  contentLength: number | undefined,
): RangeResponse {
  const range = parseContentRange(contentRange);
  if (range === undefined) return { bodyStart: 0, reach: contentLength };
  return { bodyStart: range.start, reach: range.total ?? range.end + 1 };
}

/**
 * Reads `length` bytes at object offset `offset` from `body`, whose first byte is the
 * object's byte `bodyStart`. Destroys the body once done.
 */
export async function readRangedBody(
  body: Readable,
  bodyStart: number,
  offset: number,
  length: number,
  what: string,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  let skip = offset - bodyStart;
  if (skip < 0) {
    body.destroy();
    throw new Error(`${what}: the server sent bytes from ${bodyStart}, after the ${offset} asked for`);
  }
  let filled = 0;
  const onAbort = (): void => {
    body.destroy(signal?.reason instanceof Error ? signal.reason : new Error("Aborted"));
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of body) {
      let piece = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      if (skip > 0) {
        const n = Math.min(skip, piece.length);
        skip -= n;
        piece = piece.subarray(n);
      }
      const n = Math.min(piece.length, length - filled);
      piece.copy(out, filled, 0, n);
      filled += n;
      if (filled === length) break;
    }
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    body.destroy();
  }
  signal?.throwIfAborted();
  if (filled < length) {
    throw new Error(`${what}: the response ended after ${filled} of ${length} bytes`);
  }
  return out;
}

/** What a cloud backend's ranged GET answered, for `readRangedResponse`. */
export interface RangedResponse {
  readonly body: unknown;
  readonly contentRange: string | undefined;
  readonly contentLength: number | undefined;
}

/**
 * Checks a ranged GET's answer against the range asked for and reads exactly that range:
 * a range past the object's end is a UserError with nothing returned.
 */
export async function readRangedResponse(
  res: RangedResponse,
  where: { readonly key: string; readonly description: string; readonly request: string },
  offset: number,
  length: number,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  const body = res.body;
  if (!(body instanceof Readable)) {
    throw new Error(`${where.request} of ${where.key} in ${where.description} returned no body`);
  }
  const { bodyStart, reach } = rangeResponse(res.contentRange, res.contentLength);
  if (reach !== undefined && offset + length > reach) {
    body.destroy();
    throw rangePastEndError(where.key, where.description, offset, length, reach);
  }
  return await readRangedBody(
    body,
    bodyStart,
    offset,
    length,
    `Reading ${where.key} from ${where.description}`,
    signal,
  );
}
