/**
 * A tiny synthetic GGUF model for fast tests of a llama.cpp-backed daemon.
 *
 * {@linkcode syntheticGguf} writes a complete GGUF v3 file in memory: a
 * `llama` architecture model with 2 blocks, embedding width 32, 2 attention
 * heads (head size 16) and a feed-forward width of 64, whose F32 weights come
 * from a seeded PRNG (same options, byte-identical file). Its output is
 * gibberish, but llama.cpp loads it, tokenizes, evaluates, samples and embeds
 * with it like with a real model, in milliseconds.
 *
 * The tokenizer is byte-level GPT-2 BPE (`tokenizer.ggml.model = "gpt2"`,
 * `tokenizer.ggml.pre = "gpt-2"`), so any text tokenizes and detokenizes
 * losslessly; merges for about 180 common English words keep ordinary
 * prose near one token per word. The fixed token ids are:
 *
 * | id | token             | type    | role                          |
 * | -- | ----------------- | ------- | ----------------------------- |
 * | 0  | `<\|endoftext\|>` | control | BOS and padding; end of text  |
 * | 1  | `<\|im_start\|>`  | control | ChatML turn start             |
 * | 2  | `<\|im_end\|>`    | control | EOS and EOT; ChatML turn end  |
 * | 3+ | 256 byte tokens (3 + byte), then merged word tokens | normal | |
 *
 * `tokenizer.ggml.add_bos_token` is false (as for Qwen and SmolLM2): the
 * ChatML template carries the turn structure. `tokenizer.chat_template` is
 * the ChatML template of SmolLM2 and Qwen ({@linkcode CHATML_TEMPLATE}).
 *
 * {@linkcode readGgufMetadata} parses the header and key/value section of a
 * GGUF file back, for assertions.
 *
 * @example
 * ```ts ignore
 * import { readGgufMetadata, syntheticGguf } from "./synthetic_gguf.ts";
 *
 * const bytes = syntheticGguf({ seed: 7, contextLength: 512 });
 * await Deno.writeFile("/tmp/synthetic-tiny.gguf", bytes);
 * console.assert(readGgufMetadata(bytes).metadata["llama.context_length"] === 512);
 * ```
 *
 * @module
 */

/** Options for {@linkcode syntheticGguf}. Every field has a default. */
export interface SyntheticGgufOptions {
  /** PRNG seed for the weights (a 32-bit unsigned integer; default 1). */
  seed?: number;
  /** `llama.context_length`, the training context (default 2048). */
  contextLength?: number;
  /** Number of transformer blocks, 1 to 4 (default 2). */
  blockCount?: number;
  /** `general.name` (default `"synthetic-tiny"`). */
  name?: string;
  /** `tokenizer.chat_template` (default {@linkcode CHATML_TEMPLATE}). */
  chatTemplate?: string;
  /**
   * Scale of the random weights (default 1). Larger values make the
   * next-token distribution peakier; any positive value works.
   */
  weightScale?: number;
}

/**
 * The ChatML chat template written to `tokenizer.chat_template` by default
 * (the one SmolLM2 and Qwen use, without a default system prompt).
 *
 * @example
 * ```ts ignore
 * import { CHATML_TEMPLATE } from "./synthetic_gguf.ts";
 * console.assert(CHATML_TEMPLATE.includes("<|im_start|>assistant\\n"));
 * ```
 */
export const CHATML_TEMPLATE: string = "{% for message in messages %}" +
  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
  "{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * The token ids of the special tokens of every file {@linkcode syntheticGguf}
 * writes.
 *
 * @example
 * ```ts ignore
 * import { SYNTHETIC_TOKENS } from "./synthetic_gguf.ts";
 * console.assert(SYNTHETIC_TOKENS.eos === SYNTHETIC_TOKENS.imEnd);
 * ```
 */
export const SYNTHETIC_TOKENS: {
  readonly endOfText: 0;
  readonly imStart: 1;
  readonly imEnd: 2;
  readonly bos: 0;
  readonly eos: 2;
  readonly pad: 0;
} = Object.freeze({ endOfText: 0, imStart: 1, imEnd: 2, bos: 0, eos: 2, pad: 0 });

const SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] as const;

/**
 * Words that get their own tokens, bare and after a space, so that ordinary
 * English (such as node-llama-cpp's default system prompt) takes about a
 * token per word rather than a token per byte.
 */
