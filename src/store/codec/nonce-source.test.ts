import { test } from "node:test";
import assert from "node:assert/strict";
import { NonceSource, nonceSourceFor } from "./nonce-source.js";

function take(source: NonceSource, n: number): Buffer[] {
  return Array.from({ length: n }, () => {
    const out = Buffer.alloc(12);
    source.next(out, 0);
    return out;
  });
}

test("NonceSource.next() counts up under one random prefix", () => {
  const source = new NonceSource();
  const nonces = take(source, 3);
  for (const [i, nonce] of nonces.entries()) {
    assert.deepEqual(nonce.subarray(0, 8), nonces[0]?.subarray(0, 8));
    assert.equal(nonce.readUInt32BE(8), i);
  }
  assert.equal(source.prefixesDrawn, 1);
});

test("NonceSource.next() draws a new prefix when the counter is used up", () => {
  const source = new NonceSource(4);
  const nonces = take(source, 9);
  assert.deepEqual(
    nonces.map((n) => n.readUInt32BE(8)),
    [0, 1, 2, 3, 0, 1, 2, 3, 0],
  );
  assert.equal(source.prefixesDrawn, 3);
  assert.equal(new Set(nonces.map((n) => n.toString("hex"))).size, 9);
  assert.notDeepEqual(nonces[0]?.subarray(0, 8), nonces[4]?.subarray(0, 8));
});

test("NonceSource.next() writes at the given offset only", () => {
  const out = Buffer.alloc(20, 0xaa);
  new NonceSource().next(out, 4);
  assert.deepEqual(out.subarray(0, 4), Buffer.alloc(4, 0xaa));
  assert.deepEqual(out.subarray(16), Buffer.alloc(4, 0xaa));
});

test("nonceSourceFor() gives one source per key id", () => {
  assert.equal(nonceSourceFor("nonce-test-a"), nonceSourceFor("nonce-test-a"));
  assert.notEqual(nonceSourceFor("nonce-test-a"), nonceSourceFor("nonce-test-b"));
  assert.throws(() => new NonceSource(0), RangeError);
  assert.throws(() => new NonceSource(2 ** 32 + 1), RangeError);
});
