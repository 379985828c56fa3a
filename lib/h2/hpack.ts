/**
 * HPACK (RFC 7541), as much as a gRPC client needs: a full decoder (dynamic
 * table, Huffman strings) for what the daemon sends, and an encoder that
 * never touches the dynamic table (static-table indexes and plain literals),
 * so request header blocks can be built once and reused.
 *
 * @example
 * ```ts
 * import { encodeHeaderBlock, HpackDecoder } from "./hpack.ts";
 *
 * const block = encodeHeaderBlock([[":method", "POST"], ["te", "trailers"]]);
 * console.assert(new HpackDecoder().decode(block)[1][1] === "trailers");
 * ```
 *
 * @module
 */

import { HUFFMAN_CODES, HUFFMAN_LENGTHS, STATIC_TABLE } from "./hpack_tables.ts";

/**
 * A header block that breaks HPACK's rules (a COMPRESSION_ERROR: the
 * connection cannot go on, since both ends' tables may now differ).
 *
 * @example
 * ```ts
 * import { HpackDecoder, HpackError } from "./hpack.ts";
 * try {
 *   new HpackDecoder().decode(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]));
 * } catch (err) {
 *   console.assert(err instanceof HpackError);
 * }
 * ```
 */
export class HpackError extends Error {
  override name = "HpackError";
}

/** One header field: name and value, as the octets' Latin-1 string. */
export type HeaderField = [name: string, value: string];

/** Per-entry overhead in the dynamic table's size (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;

/**
 * Decodes the header blocks of one connection, in order (the dynamic table
 * is the connection's).
 *
 * @example
 * ```ts
 * import { HpackDecoder } from "./hpack.ts";
 * const fields = new HpackDecoder().decode(new Uint8Array([0x88])); // :status 200
 * console.assert(fields[0][1] === "200");
 * ```
 */
export class HpackDecoder {
  /** Newest first. */
  readonly #table: HeaderField[] = [];
  #size = 0;
  #max: number;
  readonly #limit: number;

  /**
   * @param limit The table size we allowed the peer (SETTINGS_HEADER_TABLE_SIZE; 4096 unless we said otherwise).
   */
  constructor(limit = 4096) {
    this.#limit = limit;
    this.#max = limit;
  }

  /** The dynamic table's size in octets, as RFC 7541 §4.1 counts it. */
  get tableSize(): number {
    return this.#size;
  }

  /**
   * Decodes one whole header block (HEADERS plus its CONTINUATIONs).
   *
   * @param block The block's bytes.
   * @returns The fields, in order.
   * @throws {HpackError} When the block is malformed.
   */
  decode(block: Uint8Array): HeaderField[] {
    const out: HeaderField[] = [];
    const at = { i: 0 };
    let fieldsSeen = false;
    while (at.i < block.length) {
      const b = block[at.i];
      if (b & 0x80) {
        out.push(this.#entry(readInt(block, at, 7)));
        fieldsSeen = true;
      } else if (b & 0x40) {
        const field = this.#literal(block, at, 6);
        this.#insert(field);
        out.push(field);
        fieldsSeen = true;
      } else if (b & 0x20) {
        // A size update must come before the block's first field (§4.2).
        if (fieldsSeen) throw new HpackError("dynamic table size update after a header field");
        const size = readInt(block, at, 5);
        if (size > this.#limit) {
          throw new HpackError(`dynamic table size update to ${size} exceeds ${this.#limit}`);
        }
        this.#max = size;
        this.#evict();
      } else {
        out.push(this.#literal(block, at, 4)); // without indexing / never indexed
        fieldsSeen = true;
      }
    }
    return out;
  }

  #entry(index: number): HeaderField {
    if (index === 0) throw new HpackError("header index 0");
    if (index <= STATIC_TABLE.length) {
      const [name, value] = STATIC_TABLE[index - 1];
      return [name, value];
    }
    const field = this.#table[index - STATIC_TABLE.length - 1];
    if (!field) throw new HpackError(`header index ${index} is not in the table`);
    return [field[0], field[1]];
  }

  #literal(block: Uint8Array, at: { i: number }, prefix: number): HeaderField {
    const index = readInt(block, at, prefix);
    const name = index === 0 ? readString(block, at) : this.#entry(index)[0];
    return [name, readString(block, at)];
  }

  #insert(field: HeaderField): void {
    const size = field[0].length + field[1].length + ENTRY_OVERHEAD;
    this.#table.unshift(field);
    this.#size += size;
    this.#evict(); // an entry larger than the table empties it (§4.4)
  }

  #evict(): void {
    while (this.#size > this.#max && this.#table.length > 0) {
      const [name, value] = this.#table.pop()!;
      this.#size -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }
}

