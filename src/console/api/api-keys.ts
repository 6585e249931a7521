/**
 * Admin API keys: `lbk1_` + 32 random bytes (base64url). Only the sha256 is stored; a
 * presented key is hashed and compared with every stored hash in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { StateStore } from "../state/state-store.js";
import { newId } from "./api-context.js";

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Creates a key, stores its hash, and returns the key: the only time it exists in clear. */
export async function createApiKey(state: StateStore, name: string, now: Date): Promise<string> {
  const key = `lbk1_${randomBytes(32).toString("base64url")}`;
  await state.createApiKey({
    id: newId("k"),
    name,
    hash: sha256(key).toString("hex"),
    createdAt: now.toISOString(),
  });
  return key;
}

export async function verifyApiKey(state: StateStore, key: string): Promise<boolean> {
  const presented = sha256(key);
  let ok = false;
  for (const record of await state.listApiKeys()) {
    const stored = Buffer.from(record.hash, "hex");
    // Compare every key, without an early exit, so timing says nothing about which matched.
    if (stored.length === presented.length && timingSafeEqual(stored, presented)) ok = true;
  }
  return ok;
}
