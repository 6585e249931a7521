import { test } from "node:test";
import assert from "node:assert/strict";
import { startTestConsole } from "../console/testing/test-console.js";
import { fetchPinnedCa } from "./fetch-pinned-ca.js";

test("fetchPinnedCa() accepts the console CA only with the right fingerprint", async () => {
  const tc = await startTestConsole();
  try {
    const pem = await fetchPinnedCa(tc.console.url, tc.console.ca.fingerprint());
    assert.equal(pem, tc.console.ca.certPem);
    await assert.rejects(fetchPinnedCa(tc.console.url, "0".repeat(64)), /CA fingerprint mismatch/);
  } finally {
    await tc.close();
  }
});
