import { test } from "node:test";
import assert from "node:assert/strict";
import { UserError } from "../../common/errors.js";
import { DEFAULT_BLUEPRINT, type Blueprint } from "../../common/model.js";
import {
  machineMac,
  machineNetwork,
  machineOemStrings,
  machineSize,
  type SizeLimits,
} from "./local-machine-spec.js";

const limits: SizeLimits = { maxCpus: 4, maxMemoryMiB: 8192, minMemoryMiB: { bios: 128, uefi: 256 } };
const bp = (patch: Partial<Blueprint>): Blueprint => ({ ...DEFAULT_BLUEPRINT, ...patch });
const userError = (pattern: RegExp) => (err: unknown) =>
  err instanceof UserError && pattern.test(err.message);

test("machineSize() copies the source, never below it, and takes catalog types with overrides", () => {
  const source = { cpus: 2, memoryMiB: 2048 };
  assert.deepEqual(
    [machineSize(bp({}), source, limits)].map((s) => [s.cpus, s.memoryMiB]),
    [[2, 2048]],
  );
  const bigger = machineSize(bp({ cpus: 4, memoryMiB: 1024 }), source, limits);
  assert.deepEqual([bigger.cpus, bigger.memoryMiB], [4, 2048], "at least the source's memory");
  const typed = machineSize(bp({ instanceType: "local.medium" }), source, limits);
  assert.deepEqual([typed.cpus, typed.memoryMiB, typed.basis], [2, 4096, "instance type local.medium"]);
  const overridden = machineSize(
    bp({ instanceType: "local.micro", cpus: 2, memoryMiB: 144 }),
    undefined,
    limits,
  );
  assert.deepEqual([overridden.cpus, overridden.memoryMiB], [2, 144]);
});

test("machineSize() refuses too many CPUs, too little or too much memory, unknown types", () => {
  assert.throws(
    () => machineSize(bp({ cpus: 8 }), { cpus: 1, memoryMiB: 512 }, limits),
    userError(/8 CPUs .* at most 4/),
  );
  assert.throws(
    () => machineSize(bp({}), { cpus: 16, memoryMiB: 512 }, limits),
    userError(/16 CPUs \(copy of source \(16 CPUs, 512 MiB\)\)/),
  );
  assert.throws(
    () => machineSize(bp({ instanceType: "local.micro", memoryMiB: 64 }), undefined, limits),
    userError(/64 MiB .* BIOS machine needs at least 128 MiB/),
  );
  assert.throws(
    () =>
      machineSize(bp({ instanceType: "local.micro", bootMode: "uefi", memoryMiB: 128 }), undefined, limits),
    userError(/UEFI machine needs at least 256 MiB/),
  );
  assert.throws(
    () => machineSize(bp({}), { cpus: 1, memoryMiB: 65536 }, limits),
    userError(/at most 8192 MiB/),
  );
  assert.throws(
    () => machineSize(bp({ instanceType: "m5.large" }), undefined, limits),
    userError(/local.micro, local.small/),
  );
  assert.throws(() => machineSize(bp({}), undefined, limits), userError(/source's size is unknown/));
});

test("machineNetwork() isolates test launches and applies the blueprint's network and IP policy", () => {
  assert.deepEqual(machineNetwork(bp({ network: "br0" }), "test"), {
    kind: "isolated",
    subnet: "10.0.2.0/24",
    fixedIp: null,
  });
  assert.deepEqual(machineNetwork(bp({}), "recovery"), {
    kind: "user",
    subnet: "10.0.2.0/24",
    fixedIp: null,
  });
  assert.deepEqual(
    machineNetwork(
      bp({ subnet: "192.168.77.0/24", ipPolicy: "fixed", fixedIp: "192.168.77.50" }),
      "recovery",
    ),
    { kind: "user", subnet: "192.168.77.0/24", fixedIp: "192.168.77.50" },
  );
  assert.deepEqual(machineNetwork(bp({ network: "br0" }), "recovery"), { kind: "bridge", bridge: "br0" });
  assert.equal(machineNetwork(bp({ network: "none" }), "cutover"), null);
  assert.throws(
    () =>
      machineNetwork(bp({ subnet: "192.168.77.0/24", ipPolicy: "fixed", fixedIp: "192.168.78.5" }), "test"),
    userError(/not a usable host address of subnet 192.168.77.0\/24/),
  );
  assert.throws(
    () => machineNetwork(bp({ ipPolicy: "fixed", fixedIp: "10.0.2.2" }), "test"),
    userError(/reserved/),
  );
  assert.throws(
    () => machineNetwork(bp({ subnet: "lan" }), "test"),
    userError(/Subnet lan is not an IPv4 network/),
  );
  assert.throws(() => machineNetwork(bp({ ipPolicy: "copy-source" }), "test"), userError(/copy-source/));
  assert.throws(
    () => machineNetwork(bp({ network: "br0", ipPolicy: "fixed", fixedIp: "10.0.2.9" }), "recovery"),
    userError(/bridge's own DHCP/),
  );
  assert.throws(
    () => machineNetwork(bp({ network: "no spaces" }), "recovery"),
    userError(/not a host bridge name/),
  );
});

test("machineMac() keeps the blueprint's MAC or derives a stable one per machine", () => {
  assert.equal(machineMac(bp({ mac: "52:54:00:AB:CD:EF" }), "m-1"), "52:54:00:ab:cd:ef");
  assert.equal(machineMac(bp({}), "m-1"), machineMac(bp({}), "m-1"));
  assert.notEqual(machineMac(bp({}), "m-1"), machineMac(bp({}), "m-2"));
  assert.match(machineMac(bp({}), "m-1"), /^52:54:00(:[0-9a-f]{2}){3}$/);
  assert.throws(() => machineMac(bp({ mac: "01:00:5e:00:00:01" }), "m-1"), userError(/not a unicast/));
});

test("machineOemStrings() carries the machine, the mode and the tags", () => {
  assert.deepEqual(machineOemStrings(bp({ tags: { env: "dr,drill" } }), "m-1", "test"), [
    "lifeboat.machine=m-1",
    "lifeboat.mode=test",
    "lifeboat.tag.env=dr,drill",
  ]);
});
