/**
 * PushModel framing: a byte source cut into frames of at most 4 MiB, the
 * manifest on the first frame, the SHA-256 digest computed so the daemon can
 * verify what it stored, and progress reported as frames leave.
 *
 * @example
 * ```ts
 * import { pushFrames } from "./push.ts";
 *
 * const frames = [];
 * for await (const f of pushFrames(new Uint8Array(9 * 1024 * 1024), { name: "m", type: "llama", format: "file" })) {
 *   frames.push(f);
 * }
 * console.assert(frames.length === 4 && frames[0].manifest?.name === "m");
 * ```
 *
 * @module
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { createHash } from "node:crypto";
import type {
  PushManifestSchema,
  PushModelChunkSchema,
} from "../gen/contenox/transport/v1/compute_pb.ts";
import { InvalidArgumentError, isPermissionError, PermissionNeededError } from "./errors.ts";

/**
 * The largest raw payload of one frame, as the Go client sends.
 *
 * @example
 * ```ts
 * import { MAX_FRAME_BYTES } from "./push.ts";
 * console.assert(MAX_FRAME_BYTES === 4 * 1024 * 1024);
 * ```
 */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

/** What can be pushed: bytes in memory, a web stream, or any async iterable of bytes. */
export type PushSource = Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** The manifest sent on the first frame. */
export type PushManifest = MessageInitShape<typeof PushManifestSchema>;

/** Progress of a push, reported after each frame is handed to the transport. */
export interface PushProgress {
  /** Bytes sent so far. */
  sentBytes: number;
  /** Total bytes, when known. */
  totalBytes?: number;
}

/** Options of {@linkcode pushFrames}. */
export interface PushFramesOptions {
  /** The owner fence for the first frame's body (the daemon checks the header; Go sends both). */
  ownerInstanceId?: string;
  /** Called after each data frame with the bytes sent so far. */
  onProgress?: (progress: PushProgress) => void;
}

/**
 * Yields the PushModel frames for `source`: first the manifest alone, sent at
 * once so the daemon can refuse a bad name, type or fence before any bytes
 * are read, then the data in frames of at most 4 MiB.
 *
 * @param source The bytes to push.
 * @param manifest The manifest for the first frame.
 * @param options The owner fence and a progress callback.
 * @returns The frames, manifest first.
 *
 * @example
 * ```ts
 * import { pushFrames } from "./push.ts";
 * const frames = [];
 * for await (const f of pushFrames(new Uint8Array([1, 2]), { name: "m", type: "llama", format: "file" })) {
 *   frames.push(f);
 * }
 * console.assert(frames[0].manifest?.name === "m" && frames[1].data?.length === 2);
 * ```
 */
export async function* pushFrames(
  source: PushSource,
  manifest: PushManifest,
  options: PushFramesOptions = {},
): AsyncGenerator<MessageInitShape<typeof PushModelChunkSchema>> {
  const total = manifest.totalBytes === undefined ? undefined : Number(manifest.totalBytes);
  yield { ownerInstanceId: options.ownerInstanceId ?? "", manifest };
  let sent = 0;
  for await (const data of rechunk(source, MAX_FRAME_BYTES)) {
    yield { data };
    sent += data.length;
    options.onProgress?.({ sentBytes: sent, totalBytes: total });
  }
}

/**
 * Cuts a byte source into pieces of at most `max` bytes (copying only when a
 * piece must be assembled from several inputs).
 *
 * @param source The bytes.
 * @param max The largest piece.
 * @returns The pieces, in order.
 *
 * @example
 * ```ts
 * import { rechunk } from "./push.ts";
 * const sizes = [];
 * for await (const p of rechunk(new Uint8Array(10), 4)) sizes.push(p.length);
 * console.assert(sizes.join() === "4,4,2");
 * ```
 */
export async function* rechunk(source: PushSource, max: number): AsyncGenerator<Uint8Array> {
  let buffer: Uint8Array[] = [];
  let buffered = 0;
  const flush = () => {
    const out = buffer.length === 1 ? buffer[0] : new Uint8Array(buffered);
    if (buffer.length > 1) {
      let offset = 0;
      for (const b of buffer) {
        out.set(b, offset);
        offset += b.length;
      }
    }
    buffer = [];
    buffered = 0;
    return out;
  };
  const inputs: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = source instanceof Uint8Array
    ? [source]
    : source;
  for await (let piece of inputs) {
    while (piece.length > 0) {
      const take = Math.min(max - buffered, piece.length);
      buffer.push(piece.subarray(0, take));
      buffered += take;
      piece = piece.subarray(take);
      if (buffered === max) yield flush();
    }
  }
  if (buffered > 0) yield flush();
}

/**
 * The lowercase hex SHA-256 of a byte source, read once.
 *
 * @param source The bytes.
 * @returns The hex digest.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./push.ts";
 * console.assert((await sha256Hex(new Uint8Array())).startsWith("e3b0c442"));
 * ```
 */
export async function sha256Hex(source: PushSource): Promise<string> {
  const hash = createHash("sha256");
  for await (const piece of source instanceof Uint8Array ? [source] : source) hash.update(piece);
  return hash.digest("hex");
}

/** A file to push: its size, and a way to read it (once per call). */
export interface PushFile {
  /** The file's size in bytes. */
  size: number;
  /**
   * Reads the file once, in pieces of up to 4 MiB read into one buffer:
   * each piece is valid only until the next one is requested (hash it or
   * send it first). A 1 GiB file is never more than that buffer in memory.
   */
  open(): AsyncIterable<Uint8Array>;
}

/**
 * Checks a file for pushing and returns its size and a reader. Both map
 * failures to errors that say what to do.
 *
 * @param path The file.
 * @returns Its size and a function reading its bytes.
 * @throws {PermissionNeededError} Without `--allow-read` for the file.
 * @throws {InvalidArgumentError} When the path is missing or not a regular file.
 *
 * @example
 * ```ts ignore
 * const file = await statPushFile("./model.gguf");
 * console.log(file.size, await sha256Hex(file.open()));
 * ```
 */
export async function statPushFile(path: string): Promise<PushFile> {
  const info = await Deno.stat(path).catch((err) => {
    throw fileError(path, err);
  });
  if (!info.isFile) throw new InvalidArgumentError(`Cannot push ${path}: not a regular file`);
  return { size: info.size, open: () => readPieces(path) };
}

/** The file in pieces of up to {@linkcode MAX_FRAME_BYTES}, all read into one buffer. */
async function* readPieces(path: string): AsyncGenerator<Uint8Array> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    throw fileError(path, err);
  }
  using _ = file;
  const buffer = new Uint8Array(MAX_FRAME_BYTES);
  for (;;) {
    let filled = 0;
    while (filled < buffer.length) {
      const n = await file.read(buffer.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    if (filled > 0) yield buffer.subarray(0, filled);
    if (filled < buffer.length) return;
  }
}

function fileError(path: string, err: unknown): unknown {
  if (isPermissionError(err)) {
    return new PermissionNeededError("--allow-read", path, `read ${path} to push it`, {
      cause: err,
    });
  }
  if (err instanceof Deno.errors.NotFound) {
    return new InvalidArgumentError(`Cannot push ${path}: no such file`, { cause: err });
  }
  return err;
}