const WORDS = (
  "the of and to a in is it you that he was for on are as with his they I at be this have " +
  "from or one had by word but not what all were we when your can said there use an each " +
  "which she do how their if will up other about out many then them these so some her would " +
  "make like him into time has look two more write go see number no way could people my than " +
  "first water been call who oil its now find long down day did get come made may part " +
  "hello hi world user assistant system model test answer question help helpful respectful " +
  "honest always possible does sense factually coherent explain why instead answering " +
  "something incorrectly know don share false information You Always If The This What Hello " +
  "ing ed er es ly tion"
).split(" ");

const N_EMBD = 32;
const N_HEAD = 2;
const N_HEAD_KV = 2;
const N_FF = 64;
const ALIGNMENT = 32;
const GGML_TYPE_F32 = 0;
const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;

/** GGUF metadata value types. */
const T = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

/**
 * Writes the synthetic model as the bytes of a GGUF v3 file.
 *
 * @param options Seed, context length and other knobs; all optional.
 * @returns The whole file (about 350 KB with the defaults).
 * @throws {RangeError} When an option is out of range.
 *
 * @example
 * ```ts ignore
 * import { syntheticGguf } from "@contenox/modeldconn/daemon";
 *
 * const path = await Deno.makeTempFile({ suffix: ".gguf" });
 * await Deno.writeFile(path, syntheticGguf({ seed: 42 }));
 * ```
 */
