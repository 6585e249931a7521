/**
 * Deterministic disk content for benches, from a seed: "random" data (an AES-256-CTR
 * keystream, incompressible like media or encrypted files) and text-like data (log lines
 * and prose). Images take the keystream by offset; streams of small writes copy each block
 * from a random byte offset of a small pool instead (text or keystream), so blocks differ
 * and making them costs a memcpy, not the store's CPU. The same seed gives the same bytes
 * on every machine, so a run can be repeated.
 */
import { createCipheriv, createHash } from "node:crypto";

export const BLOCK = 4096;
const TEXT_POOL_BYTES = 1024 * 1024;
const RANDOM_POOL_BYTES = 2 * 1024 * 1024;
const ZERO_PIECE = Buffer.alloc(64 * 1024);

/** xorshift32: a small, fast, seeded generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let x = (Math.imul(seed | 0, 2654435761) ^ 0x9e3779b9) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** An integer in [0, n). */
export function below(random: () => number, n: number): number {
  return Math.floor(random() * n);
}

export class SeededContent {
  private readonly key: Buffer;
  private readonly textPool: Buffer;
  private randomPool: Buffer | undefined;

  /** Builds the text pool at once (a few hundred ms), so no timed loop pays for it. */
  constructor(readonly seed: number) {
    this.key = createHash("sha256").update(`lifeboat-bench-content-${seed}`).digest();
    this.textPool = textPool(seed, TEXT_POOL_BYTES);
  }

  /** Fills `out` with the keystream at `streamOffset` (a multiple of 16): the same offset, the same bytes. */
  fillRandom(out: Buffer, streamOffset: number): void {
    if (streamOffset % 16 !== 0)
      throw new RangeError(`Stream offset ${streamOffset} is not a multiple of 16`);
    const iv = Buffer.alloc(16);
    iv.writeUIntBE(streamOffset / 16, 10, 6);
    const cipher = createCipheriv("aes-256-ctr", this.key, iv);
    // Small pieces: one big update() would leave a big freed allocation in the measured process's RSS.
    for (let pos = 0; pos < out.length; pos += ZERO_PIECE.length) {
      const n = Math.min(ZERO_PIECE.length, out.length - pos);
      cipher.update(ZERO_PIECE.subarray(0, n)).copy(out, pos);
    }
  }

  /** Fills `out` with text, each 4 KiB block copied from a pool offset `random` picks. */
  fillText(out: Buffer, random: () => number): void {
    copyBlocks(this.textPool, out, random);
  }

  /** Fills `out` with keystream bytes, each 4 KiB block copied from a pool offset `random` picks. */
  fillRandomBlocks(out: Buffer, random: () => number): void {
    if (this.randomPool === undefined) {
      this.randomPool = Buffer.alloc(RANDOM_POOL_BYTES);
      this.fillRandom(this.randomPool, 2 ** 40); // far from any image offset
    }
    copyBlocks(this.randomPool, out, random);
  }
}

function copyBlocks(pool: Buffer, out: Buffer, random: () => number): void {
  for (let pos = 0; pos < out.length; pos += BLOCK) {
    const n = Math.min(BLOCK, out.length - pos);
    const from = below(random, pool.length - n);
    pool.copy(out, pos, from, from + n);
  }
}

const HOSTS = ["web-1", "web-2", "db-01", "cache-a", "batch-7", "files", "mail", "ci-runner-3"];
const SERVICES = ["sshd", "nginx", "postgres", "systemd", "kernel", "cron", "dockerd", "app", "backup"];
const LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
const WORDS = (
  "the a of to and in is for on with that by this from at be are was request response user session " +
  "connection disk block write read sync replica volume snapshot backup restore table index query " +
  "commit rollback timeout retry failed accepted closed opened started stopped completed error warning " +
  "cache miss hit page memory cpu load network packet socket port address service worker queue job " +
  "file directory path config value key token certificate expired valid invalid update insert delete " +
  "select from where order group limit offset transaction lock wait deadlock checkpoint log archive"
).split(" ");
const PATHS = ["/api/v1/items", "/api/v1/users/", "/static/app.js", "/healthz", "/login", "/orders/"];
const STATUSES = [200, 200, 200, 304, 404, 500];

/**
 * Text resembling what fills real disks: syslog-style lines, access logs and prose, written
 * line by line straight into the pool, so making it leaves little garbage behind.
 */
function textPool(seed: number, bytes: number): Buffer {
  const random = seededRandom(seed ^ 0x5eed);
  const pick = <T>(list: readonly T[]): T => list[below(random, list.length)] as T;
  const words = (count: number): string => {
    let text = pick(WORDS);
    for (let i = 1; i < count; i++) text += ` ${pick(WORDS)}`;
    return text;
  };
  const pool = Buffer.alloc(bytes);
  let pos = 0;
  let time = Date.UTC(2026, 10, 25, 8, 0, 0);
  while (pos < bytes) {
    time += below(random, 2000);
    const stamp = new Date(time).toISOString();
    const roll = random();
    let line: string;
    if (roll < 0.45) {
      line = `${stamp} ${pick(HOSTS)} ${pick(SERVICES)}[${100 + below(random, 30000)}]: ${pick(LEVELS)} ${words(4 + below(random, 12))}\n`;
    } else if (roll < 0.75) {
      const ip = `10.${below(random, 256)}.${below(random, 256)}.${below(random, 256)}`;
      line =
        `${ip} - - [${stamp}] "GET ${pick(PATHS)}${below(random, 100000)} HTTP/1.1" ` +
        `${pick(STATUSES)} ${below(random, 90000)} "-" "curl/8.${below(random, 9)}"\n`;
    } else {
      const sentence = words(8 + below(random, 30));
      line = `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}.\n`;
    }
    pos += pool.write(line, pos, "latin1");
  }
  return pool;
}
