import assert from "node:assert/strict";
import {
  create,
  type DescMessage,
  equals,
  fromJsonString,
  getOption,
  type MessageInitShape,
  type MessageShape,
  ScalarType,
  toJson,
} from "@bufbuild/protobuf";
import {
  ActiveModelSchema,
  Compute,
  DecodeRequestSchema,
  EmbedResponseSchema,
  HealthRequestSchema,
  LoadModelRequestSchema,
  OpenSessionRequestSchema,
  PushModelChunkSchema,
  SessionSnapshotSchema,
  SuffixInputSchema,
} from "../gen/contenox/transport/v1/compute_pb.ts";
import { go_int } from "../gen/contenox/transport/v1/compute_pb.ts";
import { InvalidArgumentError } from "./errors.ts";
import { goJson, goJsonBytes, quoteUnsafeIntegers, readGoJson } from "./go_json.ts";

const read = <T extends Parameters<typeof fromJsonString>[0]>(schema: T, text: string) =>
  fromJsonString(schema, quoteUnsafeIntegers(text), { ignoreUnknownFields: true });

Deno.test("empty request encodes as {} (Go rejects a zero-length message)", () => {
  const msg = create(HealthRequestSchema, {});
  assert.equal(goJson(HealthRequestSchema, msg), "{}");
});

Deno.test("keys are the exact Go keys: untagged Go names and snake_case tags", () => {
  const msg = create(OpenSessionRequestSchema, {
    ownerInstanceId: "i",
    modelName: "m",
    type: "llama",
    path: "/p",
    config: { numCtx: 100, kvCacheType: "q8_0", disableBos: true, tensorSplit: [0.5, 0.5] },
  });
  const text = goJson(OpenSessionRequestSchema, msg);
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
  const text = goJson(LoadModelRequestSchema, msg);
  assert.equal(text, '{"expected_generation":18446744073709551615}');
  const decode = create(DecodeRequestSchema, { handle: "h", config: { seed: -(2n ** 62n) } });
  const decodeText = goJson(DecodeRequestSchema, decode);
  assert.match(decodeText, /"Seed":-4611686018427387904[,}]/);
});

Deno.test("int64 inside repeated messages and nested messages are bare too", () => {
  const msg = create(SessionSnapshotSchema, {
    coldKvBlocks: [{ lastUsed: 9007199254740993n, kv: new Uint8Array([0, 255]) }],
  });
  const text = goJson(SessionSnapshotSchema, msg);
  assert.match(text, /"last_used":9007199254740993/);
  assert.match(text, /"kv":"AP8="/, "bytes are padded standard base64");
});

Deno.test("optional pointers: set-to-zero is sent, unset is omitted", () => {
  const on = create(SuffixInputSchema, { enableThinking: false });
  assert.match(
    goJson(SuffixInputSchema, on),
    /"EnableThinking":false/,
  );
  const off = create(SuffixInputSchema, {});
  assert.doesNotMatch(
    goJson(SuffixInputSchema, off),
    /EnableThinking/,
  );
  const temp = create(DecodeRequestSchema, { config: { temperature: 0 } });
  assert.match(goJson(DecodeRequestSchema, temp), /"Temperature":0/);
});

Deno.test("NaN and Infinity are refused with a typed error before anything is sent", () => {
  const msg = create(DecodeRequestSchema, { config: { temperature: Number.NaN } });
  assert.throws(
    () => goJson(DecodeRequestSchema, msg),
    InvalidArgumentError,
  );
});

Deno.test("non-ASCII text survives the round trip", () => {
  const msg = create(PushModelChunkSchema, { manifest: { name: "模型-é-🚀", type: "llama" } });
  const text = goJson(PushModelChunkSchema, msg);
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
  const back = goJson(SessionSnapshotSchema, inline);
  assert.match(back, /"state":"AAH\/"/);
  const modern = create(SessionSnapshotSchema, { stateId: "deadbeef" });
  assert.doesNotMatch(
    goJson(SessionSnapshotSchema, modern),
    /"state"/,
  );
});