export function syntheticGguf(options: SyntheticGgufOptions = {}): Uint8Array {
  const seed = options.seed ?? 1;
  const contextLength = options.contextLength ?? 2048;
  const blockCount = options.blockCount ?? 2;
  const scale = options.weightScale ?? 1;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`seed must be a 32-bit unsigned integer, got ${seed}`);
  }
  if (!Number.isInteger(contextLength) || contextLength < 1 || contextLength > 0xffffffff) {
    throw new RangeError(`contextLength must be a positive 32-bit integer, got ${contextLength}`);
  }
  if (!Number.isInteger(blockCount) || blockCount < 1 || blockCount > 4) {
    throw new RangeError(`blockCount must be 1 to 4, got ${blockCount}`);
  }
  if (!(scale > 0) || !Number.isFinite(scale)) {
    throw new RangeError(`weightScale must be positive, got ${scale}`);
  }

  const tokens: string[] = [...SPECIAL_TOKENS, ...byteTokens()];
  const merges = wordMerges();
  for (const merge of merges) tokens.push(merge.replace(" ", ""));
  const types = tokens.map((_, i) => i < SPECIAL_TOKENS.length ? TOKEN_CONTROL : TOKEN_NORMAL);
  const nVocab = tokens.length;
  const headDim = N_EMBD / N_HEAD;

  const w = new Writer();
  const kvs: Array<(w: Writer) => void> = [];
  const kv = (key: string, type: number, write: (w: Writer) => void) =>
    kvs.push((w) => {
      w.string(key);
      w.u32(type);
      write(w);
    });
  const kvU32 = (key: string, v: number) => kv(key, T.u32, (w) => w.u32(v));
  const kvStr = (key: string, v: string) => kv(key, T.string, (w) => w.string(v));
  const kvBool = (key: string, v: boolean) => kv(key, T.bool, (w) => w.u8(v ? 1 : 0));

  kvStr("general.architecture", "llama");
  kvStr("general.type", "model");
  kvStr("general.name", options.name ?? "synthetic-tiny");
  kvU32("general.alignment", ALIGNMENT);
  kvU32("general.file_type", 0); // LLAMA_FTYPE_ALL_F32
  kvU32("llama.vocab_size", nVocab);
  kvU32("llama.context_length", contextLength);
  kvU32("llama.embedding_length", N_EMBD);
  kvU32("llama.block_count", blockCount);
  kvU32("llama.feed_forward_length", N_FF);
  kvU32("llama.attention.head_count", N_HEAD);
  kvU32("llama.attention.head_count_kv", N_HEAD_KV);
  kv("llama.attention.layer_norm_rms_epsilon", T.f32, (w) => w.f32(1e-5));
  kvU32("llama.rope.dimension_count", headDim);
  kv("llama.rope.freq_base", T.f32, (w) => w.f32(10000));
  kvStr("tokenizer.ggml.model", "gpt2");
  kvStr("tokenizer.ggml.pre", "gpt-2");
  kv("tokenizer.ggml.tokens", T.array, (w) => w.array(T.string, tokens, (s) => w.string(s)));
  kv("tokenizer.ggml.token_type", T.array, (w) => w.array(T.i32, types, (t) => w.i32(t)));
  kv("tokenizer.ggml.merges", T.array, (w) => w.array(T.string, merges, (s) => w.string(s)));
  kvU32("tokenizer.ggml.bos_token_id", SYNTHETIC_TOKENS.bos);
  kvU32("tokenizer.ggml.eos_token_id", SYNTHETIC_TOKENS.eos);
  kvU32("tokenizer.ggml.eot_token_id", SYNTHETIC_TOKENS.eos);
  kvU32("tokenizer.ggml.padding_token_id", SYNTHETIC_TOKENS.pad);
  kvBool("tokenizer.ggml.add_bos_token", false);
  kvBool("tokenizer.ggml.add_eos_token", false);
  kvStr("tokenizer.chat_template", options.chatTemplate ?? CHATML_TEMPLATE);

  // Tensors: dims in ggml order (ne0, the contiguous one, first).
  const rng = mulberry32(seed);
  const tensors: Array<{ name: string; dims: number[]; data: Float32Array }> = [];
  const random = (name: string, dims: number[], amplitude: number) => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (rng() * 2 - 1) * amplitude * scale;
    tensors.push({ name, dims, data });
  };
  const ones = (name: string, n: number) =>
    tensors.push({ name, dims: [n], data: new Float32Array(n).fill(1) });
  const inv = (n: number) => 1 / Math.sqrt(n);

  random("token_embd.weight", [N_EMBD, nVocab], 1);
  for (let b = 0; b < blockCount; b++) {
    const p = `blk.${b}.`;
    ones(`${p}attn_norm.weight`, N_EMBD);
    random(`${p}attn_q.weight`, [N_EMBD, N_EMBD], inv(N_EMBD));
    random(`${p}attn_k.weight`, [N_EMBD, headDim * N_HEAD_KV], inv(N_EMBD));
    random(`${p}attn_v.weight`, [N_EMBD, headDim * N_HEAD_KV], inv(N_EMBD));
    random(`${p}attn_output.weight`, [N_EMBD, N_EMBD], inv(N_EMBD));
    ones(`${p}ffn_norm.weight`, N_EMBD);
    random(`${p}ffn_gate.weight`, [N_EMBD, N_FF], inv(N_EMBD));
    random(`${p}ffn_up.weight`, [N_EMBD, N_FF], inv(N_EMBD));
    random(`${p}ffn_down.weight`, [N_FF, N_EMBD], inv(N_FF));
  }
  ones("output_norm.weight", N_EMBD);
  random("output.weight", [N_EMBD, nVocab], 2);

  // Header.
  w.bytes(new TextEncoder().encode("GGUF"));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kvs.length);
  for (const write of kvs) write(w);

  // Tensor infos, with offsets relative to the aligned data section.
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(offset);
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE_F32);
    w.u64(offset);
    offset = alignUp(offset + t.data.byteLength, ALIGNMENT);
  }
  w.pad(ALIGNMENT);
  const dataStart = w.length;
  for (let i = 0; i < tensors.length; i++) {
    w.pad(ALIGNMENT);
    if (w.length - dataStart !== offsets[i]) throw new Error("internal: tensor offset mismatch");
    for (const v of tensors[i].data) w.f32(v);
  }
  w.pad(ALIGNMENT);
  return w.finish();
}

/** A metadata value as {@linkcode readGgufMetadata} returns it. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** The header and key/value section of a GGUF file. */
export interface GgufMetadata {
  /** The format version (3 for files from {@linkcode syntheticGguf}). */
  version: number;
  /** The number of tensors the file declares. */
  tensorCount: bigint;
  /** Every key/value pair; 64-bit integers as `bigint`, the rest as `number`. */
  metadata: Record<string, GgufValue>;
}

/**
 * Parses the header and metadata key/value section of a GGUF file (v2 or
 * v3, little-endian). Tensor infos and data are not read.
 *
 * @param bytes The file, or at least its header and metadata.
 * @returns The version, tensor count and metadata.
 * @throws {Error} When the magic is not `GGUF` or the section is truncated.
 *
 * @example
 * ```ts ignore
 * import { readGgufMetadata, syntheticGguf } from "./synthetic_gguf.ts";
 *
 * const { metadata } = readGgufMetadata(syntheticGguf());
 * console.assert(metadata["general.architecture"] === "llama");
 * ```
 */
