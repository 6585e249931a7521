/**
 * The disk image formats a provider can write (today only the export provider does). The
 * list belongs to the provider contract, not to an implementation, so the console can
 * validate a launch's format without importing one. Layouts: docs/image-formats.md.
 */
export const IMAGE_FORMATS = ["raw", "qcow2", "vhd", "vhd-dynamic", "vmdk"] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** What a launch writes when it names no format: the demo and older clients rely on it. */
export const DEFAULT_IMAGE_FORMAT: ImageFormat = "raw";

export function isImageFormat(value: unknown): value is ImageFormat {
  return typeof value === "string" && (IMAGE_FORMATS as readonly string[]).includes(value);
}
