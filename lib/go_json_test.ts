import assert from "node:assert/strict";
import { create, fromJsonString, toJson } from "@bufbuild/protobuf";
import {
  ActiveModelSchema,
  DecodeRequestSchema,
  EmbedResponseSchema,
  HealthRequestSchema,
  LoadModelRequestSchema,
  OpenSessionRequestSchema,
  PushModelChunkSchema,
  SessionSnapshotSchema,
  SuffixInputSchema,
} from "../gen/contenox/transport/v1/compute_pb.ts";
import { InvalidArgumentError } from "./errors.ts";
import { quoteUnsafeIntegers, toGoJson } from "./go_json.ts";

const read = <T extends Parameters<typeof fromJsonString>[0]>(schema: T, text: string) =>
  fromJsonString(schema, quoteUnsafeIntegers(text), { ignoreUnknownFields: true });

Deno.test("empty request encodes as {} (Go rejects a zero-length message)", () => {
  const msg = create(HealthRequestSchema, {});
  assert.equal(toGoJson(HealthRequestSchema, toJson(HealthRequestSchema, msg)), "{}");
});

Deno.test("keys are the exact Go keys: untagged Go names and snake_case tags", () => {
  const msg = create(OpenSessionRequestSchema, {
    ownerInstanceId: "i",
    modelName: "m",
    type: "llama",
    path: "/p",
    config: { numCtx: 100, kvCacheType: "q8_0", disableBos: true, tensorSplit: [0.5, 0.5] },
  });
  const text = toGoJson(OpenSessionRequestSchema, toJson(OpenSessionRequestSchema, msg));
  assert.deepEqual(JSON.parse(text), {
    owner_instance_id: "i",
    model_name: "m",
    type: "llama",
    path: "/p",
    config: { NumCtx: 100, TensorSplit: [0.5, 0.5], KVCacheType: "q8_0", DisableBOS: true },
  });
});

Deno.test("64-bit integers go out as bare JSON numbers, exact beyond 2^53", () => {
  const msg = create(LoadModelRequestSchema, { expectedGeneration: 2n ** 64n - 1n });
  const text = toGoJson(LoadModelRequestSchema, toJson(LoadModelRequestSchema, msg));
  assert.equal(text, '{"expected_generation":18446744073709551615}');
  const decode = create(DecodeRequestSchema, { handle: "h", config: { seed: -(2n ** 62n) } });
  const decodeText = toGoJson(DecodeRequestSchema, toJson(DecodeRequestSchema, decode));
  assert.match(decodeText, /"Seed":-4611686018427387904[,}]/);
});

Deno.test("int64 inside repeated messages and nested messages are bare too", () => {
  const msg = create(SessionSnapshotSchema, {
    coldKvBlocks: [{ lastUsed: 9007199254740993n, kv: new Uint8Array([0, 255]) }],
  });
  const text = toGoJson(SessionSnapshotSchema, toJson(SessionSnapshotSchema, msg));
  assert.match(text, /"last_used":9007199254740993/);
  assert.match(text, /"kv":"AP8="/, "bytes are padded standard base64");
});

Deno.test("optional pointers: set-to-zero is sent, unset is omitted", () => {
  const on = create(SuffixInputSchema, { enableThinking: false });
  assert.match(
    toGoJson(SuffixInputSchema, toJson(SuffixInputSchema, on)),
    /"EnableThinking":false/,
  );
  const off = create(SuffixInputSchema, {});
  assert.doesNotMatch(
    toGoJson(SuffixInputSchema, toJson(SuffixInputSchema, off)),
    /EnableThinking/,
  );
  const temp = create(DecodeRequestSchema, { config: { temperature: 0 } });
  assert.match(toGoJson(DecodeRequestSchema, toJson(DecodeRequestSchema, temp)), /"Temperature":0/);
});

Deno.test("NaN and Infinity are refused with a typed error before anything is sent", () => {
  const msg = create(DecodeRequestSchema, { config: { temperature: Number.NaN } });
  assert.throws(
    () => toGoJson(DecodeRequestSchema, toJson(DecodeRequestSchema, msg)),
    InvalidArgumentError,
  );
});

Deno.test("non-ASCII text survives the round trip", () => {
  const msg = create(PushModelChunkSchema, { manifest: { name: "模型-é-🚀", type: "llama" } });
  const text = toGoJson(PushModelChunkSchema, toJson(PushModelChunkSchema, msg));
  assert.equal(read(PushModelChunkSchema, text).manifest?.name, "模型-é-🚀");
});

Deno.test("incoming integers beyond 2^53 stay exact", () => {
  const text =
    '{"model_name":"m","config":{"NumCtx":4096,"TensorSplit":null},"generation":18446744073709551615}';
  const active = read(ActiveModelSchema, text);
  assert.equal(active.generation, 18446744073709551615n);
  assert.equal(active.config?.numCtx, 4096);
  assert.deepEqual(active.config?.tensorSplit, [], "Go's null slice reads as empty");
});

Deno.test("quoteUnsafeIntegers leaves strings, floats and safe integers alone", () => {
  const text =
    '{"a":"12345678901234567890","b":1.5e300,"c":-9007199254740991,"d":-9007199254740993,"e":[1,22222222222222222222]}';
  assert.equal(
    quoteUnsafeIntegers(text),
    '{"a":"12345678901234567890","b":1.5e300,"c":-9007199254740991,"d":"-9007199254740993","e":[1,"22222222222222222222"]}',
  );
  assert.equal(
    quoteUnsafeIntegers('{"s":"a\\"1234567890123456789"}'),
    '{"s":"a\\"1234567890123456789"}',
  );
});

Deno.test("unknown keys from newer daemons are ignored, float32 vectors read as numbers", () => {
  const res = read(EmbedResponseSchema, '{"vector":[1,2.5,-3],"future_field":{"x":1}}');
  assert.deepEqual(res.vector, [1, 2.5, -3]);
});

Deno.test("snapshot state: v0.32.4-v0.32.8 inline base64 round-trips; empty is omitted", () => {
  const inline = read(SessionSnapshotSchema, '{"state":"AAH/","resident_tokens":3,"manifest":{}}');
  assert.deepEqual(inline.state, new Uint8Array([0, 1, 255]));
  const back = toGoJson(SessionSnapshotSchema, toJson(SessionSnapshotSchema, inline));
  assert.match(back, /"state":"AAH\/"/);
  const modern = create(SessionSnapshotSchema, { stateId: "deadbeef" });
  assert.doesNotMatch(
    toGoJson(SessionSnapshotSchema, toJson(SessionSnapshotSchema, modern)),
    /"state"/,
  );
});