/** A message of `desc` with every field set to a random value of its kind (lists 0–3 long). */
function randomMessage(
  desc: DescMessage,
  rand: () => number,
  depth = 0,
): MessageShape<DescMessage> {
  const init: Record<string, unknown> = {};
  const scalar = (type: ScalarType): unknown => {
    const r = rand();
    switch (type) {
      case ScalarType.STRING:
        return ["", "a", 'q"\\\n\u2028<&>', "模型-é-🚀", "x".repeat(Math.floor(r * 300))][
          Math.floor(r * 5)
        ];
      case ScalarType.BYTES:
        return Uint8Array.from({ length: Math.floor(r * 9) }, () => Math.floor(rand() * 256));
      case ScalarType.BOOL:
        return r < 0.5;
      case ScalarType.DOUBLE:
      case ScalarType.FLOAT:
        return r < 0.3 ? 0 : r < 0.6 ? Math.round(r * 1e6) : Math.fround(r * 1e3 - 500);
      case ScalarType.INT64:
      case ScalarType.SINT64:
      case ScalarType.SFIXED64:
        return r < 0.3 ? 0n : BigInt(Math.floor(r * 2 ** 53)) * (r < 0.6 ? -1n : 1n) * 1024n;
      case ScalarType.UINT64:
      case ScalarType.FIXED64:
        return r < 0.3 ? 0n : 2n ** 64n - 1n - BigInt(Math.floor(r * 1000));
      default:
        return r < 0.3 ? 0 : Math.floor(r * 1000);
    }
  };
  for (const field of desc.fields) {
    if (rand() < 0.3) continue;
    switch (field.fieldKind) {
      case "scalar": {
        let v = scalar(field.scalar);
        // go_int doubles are whole numbers on the wire.
        if (typeof v === "number" && getOption(field, go_int)) v = Math.round(v);
        init[field.localName] = v;
        break;
      }
      case "message":
        if (depth < 3) init[field.localName] = randomMessage(field.message, rand, depth + 1);
        break;
      case "list": {
        const n = Math.floor(rand() * 4);
        init[field.localName] = Array.from({ length: n }, () => {
          if (field.listKind === "message") return randomMessage(field.message, rand, depth + 1);
          const v = scalar(field.listKind === "scalar" ? field.scalar : ScalarType.INT32);
          return typeof v === "number" && getOption(field, go_int) ? Math.round(v) : v;
        });
        break;
      }
    }
  }
  return create(desc, init as MessageInitShape<DescMessage>);
}

Deno.test("every Compute message: goJson reads back equal, with protobuf-es's keys in its order", () => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const descs = new Set<DescMessage>();
  for (const method of Compute.methods) descs.add(method.input).add(method.output);
  const keys = (v: unknown): unknown =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.entries(v).map(([k, x]) => [k, keys(x)])
      : Array.isArray(v)
      ? v.map(keys)
      : null;
  let checked = 0;
  for (const desc of descs) {
    for (let i = 0; i < 40; i++) {
      const msg = randomMessage(desc, rand);
      const text = goJson(desc, msg);
      assert.ok(equals(desc, readGoJson(desc, text), msg), `${desc.name}: ${text}`);
      assert.deepEqual(keys(JSON.parse(text)), keys(toJson(desc, msg)), desc.name);
      // Bare 64-bit integers: protobuf-es quotes them; Go must not see quotes.
      assert.doesNotMatch(text, /:"-?\d{16,}"/, desc.name);
      checked++;
    }
  }
  assert.ok(checked > 1000);
});

Deno.test("bytes are standard padded base64 at every length, written into the envelope once", () => {
  for (let n = 0; n < 70; n++) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
    const msg = create(PushModelChunkSchema, { data });
    const bytes = goJsonBytes(PushModelChunkSchema, msg, 5);
    const text = new TextDecoder().decode(bytes.subarray(5));
    assert.equal(text, n === 0 ? "{}" : `{"data":"${btoa(String.fromCharCode(...data))}"}`);
  }
});

Deno.test("large bytes fields (V8's native base64 in 48 KiB steps) match protobuf-es's base64", () => {
  for (const n of [3 * 16 * 1024 + 1, 3 * 16 * 1024 * 3 + 2, 1 << 20, (1 << 20) + 1]) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 131 + (i >> 8)) & 255);
    const msg = create(PushModelChunkSchema, { data });
    const expected = (toJson(PushModelChunkSchema, msg) as { data: string }).data;
    assert.equal(goJson(PushModelChunkSchema, msg), `{"data":"${expected}"}`, `length ${n}`);
  }
});
