import assert from "node:assert/strict";
import {
  CHATML_TEMPLATE,
  readGgufMetadata,
  SYNTHETIC_TOKENS,
  syntheticGguf,
} from "./synthetic_gguf.ts";

const bytes = syntheticGguf();
const { version, tensorCount, metadata } = readGgufMetadata(bytes);

Deno.test("synthetic GGUF: magic, version 3 and aligned size under 1 MB", () => {
  assert.deepEqual([...bytes.subarray(0, 4)], [0x47, 0x47, 0x55, 0x46]); // "GGUF"
  assert.equal(version, 3);
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true), 3);
  assert.ok(bytes.length < 1024 * 1024, `size ${bytes.length}`);
  assert.equal(bytes.length % 32, 0);
  assert.equal(tensorCount, 2n + 2n * 9n + 1n);
});

Deno.test("synthetic GGUF: deterministic per options, different per seed", () => {
  assert.deepEqual(syntheticGguf(), bytes);
  assert.deepEqual(syntheticGguf({ seed: 1 }), bytes);
  const other = syntheticGguf({ seed: 2 });
  assert.equal(other.length, bytes.length);
  assert.notDeepEqual(other, bytes);
  assert.deepEqual(syntheticGguf({ seed: 2 }), other);
});

Deno.test("synthetic GGUF: llama metadata and ChatML template read back", () => {
  assert.equal(metadata["general.architecture"], "llama");
  assert.equal(metadata["general.name"], "synthetic-tiny");
  assert.equal(metadata["general.alignment"], 32);
  assert.equal(metadata["llama.context_length"], 2048);
  assert.equal(metadata["llama.block_count"], 2);
  assert.equal(metadata["tokenizer.chat_template"], CHATML_TEMPLATE);
  assert.ok(CHATML_TEMPLATE.includes("{% if add_generation_prompt %}"));

  const custom = readGgufMetadata(syntheticGguf({ contextLength: 512, blockCount: 1 })).metadata;
  assert.equal(custom["llama.context_length"], 512);
  assert.equal(custom["llama.block_count"], 1);
});

Deno.test("synthetic GGUF: byte-level vocabulary with ChatML control tokens", () => {
  const tokens = metadata["tokenizer.ggml.tokens"];
  const types = metadata["tokenizer.ggml.token_type"];
  const merges = metadata["tokenizer.ggml.merges"];
  assert.ok(Array.isArray(tokens) && Array.isArray(types) && Array.isArray(merges));
  assert.equal(metadata["llama.vocab_size"], tokens.length);
  assert.equal(types.length, tokens.length);
  assert.equal(tokens[SYNTHETIC_TOKENS.endOfText], "<|endoftext|>");
  assert.equal(tokens[SYNTHETIC_TOKENS.imStart], "<|im_start|>");
  assert.equal(tokens[SYNTHETIC_TOKENS.imEnd], "<|im_end|>");
  assert.deepEqual(types.slice(0, 4), [3, 3, 3, 1]);
  assert.equal(metadata["tokenizer.ggml.bos_token_id"], SYNTHETIC_TOKENS.bos);
  assert.equal(metadata["tokenizer.ggml.eos_token_id"], SYNTHETIC_TOKENS.eos);
  assert.equal(metadata["tokenizer.ggml.add_bos_token"], false);
  // Every byte has a token ("Ġ" is the space byte, "Ċ" the newline byte).
  assert.equal(tokens[3 + 0x41], "A");
  assert.equal(tokens[3 + 0x20], "\u0120");
  assert.equal(tokens[3 + 0x0a], "\u010a");
  assert.equal(new Set(tokens.slice(3, 3 + 256)).size, 256);
  // Every merge joins two known tokens into a known token; no duplicates.
  const vocab = new Set(tokens);
  assert.equal(vocab.size, tokens.length);
  for (const merge of merges) {
    assert.equal(typeof merge, "string");
    const [left, right] = (merge as string).split(" ");
    assert.ok(vocab.has(left) && vocab.has(right) && vocab.has(left + right), String(merge));
  }
  assert.ok(vocab.has("\u0120assistant"));
});

Deno.test("synthetic GGUF: options out of range are refused", () => {
  assert.throws(() => syntheticGguf({ seed: -1 }), RangeError);
  assert.throws(() => syntheticGguf({ contextLength: 0 }), RangeError);
  assert.throws(() => syntheticGguf({ blockCount: 5 }), RangeError);
  assert.throws(() => syntheticGguf({ weightScale: 0 }), RangeError);
});

Deno.test("readGgufMetadata: refuses a file that is not GGUF or is truncated", () => {
  assert.throws(() => readGgufMetadata(new Uint8Array(16)), /bad magic/);
  assert.throws(() => readGgufMetadata(bytes.subarray(0, 100)), /truncated/);
});
