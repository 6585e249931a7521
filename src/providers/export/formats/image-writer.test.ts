/**
 * The conformance suite every image format passes, checked by the real qemu-img: the image
 * opens as the expected format and size, `qemu-img compare` finds it identical to the
 * source, `qemu-img check` finds no error where qemu supports checks (qcow2, vmdk), and
 * zero ranges cost (almost) no space. Then the rules writeImage adds to every writer.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, open, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../../common/errors.js";
import { IMAGE_FORMATS, type ImageFormat } from "../../image-format.js";
import type { DiskSource } from "./disk-source.js";
import { imageWriter } from "./image-writers.js";
import { Qcow2Writer } from "./qcow2-writer.js";
import { openRawFileSource } from "./raw-file-source.js";
import { randomData, textLike } from "./sample-data.js";
import { NO_QEMU_IMG, qemuFormat, qemuImg } from "./test-support.js";
import { chsGeometry, parseVhdFooter, vhdChecksum } from "./vhd-footer.js";
import { writeImage, writeImageWith } from "./write-image.js";

const KIB = 1024;
const MIB = 1024 * KIB;

interface Sample {
  readonly name: string;
  readonly path: string;
  readonly size: number;
}

let dir = "";
const samples: Sample[] = [];

async function writeSample(name: string, size: number, parts: Array<[number, Buffer]>): Promise<Sample> {
  const path = join(dir, `${name}.raw`);
  const fh = await open(path, "w");
  try {
    await fh.truncate(size);
    for (const [offset, data] of parts) await fh.write(data, 0, data.length, offset);
  } finally {
    await fh.close();
  }
  return { name, path, size };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "lifeboat-formats-"));
  // Random, text-like and zero ranges; data ending inside a cluster; a lone 4 KiB block in
  // a zero stretch; a tail that ends off every cluster, grain, block and MiB boundary.
  const mixed = 40 * MIB + 12 * KIB;
  samples.push(
    await writeSample("mixed", mixed, [
      [0, randomData(MIB)],
      [2 * MIB, textLike(2 * MIB + 4 * KIB, 7)],
      [20 * MIB + 60 * KIB, randomData(4 * KIB)],
      [33 * MIB, textLike(3 * MIB, 8)],
      [mixed - 8 * KIB, randomData(8 * KIB)],
    ]),
  );
  // Almost all zeros across several L2 tables (qcow2: no), grain tables and BAT blocks.
  const sparse = 96 * MIB + 4 * KIB;
  samples.push(
    await writeSample("sparse", sparse, [
      [0, randomData(64 * KIB)],
      [sparse - 4 * KIB, randomData(4 * KIB)],
    ]),
  );
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function infoOf(image: string, format: ImageFormat): Promise<Record<string, unknown>> {
  const run = await qemuImg("info", "--output=json", "-f", qemuFormat(format), image);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

async function checkVhd(image: string, format: ImageFormat, virtualSize: number): Promise<void> {
  const bytes = await readFile(image);
  const footer = parseVhdFooter(bytes.subarray(bytes.length - 512));
  assert.equal(footer.cookie, "conectix");
  assert.ok(footer.checksumOk, "footer checksum");
  assert.equal(footer.currentSize, virtualSize);
  assert.deepEqual(footer.geometry, chsGeometry(virtualSize / 512));
  if (format === "vhd") {
    assert.equal(footer.diskType, 2);
    assert.equal(virtualSize % MIB, 0, "Azure wants a whole number of MiB");
    assert.equal(bytes.length, virtualSize + 512);
  } else {
    assert.equal(footer.diskType, 3);
    assert.ok(bytes.subarray(0, 512).equals(bytes.subarray(bytes.length - 512)), "footer copy at the start");
    const header = bytes.subarray(512, 1536);
    assert.equal(header.toString("latin1", 0, 8), "cxsparse");
    assert.equal(header.readUInt32BE(36), vhdChecksum(header, 36));
  }
}

for (const format of IMAGE_FORMATS) {
  test(
    `writeImage() ${format}: qemu-img opens it at the right size, finds it identical to the source and consistent`,
    {
      skip: NO_QEMU_IMG,
    },
    async () => {
      const writer = imageWriter(format);
      for (const sample of samples) {
        const image = join(dir, `${sample.name}.${format}.${writer.extension}`);
        const source = await openRawFileSource(sample.path);
        const progress: number[] = [];
        try {
          await writeImage(format, source, image, {
            onProgress: (done, total) => progress.push(done, total),
          });
        } finally {
          await source.close();
        }
        assert.deepEqual(progress.slice(-2), [sample.size, sample.size]);

        const virtualSize = writer.virtualSize(sample.size);
        const info = await infoOf(image, format);
        assert.equal(info["format"], qemuFormat(format), `${sample.name} format`);
        assert.equal(info["virtual-size"], virtualSize, `${sample.name} virtual size`);
        if (format === "vhd") assert.equal(virtualSize, Math.ceil(sample.size / MIB) * MIB);
        else assert.equal(virtualSize, sample.size);

        // Without -s a larger image (the rounded VHD) must read zeros past the smaller one.
        const compare = await qemuImg("compare", "-f", "raw", sample.path, "-F", qemuFormat(format), image);
        assert.equal(compare.code, 0, `${sample.name}: ${compare.stdout}${compare.stderr}`);
        assert.match(compare.stdout, /Images are identical/);

        if (format === "qcow2") {
          const check = await qemuImg("check", "--output=json", "-f", "qcow2", image);
          assert.equal(check.code, 0, check.stdout + check.stderr);
          const result = JSON.parse(check.stdout) as Record<string, unknown>;
          assert.equal(result["check-errors"], 0);
          assert.equal(result["corruptions"] ?? 0, 0);
          assert.equal(result["leaks"] ?? 0, 0);
        }
        if (format === "vmdk") {
          const check = await qemuImg("check", "-f", "vmdk", image);
          assert.equal(check.code, 0, check.stdout + check.stderr);
          const specific = (info["format-specific"] as { data: Record<string, unknown> }).data;
          assert.equal(specific["create-type"], "streamOptimized");
          assert.equal((specific["extents"] as { compressed: boolean }[])[0]?.compressed, true);
        }
        if (format === "vhd" || format === "vhd-dynamic") await checkVhd(image, format, virtualSize);
        if (sample.name === "sparse") {
          const allocated = (await stat(image)).blocks * 512;
          assert.ok(allocated < MIB, `${format} stores ${allocated} bytes for 68 KiB of data`);
        }
      }
      assert.deepEqual(
        (await readdir(dir)).filter((n) => n.endsWith(".partial")),
        [],
      );
    },
  );
}

test(
  "Qcow2Writer with 512-byte clusters: many L2 tables, refcount blocks and a multi-cluster refcount table pass qemu-img check",
  {
    skip: NO_QEMU_IMG,
  },
  async () => {
    const size = 16 * MIB + 4 * KIB;
    const sample = await writeSample("small-clusters", size, [
      [0, randomData(12 * MIB)],
      [size - 4 * KIB, randomData(4 * KIB)],
    ]);
    const image = join(dir, "small-clusters.qcow2");
    const source = await openRawFileSource(sample.path);
    try {
      await writeImageWith(new Qcow2Writer({ clusterBits: 9 }), source, image);
    } finally {
      await source.close();
    }
    const header = await readFile(image).then((b) => b.subarray(0, 104));
    assert.equal(header.readUInt32BE(20), 9);
    assert.ok(header.readUInt32BE(56) >= 2, "refcount table spans clusters");
    const check = await qemuImg("check", "--output=json", "-f", "qcow2", image);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const result = JSON.parse(check.stdout) as Record<string, unknown>;
    assert.equal(result["check-errors"], 0);
    assert.equal(result["leaks"] ?? 0, 0);
    assert.equal(result["corruptions"] ?? 0, 0);
    const compare = await qemuImg("compare", "-f", "raw", sample.path, "-F", "qcow2", image);
    assert.equal(compare.code, 0, compare.stdout + compare.stderr);
  },
);

test(
  "Qcow2Writer with 64 KiB clusters: data straddling the 512 MiB reach of the first L2 table",
  {
    skip: NO_QEMU_IMG,
  },
  async () => {
    const size = 520 * MIB + 4 * KIB;
    const sample = await writeSample("l2-boundary", size, [
      [512 * MIB - 8 * KIB, randomData(16 * KIB)],
      [size - 4 * KIB, randomData(4 * KIB)],
    ]);
    const image = join(dir, "l2-boundary.qcow2");
    const source = await openRawFileSource(sample.path);
    try {
      await writeImage("qcow2", source, image);
    } finally {
      await source.close();
    }
    const header = await readFile(image).then((b) => b.subarray(0, 104));
    assert.equal(header.readUInt32BE(36), 2, "two L1 entries");
    const check = await qemuImg("check", "--output=json", "-f", "qcow2", image);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const compare = await qemuImg("compare", "-f", "raw", sample.path, "-F", "qcow2", image);
    assert.equal(compare.code, 0, compare.stdout + compare.stderr);
  },
);

function memorySource(size: number, onRead?: (offset: number) => void): DiskSource {
  return {
    sizeBytes: size,
    read: (offset, length) => {
      onRead?.(offset);
      return Promise.resolve(Buffer.alloc(length, offset === 0 ? 1 : 0));
    },
  };
}

test("writeImage() rejects an empty disk clearly and writes nothing", async () => {
  const out = join(dir, "empty.qcow2");
  await assert.rejects(writeImage("qcow2", memorySource(0), out), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.match(err.message, /^Cannot write .*empty\.qcow2: the disk is empty \(0 bytes\)$/);
    return true;
  });
  await assert.rejects(stat(out), { code: "ENOENT" });
});

test("writeImage() says which directory it cannot write to and what to do", async () => {
  const notADir = join(dir, "not-a-dir");
  await writeFile(notADir, "x");
  await assert.rejects(writeImage("vhd", memorySource(MIB), join(notADir, "disk0.vhd")), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.match(
      err.message,
      /^Cannot write .*not-a-dir\/disk0\.vhd\.partial: .*ENOTDIR.*; choose a writable output directory$/,
    );
    return true;
  });
});

test("writeImage() refuses to replace an existing image", async () => {
  const out = join(dir, "exists.img");
  await writeFile(out, "keep");
  await assert.rejects(writeImage("raw", memorySource(MIB), out), {
    name: "UserError",
    message: /already exists/,
  });
  assert.equal(await readFile(out, "utf8"), "keep");
});

for (const format of ["qcow2", "vmdk"] as const) {
  test(`writeImage() ${format}: an abort or a failing source mid-write leaves neither the image nor its partial file`, async () => {
    const sub = await mkdtemp(join(dir, "abort-"));
    const controller = new AbortController();
    const aborting = memorySource(64 * MIB, (offset) => {
      if (offset >= 12 * MIB) controller.abort();
    });
    await assert.rejects(
      writeImage(format, aborting, join(sub, `disk0.${format}`), { signal: controller.signal }),
      { name: "AbortError" },
    );
    assert.deepEqual(await readdir(sub), []);

    const failing: DiskSource = {
      sizeBytes: 64 * MIB,
      read: (offset, length) =>
        offset >= 8 * MIB
          ? Promise.reject(new Error("EIO reading the PIT"))
          : Promise.resolve(Buffer.alloc(length, 3)),
    };
    await assert.rejects(writeImage(format, failing, join(sub, `disk1.${format}`)), {
      message: new RegExp(`^Writing the ${format} image .*disk1\\.${format} failed: EIO reading the PIT$`),
    });
    assert.deepEqual(await readdir(sub), []);
  });
}
