/**
 * The plug-in point for protecting data keys at rest: a KeyWrapper encrypts ("wraps") a
 * data key under a master key it holds and never reveals. LocalMasterKeyWrapper keeps that
 * master key in a file; a cloud KMS (AWS KMS Encrypt/Decrypt with an encryption context,
 * Azure Key Vault, GCP KMS with additional authenticated data) fits the same interface.
 *
 * Contract:
 * - `wrap` returns an opaque blob; only `unwrap` with the same wrapper (same master key)
 *   and the same context returns the key. The context is authenticated, not secret: a blob
 *   presented with another context (another project, another key id) must fail.
 * - `unwrap` of a blob that was changed, wrapped by another master key, or presented with
 *   another context rejects with a CorruptionError (or a UserError when the wrapper can
 *   tell the master key is the wrong one); it never returns wrong bytes.
 * - Neither the key nor the master key appears in an error message or a log line.
 * - `id` names the master key (not the wrapper type alone), is safe to store and print,
 *   and is recorded next to every wrapped key so a reader can say which master key it
 *   needs.
 */

/** Authenticated context of a wrapped key: string pairs, as AWS KMS's encryption context. */
export type WrapContext = Readonly<Record<string, string>>;

export interface KeyWrapper {
  readonly id: string;
  wrap(key: Buffer, context: WrapContext, signal?: AbortSignal): Promise<Buffer>;
  unwrap(wrapped: Buffer, context: WrapContext, signal?: AbortSignal): Promise<Buffer>;
}

/** The context as bytes, independent of property order: sorted [name, value] pairs as JSON. */
export function encodeWrapContext(context: WrapContext): Buffer {
  const pairs = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(pairs), "utf8");
}
