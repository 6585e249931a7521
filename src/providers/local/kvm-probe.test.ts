import { test } from "node:test";
import assert from "node:assert/strict";
import { UserError } from "../../common/errors.js";
import {
  PROBE_MARKER,
  accelVerdict,
  forgetAccelVerdicts,
  probeBootSector,
  runProbeGuest,
} from "./kvm-probe.js";

test("probeBootSector() is one boot sector carrying the marker", () => {
  const sector = probeBootSector();
  assert.equal(sector.length, 512);
  assert.equal(sector.readUInt16LE(510), 0xaa55);
  assert.ok(sector.toString("latin1").includes(`${PROBE_MARKER}\r\n`));
  assert.throws(() => probeBootSector("two\nlines"), /printable ASCII/);
  assert.throws(() => probeBootSector("x".repeat(300)), /1 to 217 printable/);
  assert.equal(probeBootSector("x".repeat(217)).readUInt16LE(510), 0xaa55);
});

test("accelVerdict() agrees with what the probe guest does under KVM, and TCG runs it", async () => {
  forgetAccelVerdicts();
  const verdict = await accelVerdict();
  assert.ok(verdict.reason.length > 0);
  const kvm = await runProbeGuest("kvm");
  if (verdict.accel === "kvm") {
    assert.ok(kvm.ok, `verdict says KVM but the guest did not run: ${kvm.detail}`);
    assert.match(verdict.reason, /^KVM works/);
  } else {
    assert.ok(!kvm.ok, `verdict says TCG (${verdict.reason}) but the guest ran under KVM`);
    assert.match(verdict.reason, /^KVM unusable: .+; using TCG/);
  }
  // The fallback itself must work, or nothing could launch.
  const tcg = await runProbeGuest("tcg", { timeoutMs: 60_000 });
  assert.ok(tcg.ok, `TCG did not run the probe guest: ${tcg.detail}`);
  // Cached: the same answer again without booting anything.
  const started = Date.now();
  assert.equal(await accelVerdict(), verdict);
  assert.ok(Date.now() - started < 1000);
});

test("accelVerdict() without /dev/kvm is TCG without running a guest", async () => {
  const verdict = await accelVerdict({ kvmDevice: "/nonexistent/kvm" });
  assert.equal(verdict.accel, "tcg");
  assert.match(verdict.reason, /cannot open \/nonexistent\/kvm \(ENOENT\)/);
});

test("accelVerdict() with QEMU missing names the Debian package", async () => {
  await assert.rejects(
    accelVerdict({ qemu: "qemu-system-x86_64-not-here" }),
    (err: unknown) =>
      err instanceof UserError &&
      /not installed: install the Debian package qemu-system-x86/.test(err.message),
  );
});