/** An HPACK integer with an `prefix`-bit prefix (§5.1), advancing `at`. */
function readInt(block: Uint8Array, at: { i: number }, prefix: number): number {
  const mask = (1 << prefix) - 1;
  let value = block[at.i++] & mask;
  if (value < mask) return value;
  for (let shift = 0;; shift += 7) {
    if (at.i >= block.length) throw new HpackError("truncated integer");
    if (shift > 28) throw new HpackError("integer overflow");
    const b = block[at.i++];
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return value;
  }
}

/** A string literal (§5.2), Huffman-coded or not, as Latin-1. */
function readString(block: Uint8Array, at: { i: number }): string {
  if (at.i >= block.length) throw new HpackError("truncated string");
  const huffman = (block[at.i] & 0x80) !== 0;
  const length = readInt(block, at, 7);
  const end = at.i + length;
  if (end > block.length) throw new HpackError("truncated string");
  const bytes = block.subarray(at.i, end);
  at.i = end;
  return huffman ? huffmanDecode(bytes) : latin1(bytes);
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/**
 * The Huffman decoding tree as child slots: node `n`'s children are at
 * `2n` and `2n + 1`; a value ≥ 0 is a node, `-1 - sym` a leaf, 0 none yet.
 */
let tree: Int32Array | undefined;

function huffmanTree(): Int32Array {
  if (tree) return tree;
  const t = new Int32Array(2 * 512);
  let nodes = 1;
  for (let sym = 0; sym < 256; sym++) {
    const code = HUFFMAN_CODES[sym];
    const len = HUFFMAN_LENGTHS[sym];
    let node = 0;
    for (let bit = len - 1; bit > 0; bit--) {
      const slot = 2 * node + ((code >>> bit) & 1);
      if (t[slot] === 0) t[slot] = nodes++;
      node = t[slot];
    }
    t[2 * node + (code & 1)] = -1 - sym;
  }
  return tree = t;
}

/**
 * Decodes a Huffman-coded string (§5.2): padding must be under 8 bits, all
 * ones (a prefix of EOS).
 */
function huffmanDecode(bytes: Uint8Array): string {
  const t = huffmanTree();
  let s = "";
  let node = 0;
  let depth = 0; // bits since the last symbol
  let ones = true; // whether those bits were all ones
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    for (let bit = 7; bit >= 0; bit--) {
      const one = (b >>> bit) & 1;
      const next = t[2 * node + one];
      if (next < 0) {
        s += String.fromCharCode(-1 - next);
        node = 0;
        depth = 0;
        ones = true;
      } else if (next === 0) {
        throw new HpackError("invalid Huffman code (EOS in a string)");
      } else {
        node = next;
        depth++;
        ones &&= one === 1;
      }
    }
  }
  if (depth > 7 || !ones) throw new HpackError("invalid Huffman padding");
  return s;
}

/** Static-table indexes: by name and value, and by name alone (the first). */
const staticFull = new Map<string, number>();
const staticName = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  staticFull.set(`${name}\0${value}`, i + 1);
  if (!staticName.has(name)) staticName.set(name, i + 1);
});

/**
 * Encodes header fields as one block that leaves the peer's dynamic table
 * alone: an exact static match is indexed, anything else is a literal
 * without indexing (with the static name index when there is one), never
 * Huffman-coded. The block can be sent any number of times.
 *
 * @param fields Names in lower case; names and values Latin-1.
 * @returns The header block.
 * @throws {TypeError} For a character outside Latin-1, which no header may carry.
 *
 * @example
 * ```ts
 * import { encodeHeaderBlock } from "./hpack.ts";
 * console.assert(encodeHeaderBlock([[":method", "POST"]])[0] === 0x83);
 * ```
 */
export function encodeHeaderBlock(fields: readonly HeaderField[]): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const full = staticFull.get(`${name}\0${value}`);
    if (full !== undefined) {
      writeInt(out, 0x80, 7, full);
      continue;
    }
    const index = staticName.get(name);
    if (index !== undefined) writeInt(out, 0x00, 4, index);
    else {
      out.push(0x00);
      writeString(out, name);
    }
    writeString(out, value);
  }
  return new Uint8Array(out);
}

function writeInt(out: number[], flags: number, prefix: number, value: number): void {
  const mask = (1 << prefix) - 1;
  if (value < mask) {
    out.push(flags | value);
    return;
  }
  out.push(flags | mask);
  value -= mask;
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

function writeString(out: number[], s: string): void {
  writeInt(out, 0x00, 7, s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new TypeError(`header text ${JSON.stringify(s)} is not Latin-1`);
    out.push(c);
  }
}
