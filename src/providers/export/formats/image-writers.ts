/** The image writers, one per format, filled explicitly: the only file that names them all. */
import type { ImageFormat } from "../../image-format.js";
import type { ImageWriter } from "./image-writer.js";
import { Qcow2Writer } from "./qcow2-writer.js";
import { RawWriter } from "./raw-writer.js";
import { VhdDynamicWriter } from "./vhd-dynamic-writer.js";
import { VhdFixedWriter } from "./vhd-fixed-writer.js";
import { VmdkWriter } from "./vmdk-writer.js";

const writers: Readonly<Record<ImageFormat, () => ImageWriter>> = {
  raw: () => new RawWriter(),
  qcow2: () => new Qcow2Writer(),
  vhd: () => new VhdFixedWriter(),
  "vhd-dynamic": () => new VhdDynamicWriter(),
  vmdk: () => new VmdkWriter(),
};

export function imageWriter(format: ImageFormat): ImageWriter {
  return writers[format]();
}

/** The file name extension (without the dot) images of `format` get. */
export function imageExtension(format: ImageFormat): string {
  return imageWriter(format).extension;
}
