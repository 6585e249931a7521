import { test } from "node:test";
import assert from "node:assert/strict";
import { startTestConsole } from "../testing/test-console.js";

const HOSTILE: readonly string[] = [
  "",
  "{}",
  "[]",
  "null",
  "0",
  '"text"',
  "{",
  '{"a":',
  "\u0000\u0001",
  JSON.stringify({ name: { $gt: "" }, type: ["dr"], machineIds: "web-1", token: 1, disks: {} }),
  JSON.stringify({ machineIds: [{}], mode: null, pit: 5, settings: [] }),
  '{"settings": {"retention": {"keepAllSeconds": 1e400, "tiers": [{"everySeconds": 0, "forSeconds": -1}]}}}',
  JSON.stringify({
    settings: { retention: { keepAllSeconds: 0, tiers: [{ everySeconds: 7, forSeconds: 8 }] } },
  }),
  JSON.stringify({ token: "lbt1.%%%", name: "../../etc", disks: [{ path: 1, sizeBytes: -1 }] }),
  '{"sizeBytes": 1e400, "lagSeconds": -1, "progressPercent": 1000}',
  '{"constructor":{"prototype":{"polluted":true}},"__proto__":{"polluted":true}}',
  `{"a":${"[".repeat(50_000)}${"]".repeat(50_000)}}`,
];

test("no route answers 5xx to hostile bodies, with or without credentials", async () => {
  const tc = await startTestConsole();
  try {
    await tc.request("POST", "/api/projects", { name: "prod", type: "dr" });
    for (const route of tc.console.routes) {
      if (route.method === "GET") continue;
      const path = route.path.replace(/:[A-Za-z0-9_]+/g, "prod");
      for (const raw of HOSTILE) {
        for (const auth of [{}, { apiKey: null }]) {
          const res = await tc.request(route.method, path, undefined, { raw, ...auth });
          assert.ok(
            res.status >= 200 && res.status < 500,
            `${route.method} ${path} ${raw.slice(0, 30)}: ${res.text}`,
          );
        }
      }
    }
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  } finally {
    await tc.close(); // also fails if the console logged an internal error
  }
});
