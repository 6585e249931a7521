import { test } from "node:test";
import assert from "node:assert/strict";
import { blueprintPatch } from "./blueprint.js";

test("blueprintPatch() types values, splits lists and merges tags", () => {
  assert.deepEqual(
    blueprintPatch(
      [
        "cpus=4",
        "memoryMiB=null",
        "ipPolicy=fixed",
        "fixedIp=10.0.0.5",
        "securityGroups=a, b",
        "tags.env=prod",
        "tags.old=",
      ],
      { old: "x", team: "ops" },
    ),
    {
      cpus: 4,
      memoryMiB: null,
      ipPolicy: "fixed",
      fixedIp: "10.0.0.5",
      securityGroups: ["a", "b"],
      tags: { team: "ops", env: "prod" },
    },
  );
  assert.deepEqual(blueprintPatch(["mac=52:54:00:aa:bb:cc", "diskBus=ide", "bootMode=uefi"], {}), {
    mac: "52:54:00:aa:bb:cc",
    diskBus: "ide",
    bootMode: "uefi",
  });
  assert.deepEqual(blueprintPatch(["mac=null"], {}), { mac: null });
  assert.throws(() => blueprintPatch(["colour=red"], {}), /Unknown blueprint key colour/);
  assert.throws(() => blueprintPatch(["cpus=four"], {}), /whole number/);
  assert.throws(() => blueprintPatch(["cpus"], {}), /use key=value/);
});
