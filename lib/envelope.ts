/**
 * gRPC's length-prefixed messages ("envelopes": a flags byte, a 4-byte
 * big-endian length, the payload), shared by the client transport and the
 * daemon's server: {@linkcode encodeEnvelope} writes a message as Go JSON
 * behind its prefix in one pass, {@linkcode EnvelopeSplitter} cuts a byte
 * stream back into messages, copying each byte at most once.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { HealthRequestSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
 * import { encodeEnvelope, EnvelopeSplitter } from "./envelope.ts";
 *
 * const bytes = encodeEnvelope(HealthRequestSchema, create(HealthRequestSchema));
 * const seen: string[] = [];
 * new EnvelopeSplitter(1024).push(bytes, (_flags, data) => seen.push(new TextDecoder().decode(data)));
 * console.assert(seen[0] === "{}");
 * ```
 *
 * @module
 */

import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { goJsonBytes } from "./go_json.ts";

/** Bytes before the payload: flags (1) and length (4). */
export const ENVELOPE_PREFIX_BYTES = 5;

/**
 * A message as one uncompressed gRPC envelope of Go JSON.
 *
 * @param desc The message's descriptor.
 * @param message The message.
 * @param into A buffer to reuse when it is large enough (see `goJsonBytes`).
 * @returns Prefix and payload in one array.
 * @throws {InvalidArgumentError} When the message cannot be written as Go JSON.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { HealthRequestSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
 * import { encodeEnvelope } from "./envelope.ts";
 * console.assert(encodeEnvelope(HealthRequestSchema, create(HealthRequestSchema))[4] === 2);
 * ```
 */
export function encodeEnvelope<D extends DescMessage>(
  desc: D,
  message: MessageShape<D>,
  into?: Uint8Array,
): Uint8Array {
  const out = goJsonBytes(desc, message, ENVELOPE_PREFIX_BYTES, into);
  new DataView(out.buffer, out.byteOffset, ENVELOPE_PREFIX_BYTES)
    .setUint32(1, out.length - ENVELOPE_PREFIX_BYTES);
  return out;
}

/**
 * An envelope around payload bytes as they are (raw JSON text from a test or
 * a hand-rolled client); {@linkcode encodeEnvelope} writes a message instead.
 *
 * @param payload The payload, or text to encode as UTF-8.
 * @param flags The flags byte (1 = compressed; modeld refuses it).
 * @returns Prefix and payload in one array.
 *
 * @example
 * ```ts
 * import { envelopeOf } from "./envelope.ts";
 * const bytes = envelopeOf("{}");
 * console.assert(bytes.length === 7 && bytes[4] === 2 && bytes[5] === 0x7b);
 * ```
 */
export function envelopeOf(payload: Uint8Array | string, flags = 0): Uint8Array {
  const data = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const out = new Uint8Array(ENVELOPE_PREFIX_BYTES + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, ENVELOPE_PREFIX_BYTES);
  return out;
}

/**
 * A length prefix above the limit, refused when it arrives (before the
 * payload is buffered), as grpc-go does.
 *
 * @example
 * ```ts
 * import { EnvelopeTooLargeError } from "./envelope.ts";
 * console.assert(new EnvelopeTooLargeError(9, 8).message.includes("(9 vs. 8)"));
 * ```
 */
export class EnvelopeTooLargeError extends Error {
  /**
   * @param length The announced payload length.
   * @param max The limit.
   */
  constructor(readonly length: number, readonly max: number) {
    super(`grpc: received message larger than max (${length} vs. ${max})`);
    this.name = "EnvelopeTooLargeError";
  }
}

/**
 * Cuts a byte stream into envelopes. Chunks are kept in a list until a
 * message is complete, then joined with one copy (none when a chunk holds the
 * whole message), so a large message arriving in small chunks costs linear
 * time.
 *
 * @example
 * ```ts
 * import { EnvelopeSplitter } from "./envelope.ts";
 * const splitter = new EnvelopeSplitter(16);
 * const sizes: number[] = [];
 * splitter.push(new Uint8Array([0, 0, 0, 0, 2, 1]), (_f, d) => sizes.push(d.length));
 * splitter.push(new Uint8Array([2, 0, 0, 0, 0, 0]), (_f, d) => sizes.push(d.length));
 * console.assert(sizes.join() === "2,0" && splitter.buffered === 0);
 * ```
 */
export class EnvelopeSplitter {
  readonly #max: number;
  readonly #parts: Uint8Array[] = [];
  #buffered = 0;
  /** The length of the envelope being read, once its prefix arrived. */
  #length = -1;
  #flags = 0;

  /** @param maxBytes The largest payload accepted. */
  constructor(maxBytes: number) {
    this.#max = maxBytes;
  }

  /**
   * Bytes received that are not yet a whole message (a truncated tail at the
   * end), the prefix of a message whose payload has not arrived included.
   */
  get buffered(): number {
    return this.#buffered + (this.#length >= 0 ? ENVELOPE_PREFIX_BYTES : 0);
  }

  /**
   * Feeds one chunk; calls `onMessage` for every envelope it completes.
   *
   * @param chunk The next bytes of the stream.
   * @param onMessage Receives each envelope's flags and payload.
   * @throws {EnvelopeTooLargeError} When a prefix announces more than the limit.
   */
  push(chunk: Uint8Array, onMessage: (flags: number, data: Uint8Array) => void): void {
    if (chunk.length === 0) return;
    if (this.#buffered === 0 && this.#length < 0) {
      // Nothing pending (the common case: a DATA frame of whole messages):
      // read prefixes in place, without the list and its views.
      let at = 0;
      while (chunk.length - at >= ENVELOPE_PREFIX_BYTES) {
        const length = this.#announced(chunk, at);
        const end = at + ENVELOPE_PREFIX_BYTES + length;
        if (end > chunk.length) break;
        onMessage(chunk[at], chunk.subarray(at + ENVELOPE_PREFIX_BYTES, end));
        at = end;
      }
      if (at === chunk.length) return;
      chunk = chunk.subarray(at);
    }
    this.#parts.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#length < 0) {
        if (this.#buffered < ENVELOPE_PREFIX_BYTES) return;
        const head = this.#take(ENVELOPE_PREFIX_BYTES);
        this.#flags = head[0];
        this.#length = this.#announced(head, 0);
      }
      if (this.#buffered < this.#length) return;
      const data = this.#take(this.#length);
      this.#length = -1;
      onMessage(this.#flags, data);
    }
  }

  /** The payload length a prefix at `at` announces, checked against the limit. */
  #announced(bytes: Uint8Array, at: number): number {
    const length = bytes[at + 1] * 2 ** 24 +
      (bytes[at + 2] << 16 | bytes[at + 3] << 8 | bytes[at + 4]);
    if (length > this.#max) throw new EnvelopeTooLargeError(length, this.#max);
    return length;
  }

  /** Removes and returns the first `n` buffered bytes, copied only when they span chunks. */
  #take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    this.#buffered -= n;
    const parts = this.#parts;
    const first = parts[0];
    if (first.length >= n) {
      if (first.length === n) parts.shift();
      else parts[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const part = parts[0];
      const used = Math.min(part.length, n - filled);
      out.set(part.subarray(0, used), filled);
      filled += used;
      if (used < part.length) parts[0] = part.subarray(used);
      else parts.shift();
    }
    return out;
  }
}