export function readGgufMetadata(bytes: Uint8Array): GgufMetadata {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let at = 0;
  const take = (n: number): number => {
    if (at + n > bytes.length) throw new Error(`GGUF truncated at byte ${at}`);
    const start = at;
    at += n;
    return start;
  };
  const u32 = () => view.getUint32(take(4), true);
  const u64 = () => view.getBigUint64(take(8), true);
  const count = () => Number(u64());
  const string = () => {
    const n = count();
    const start = take(n);
    return decoder.decode(bytes.subarray(start, start + n));
  };
  const value = (type: number): GgufValue => {
    switch (type) {
      case T.u8:
        return view.getUint8(take(1));
      case T.i8:
        return view.getInt8(take(1));
      case T.u16:
        return view.getUint16(take(2), true);
      case T.i16:
        return view.getInt16(take(2), true);
      case T.u32:
        return view.getUint32(take(4), true);
      case T.i32:
        return view.getInt32(take(4), true);
      case T.f32:
        return view.getFloat32(take(4), true);
      case T.bool:
        return view.getUint8(take(1)) !== 0;
      case T.string:
        return string();
      case T.array: {
        const itemType = u32();
        const n = count();
        const items: GgufValue[] = [];
        for (let i = 0; i < n; i++) items.push(value(itemType));
        return items;
      }
      case T.u64:
        return view.getBigUint64(take(8), true);
      case T.i64:
        return view.getBigInt64(take(8), true);
      case T.f64:
        return view.getFloat64(take(8), true);
      default:
        throw new Error(`unknown GGUF value type ${type} at byte ${at - 4}`);
    }
  };

  if (u32() !== 0x46554747) throw new Error("not a GGUF file (bad magic)");
  const version = u32();
  const tensorCount = u64();
  const kvCount = count();
  const metadata: Record<string, GgufValue> = {};
  for (let i = 0; i < kvCount; i++) {
    const key = string();
    metadata[key] = value(u32());
  }
  return { version, tensorCount, metadata };
}

/** The 256 byte tokens in GPT-2's byte-to-unicode form, in byte order. */
function byteTokens(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(printable(b) ? b : next++));
  return out;
}

/**
 * BPE merges that build every entry of {@linkcode WORDS}, after a space (the
 * GPT-2 symbol "Ġ") and bare, left to right one character at a time. The
 * space-prefixed merges rank first: every merge among them starts with "Ġ",
 * so inside a pre-token like " assistant" only the one chain from its leading
 * space applies and a listed word always becomes one token. Bare merges rank
 * after them, longer words first. Every merge result is a distinct token.
 */
function wordMerges(): string[] {
  const seen = new Set<string>();
  const merges: string[] = [];
  const chain = (form: string) => {
    const chars = [...form];
    for (let n = 2; n <= chars.length; n++) {
      const left = chars.slice(0, n - 1).join("");
      if (seen.has(left + chars[n - 1])) continue;
      seen.add(left + chars[n - 1]);
      merges.push(`${left} ${chars[n - 1]}`);
    }
  };
  for (const word of WORDS) chain(`\u0120${word}`);
  for (const word of [...WORDS].sort((a, b) => b.length - a.length)) chain(word);
  return merges;
}

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** A growable little-endian byte writer. */
class Writer {
  #buf = new Uint8Array(1 << 16);
  #view = new DataView(this.#buf.buffer);
  #len = 0;
  #encoder = new TextEncoder();

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): number {
    if (this.#len + n > this.#buf.length) {
      let size = this.#buf.length * 2;
      while (size < this.#len + n) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    const at = this.#len;
    this.#len += n;
    return at;
  }

  u8(v: number): void {
    const at = this.#reserve(1);
    this.#view.setUint8(at, v);
  }
  u32(v: number): void {
    const at = this.#reserve(4);
    this.#view.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.#reserve(4);
    this.#view.setInt32(at, v, true);
  }
  u64(v: number): void {
    const at = this.#reserve(8);
    this.#view.setBigUint64(at, BigInt(v), true);
  }
  f32(v: number): void {
    const at = this.#reserve(4);
    this.#view.setFloat32(at, v, true);
  }
  bytes(b: Uint8Array): void {
    const at = this.#reserve(b.length);
    this.#buf.set(b, at);
  }
  string(s: string): void {
    const b = this.#encoder.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  array<V>(type: number, items: readonly V[], write: (v: V) => void): void {
    this.u32(type);
    this.u64(items.length);
    for (const item of items) write(item);
  }
  pad(to: number): void {
    this.#reserve(alignUp(this.#len, to) - this.#len);
  }
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}
