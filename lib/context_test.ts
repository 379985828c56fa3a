/**
 * Tests for lib/context.ts. The GO_FIXTURES were produced by the Go runtime
 * itself: a throwaway test (kept in /tmp, not in this repo) in
 * github.com/contenox/runtime/runtime/modelrepo/llama at v0.36.0 and v0.32.3
 * called buildPromptPlan(messages, Config{}, promptIdentity{BackendVersion:
 * backendVersion()}, serializeToolDefs(tools)) for the conversations in CASES
 * and dumped the texts, the tools JSON, json.Marshal(manifest) and
 * manifest.Digest().
 */

import assert from "node:assert/strict";
import { create, type DescMessage, toBinary, toJson } from "@bufbuild/protobuf";
import { PrefixInputSchema, SuffixInputSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
import {
  buildContext,
  type ChatMessage,
  defaultManifestIdentity,
  manifestDigest,
  manifestGoJson,
  type PromptPlanner,
  type ToolDefinition,
  utf8ByteLength,
} from "./context.ts";
import { InvalidArgumentError } from "./errors.ts";

const GO_FIXTURES: Record<
  PromptPlanner,
  Record<string, {
    stable: string;
    volatile: string;
    tools: string;
    manifestJson: string;
    digest: string;
  }>
> = {
  "v0.36.0": {
    "basic": {
      "stable": "You are terse.",
      "volatile": "Hi",
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","backend_version":"llamacpp-direct","prompt_format":"chatml","prompt_template_digest":"09c5f39bd7cf40d7e9e3ce016c022173a8fde3d5660026bbec37f04d32fedb43","runtime_digest":"449082c3ac584cf2d80ba44497cc35e1fdeba0f8f298bc0eb376f0eb9a539960","add_bos":true,"stable_bytes":14,"total_bytes":16,"stable_byte_hash":"97dd3b604bbdd384a65068c64b6e130c0a1b28c206cc82982b9703774702f24b","segments":[{"kind":"system","stable":true,"cache_class":"task_pinned","byte_start":0,"byte_end":14,"byte_hash":"97dd3b604bbdd384a65068c64b6e130c0a1b28c206cc82982b9703774702f24b"},{"kind":"user","stable":false,"cache_class":"volatile","byte_start":14,"byte_end":16,"byte_hash":"3639efcd08abb273b1619e82e78c29a7df02c1051b1820e99fc395dcaa3326b8"}]}',
      "digest": "c4278cc57410c1c77f65f30bf93c5790451f5b8d8fad298102583946e93942e8",
    },
    "empty": {
      "stable": "",
      "volatile": "",
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","backend_version":"llamacpp-direct","prompt_format":"chatml","prompt_template_digest":"09c5f39bd7cf40d7e9e3ce016c022173a8fde3d5660026bbec37f04d32fedb43","runtime_digest":"449082c3ac584cf2d80ba44497cc35e1fdeba0f8f298bc0eb376f0eb9a539960","add_bos":true,"stable_bytes":0,"total_bytes":0,"stable_byte_hash":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}',
      "digest": "5afe50e8f3a5d2a794a5e71b5ee3d9b21d5d0a617264e160de17a9b4626ca858",
    },
    "nosystem": {
      "stable": "",
      "volatile": "Assistant message:\nI start\n\nx",
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","backend_version":"llamacpp-direct","prompt_format":"chatml","prompt_template_digest":"09c5f39bd7cf40d7e9e3ce016c022173a8fde3d5660026bbec37f04d32fedb43","runtime_digest":"449082c3ac584cf2d80ba44497cc35e1fdeba0f8f298bc0eb376f0eb9a539960","add_bos":true,"stable_bytes":0,"total_bytes":29,"stable_byte_hash":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","segments":[{"kind":"user","stable":false,"cache_class":"volatile","byte_start":0,"byte_end":29,"byte_hash":"477b562c9b48cc87500602f88da562de0101ef3f02ad103f2f2c2f68bb52d812"}]}',
      "digest": "d1ea76587384aa619ccdf4e5e2c3099b5275b8eac690345dc942a290592a4956",
    },
    "systemonly": {
      "stable": "Only system",
      "volatile": "",
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","backend_version":"llamacpp-direct","prompt_format":"chatml","prompt_template_digest":"09c5f39bd7cf40d7e9e3ce016c022173a8fde3d5660026bbec37f04d32fedb43","runtime_digest":"449082c3ac584cf2d80ba44497cc35e1fdeba0f8f298bc0eb376f0eb9a539960","add_bos":true,"stable_bytes":11,"total_bytes":11,"stable_byte_hash":"7ff3dcd857a48b0417e5a96be19a1157415ea135d3a8feb238e62694f4f3a65e","segments":[{"kind":"system","stable":true,"cache_class":"task_pinned","byte_start":0,"byte_end":11,"byte_hash":"7ff3dcd857a48b0417e5a96be19a1157415ea135d3a8feb238e62694f4f3a65e"}]}',
      "digest": "268ffd469e059815ac714a6b4052fd49b1050ffcd3ea3208068fdccd94d3bcac",
    },
    "tools": {
      "stable": "Use tools.",
      "volatile": "Weather in Paris?18°CThanks",
      "tools":
        '[{"type":"function","function":{"name":"weather","description":"Get \\u003cweather\\u003e \\u0026 more","parameters":{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}}},{"type":"function","function":{"name":"noop","description":"","parameters":{"additionalProperties":true,"type":"object"}}}]',
      "manifestJson":
        '{"backend":"llamacpp","backend_version":"llamacpp-direct","prompt_format":"chatml","prompt_template_digest":"09c5f39bd7cf40d7e9e3ce016c022173a8fde3d5660026bbec37f04d32fedb43","runtime_digest":"449082c3ac584cf2d80ba44497cc35e1fdeba0f8f298bc0eb376f0eb9a539960","add_bos":true,"stable_bytes":10,"total_bytes":38,"stable_byte_hash":"a5ee3945c96e70edab9dec4e662e39b0aa26270d4b77a14ed5f836ca5724c2d1","segments":[{"kind":"system","stable":true,"cache_class":"task_pinned","byte_start":0,"byte_end":10,"byte_hash":"a5ee3945c96e70edab9dec4e662e39b0aa26270d4b77a14ed5f836ca5724c2d1"},{"kind":"user","stable":false,"cache_class":"volatile","byte_start":10,"byte_end":27,"byte_hash":"c80a6b5cbcb65f69fd5bd979a8e85d1fc42c4a9899fc74eb7a901f1a4ff5757b"},{"kind":"assistant","stable":false,"cache_class":"volatile","byte_start":27,"byte_end":27,"byte_hash":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","tool_calls_json":"[{\\"id\\":\\"c1\\",\\"type\\":\\"function\\",\\"function\\":{\\"name\\":\\"weather\\",\\"arguments\\":\\"{\\\\\\"city\\\\\\":\\\\\\"Paris\\\\\\"}\\"}},{\\"type\\":\\"function\\",\\"function\\":{\\"name\\":\\"noop\\",\\"arguments\\":\\"{}\\"}}]"},{"kind":"tool","stable":false,"cache_class":"volatile","byte_start":27,"byte_end":32,"byte_hash":"843d58449c42b431a5ee09b4dd3f040df7625e44e40da192c5b0105683628530","tool_call_id":"c1"},{"kind":"user","stable":false,"cache_class":"volatile","byte_start":32,"byte_end":38,"byte_hash":"bb47b8ff5f623996f8f46b80933095a90e29a5bb4442ac09498c9e9e8fc1cbf4"}]}',
      "digest": "083dd6848fddfd0ba5998c26a79f850c447fe38e6ab1d1a20f80e5bae637bfd6",
    },
    "toolsflat": {
      "stable": "Use tools.",
      "volatile":
        'Weather in Paris?Assistant requested tool calls:\n[{"id":"c1","type":"function","function":{"name":"weather","arguments":"{\\"city\\":\\"Paris\\"}"}},{"type":"function","function":{"name":"noop","arguments":"{}"}}]Tool result for c1:\n18°C\n\nThanks',
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","backend_version":"llamacpp-direct","prompt_format":"chatml","prompt_template_digest":"09c5f39bd7cf40d7e9e3ce016c022173a8fde3d5660026bbec37f04d32fedb43","runtime_digest":"449082c3ac584cf2d80ba44497cc35e1fdeba0f8f298bc0eb376f0eb9a539960","add_bos":true,"stable_bytes":10,"total_bytes":252,"stable_byte_hash":"a5ee3945c96e70edab9dec4e662e39b0aa26270d4b77a14ed5f836ca5724c2d1","segments":[{"kind":"system","stable":true,"cache_class":"task_pinned","byte_start":0,"byte_end":10,"byte_hash":"a5ee3945c96e70edab9dec4e662e39b0aa26270d4b77a14ed5f836ca5724c2d1"},{"kind":"user","stable":false,"cache_class":"volatile","byte_start":10,"byte_end":27,"byte_hash":"c80a6b5cbcb65f69fd5bd979a8e85d1fc42c4a9899fc74eb7a901f1a4ff5757b"},{"kind":"assistant","stable":false,"cache_class":"volatile","byte_start":27,"byte_end":219,"byte_hash":"2738d810edb55a68cd0f3d305c510ed76caffef7ae2cfcb44de8ba62f4f85f14"},{"kind":"user","stable":false,"cache_class":"volatile","byte_start":219,"byte_end":252,"byte_hash":"e7380f1327eb69a2d13dcbf4da37b92d543a353312ffe7bacf08fc9d1be90861"}]}',
      "digest": "9bf1b96b114f9d48365f0db9a3aea9e7cae58416715d06231aeeb87d6c8065f7",
    },
    "unicode": {
      "stable": "Sys one\n\nRègles: 日本語\n\nlate sys",
      "volatile": "héllo 😀ok <b>& again\n\nand again",
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","backend_version":"llamacpp-direct","prompt_format":"chatml","prompt_template_digest":"09c5f39bd7cf40d7e9e3ce016c022173a8fde3d5660026bbec37f04d32fedb43","runtime_digest":"449082c3ac584cf2d80ba44497cc35e1fdeba0f8f298bc0eb376f0eb9a539960","add_bos":true,"stable_bytes":37,"total_bytes":74,"stable_byte_hash":"aa21bdc286acf15345c78a1f2deab36f134203ae45f377533a82c492df20d0c9","segments":[{"kind":"system","stable":true,"cache_class":"task_pinned","byte_start":0,"byte_end":37,"byte_hash":"aa21bdc286acf15345c78a1f2deab36f134203ae45f377533a82c492df20d0c9"},{"kind":"user","stable":false,"cache_class":"volatile","byte_start":37,"byte_end":48,"byte_hash":"a53c56966616f0ec3ed9db7ea07a6034430149528bbaba8966c284f9373669c2"},{"kind":"assistant","stable":false,"cache_class":"volatile","byte_start":48,"byte_end":58,"byte_hash":"96ae377eaa0fbb51fa4a231c68c284a93bb8299ca58509ca77c27d24b5d01655"},{"kind":"user","stable":false,"cache_class":"volatile","byte_start":58,"byte_end":74,"byte_hash":"2721717a174762d9e302e25bf2afe8cf83d2e5e96c300b8320c311a0043432e1"}]}',
      "digest": "91b45d8498e9bf3583c18346e1fdc5681c94776e096a1e649b1fdf17208c293c",
    },
  },
  "v0.32.3": {
    "basic": {
      "stable": "You are terse.",
      "volatile": "Hi",
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","prompt_format":"chatml","prompt_template_digest":"ce35b2339554bd5a79e111e3111e2d14f61d47e3fbf625efcaef03fd8b8fad74","runtime_digest":"f3212f5cd8a5928661fd4e641830b88cf463b3e3252c900794c045ea8647bff0","add_bos":true,"stable_bytes":14,"total_bytes":16,"stable_byte_hash":"97dd3b604bbdd384a65068c64b6e130c0a1b28c206cc82982b9703774702f24b","segments":[{"kind":"system","stable":true,"byte_start":0,"byte_end":14,"byte_hash":"97dd3b604bbdd384a65068c64b6e130c0a1b28c206cc82982b9703774702f24b"},{"kind":"user","stable":false,"byte_start":14,"byte_end":16,"byte_hash":"3639efcd08abb273b1619e82e78c29a7df02c1051b1820e99fc395dcaa3326b8"}]}',
      "digest": "07988c6304281e8a278c2c3dda11286e11cfd7e8a7adffee193d92aad9d2f0b5",
    },
    "empty": {
      "stable": "",
      "volatile": "",
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","prompt_format":"chatml","prompt_template_digest":"ce35b2339554bd5a79e111e3111e2d14f61d47e3fbf625efcaef03fd8b8fad74","runtime_digest":"f3212f5cd8a5928661fd4e641830b88cf463b3e3252c900794c045ea8647bff0","add_bos":true,"stable_bytes":0,"total_bytes":0,"stable_byte_hash":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}',
      "digest": "5273f776e70ec22ce38a78ba8b3a0ecd3d883e05d686e8e3da1823cdeebff145",
    },
    "nosystem": {
      "stable": "",
      "volatile": "I startx",
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","prompt_format":"chatml","prompt_template_digest":"ce35b2339554bd5a79e111e3111e2d14f61d47e3fbf625efcaef03fd8b8fad74","runtime_digest":"f3212f5cd8a5928661fd4e641830b88cf463b3e3252c900794c045ea8647bff0","add_bos":true,"stable_bytes":0,"total_bytes":8,"stable_byte_hash":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","segments":[{"kind":"assistant","stable":false,"byte_start":0,"byte_end":7,"byte_hash":"eda968c160bec5e1cc275feea0badc16b3086af03dc3a97bacda46a140d1731a"},{"kind":"user","stable":false,"byte_start":7,"byte_end":8,"byte_hash":"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}]}',
      "digest": "9e3d2005fafe0d49d94dbfadb58f8149e3dc97e9c8177489c879afbee49ffe2f",
    },
    "systemonly": {
      "stable": "Only system",
      "volatile": "",
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","prompt_format":"chatml","prompt_template_digest":"ce35b2339554bd5a79e111e3111e2d14f61d47e3fbf625efcaef03fd8b8fad74","runtime_digest":"f3212f5cd8a5928661fd4e641830b88cf463b3e3252c900794c045ea8647bff0","add_bos":true,"stable_bytes":11,"total_bytes":11,"stable_byte_hash":"7ff3dcd857a48b0417e5a96be19a1157415ea135d3a8feb238e62694f4f3a65e","segments":[{"kind":"system","stable":true,"byte_start":0,"byte_end":11,"byte_hash":"7ff3dcd857a48b0417e5a96be19a1157415ea135d3a8feb238e62694f4f3a65e"}]}',
      "digest": "06a7f98cb021a3eb712670d3a98ff4dbbd781151923f5afd11892e73f8b5bee4",
    },
    "tools": {
      "stable": "Use tools.",
      "volatile": "Weather in Paris?18°CThanks",
      "tools":
        '[{"type":"function","function":{"name":"weather","description":"Get \\u003cweather\\u003e \\u0026 more","parameters":{"properties":{"city":{"type":"string"}},"required":["city"],"type":"object"}}},{"type":"function","function":{"name":"noop"}}]',
      "manifestJson":
        '{"backend":"llamacpp","prompt_format":"chatml","prompt_template_digest":"ce35b2339554bd5a79e111e3111e2d14f61d47e3fbf625efcaef03fd8b8fad74","runtime_digest":"f3212f5cd8a5928661fd4e641830b88cf463b3e3252c900794c045ea8647bff0","add_bos":true,"stable_bytes":10,"total_bytes":38,"stable_byte_hash":"a5ee3945c96e70edab9dec4e662e39b0aa26270d4b77a14ed5f836ca5724c2d1","segments":[{"kind":"system","stable":true,"byte_start":0,"byte_end":10,"byte_hash":"a5ee3945c96e70edab9dec4e662e39b0aa26270d4b77a14ed5f836ca5724c2d1"},{"kind":"user","stable":false,"byte_start":10,"byte_end":27,"byte_hash":"c80a6b5cbcb65f69fd5bd979a8e85d1fc42c4a9899fc74eb7a901f1a4ff5757b"},{"kind":"assistant","stable":false,"byte_start":27,"byte_end":27,"byte_hash":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","tool_calls_json":"[{\\"id\\":\\"c1\\",\\"type\\":\\"function\\",\\"function\\":{\\"name\\":\\"weather\\",\\"arguments\\":\\"{\\\\\\"city\\\\\\":\\\\\\"Paris\\\\\\"}\\"}},{\\"type\\":\\"function\\",\\"function\\":{\\"name\\":\\"noop\\",\\"arguments\\":\\"{}\\"}}]"},{"kind":"tool","stable":false,"byte_start":27,"byte_end":32,"byte_hash":"843d58449c42b431a5ee09b4dd3f040df7625e44e40da192c5b0105683628530","tool_call_id":"c1"},{"kind":"user","stable":false,"byte_start":32,"byte_end":38,"byte_hash":"bb47b8ff5f623996f8f46b80933095a90e29a5bb4442ac09498c9e9e8fc1cbf4"}]}',
      "digest": "21f021511aaa3bd2eae8611a8676616f640919afbfac96e810a8ee5c9731cb9d",
    },
    "toolsflat": {
      "stable": "Use tools.",
      "volatile": "Weather in Paris?18°CThanks",
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","prompt_format":"chatml","prompt_template_digest":"ce35b2339554bd5a79e111e3111e2d14f61d47e3fbf625efcaef03fd8b8fad74","runtime_digest":"f3212f5cd8a5928661fd4e641830b88cf463b3e3252c900794c045ea8647bff0","add_bos":true,"stable_bytes":10,"total_bytes":38,"stable_byte_hash":"a5ee3945c96e70edab9dec4e662e39b0aa26270d4b77a14ed5f836ca5724c2d1","segments":[{"kind":"system","stable":true,"byte_start":0,"byte_end":10,"byte_hash":"a5ee3945c96e70edab9dec4e662e39b0aa26270d4b77a14ed5f836ca5724c2d1"},{"kind":"user","stable":false,"byte_start":10,"byte_end":27,"byte_hash":"c80a6b5cbcb65f69fd5bd979a8e85d1fc42c4a9899fc74eb7a901f1a4ff5757b"},{"kind":"assistant","stable":false,"byte_start":27,"byte_end":27,"byte_hash":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","tool_calls_json":"[{\\"id\\":\\"c1\\",\\"type\\":\\"function\\",\\"function\\":{\\"name\\":\\"weather\\",\\"arguments\\":\\"{\\\\\\"city\\\\\\":\\\\\\"Paris\\\\\\"}\\"}},{\\"type\\":\\"function\\",\\"function\\":{\\"name\\":\\"noop\\",\\"arguments\\":\\"{}\\"}}]"},{"kind":"tool","stable":false,"byte_start":27,"byte_end":32,"byte_hash":"843d58449c42b431a5ee09b4dd3f040df7625e44e40da192c5b0105683628530","tool_call_id":"c1"},{"kind":"user","stable":false,"byte_start":32,"byte_end":38,"byte_hash":"bb47b8ff5f623996f8f46b80933095a90e29a5bb4442ac09498c9e9e8fc1cbf4"}]}',
      "digest": "21f021511aaa3bd2eae8611a8676616f640919afbfac96e810a8ee5c9731cb9d",
    },
    "unicode": {
      "stable": " Sys one \nRègles: 日本語   ",
      "volatile": "héllo 😀ok <b>& late sysagainand again",
      "tools": "",
      "manifestJson":
        '{"backend":"llamacpp","prompt_format":"chatml","prompt_template_digest":"ce35b2339554bd5a79e111e3111e2d14f61d47e3fbf625efcaef03fd8b8fad74","runtime_digest":"f3212f5cd8a5928661fd4e641830b88cf463b3e3252c900794c045ea8647bff0","add_bos":true,"stable_bytes":31,"total_bytes":74,"stable_byte_hash":"b104058cc592c4e9fcb394fa037820307da25505aa634e8d82d3ef517275d81a","segments":[{"kind":"system","stable":true,"byte_start":0,"byte_end":10,"byte_hash":"88270919bc8103bf158877f6bb23e006ec43395c182eb1e2eaa66b0c71e3aaba"},{"kind":"system","stable":true,"byte_start":10,"byte_end":28,"byte_hash":"4fbd376e47636616b52151df33f71280e9c4dee53c154cb3dae1dae900597eaf"},{"kind":"system","stable":true,"byte_start":28,"byte_end":31,"byte_hash":"0aad7da77d2ed59c396c99a74e49f3a4524dcdbcb5163251b1433d640247aeb4"},{"kind":"user","stable":false,"byte_start":31,"byte_end":42,"byte_hash":"a53c56966616f0ec3ed9db7ea07a6034430149528bbaba8966c284f9373669c2"},{"kind":"assistant","stable":false,"byte_start":42,"byte_end":52,"byte_hash":"96ae377eaa0fbb51fa4a231c68c284a93bb8299ca58509ca77c27d24b5d01655"},{"kind":"system","stable":false,"byte_start":52,"byte_end":60,"byte_hash":"57bc544c36884f1c777ab9ed17d659479886d5d0fa524d1aa73b029718a41ed4"},{"kind":"user","stable":false,"byte_start":60,"byte_end":65,"byte_hash":"b4c9e14061c2fd453b36700e3b0da008db2189c711ac629f0f583089164e267d"},{"kind":"user","stable":false,"byte_start":65,"byte_end":74,"byte_hash":"7cfccecfdb8715a9d4a3669c150b2ab235e4818671b0bd67e1e5a3f5c2094a75"}]}',
      "digest": "0f3390c94f46443c23097cbba3dca39abd8eda6e7fd654c7ca7184d118d143b2",
    },
  },
};

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

async function sha256(text: string | Uint8Array): Promise<string> {
  const bytes = typeof text === "string" ? enc.encode(text) : text;
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

const TOOL_TURNS: ChatMessage[] = [
  { role: "system", content: "Use tools." },
  { role: "user", content: "Weather in Paris?" },
  {
    role: "assistant",
    content: "",
    toolCalls: [
      { id: "c1", name: "weather", arguments: { city: "Paris" } },
      { name: "noop", arguments: "" },
    ],
  },
  { role: "tool", content: "18°C", toolCallId: "c1" },
  { role: "user", content: "Thanks" },
];
const TOOLS: ToolDefinition[] = [
  {
    name: "weather",
    description: "Get <weather> & more",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
  { name: "noop" },
];

const CASES: Record<string, { messages: ChatMessage[]; tools?: ToolDefinition[] }> = {
  basic: {
    messages: [{ role: "system", content: "You are terse." }, { role: "user", content: "Hi" }],
  },
  unicode: {
    messages: [
      { role: "system", content: " Sys one \n" },
      { role: "system", content: "Règles: 日本語" },
      { role: "system", content: "   " },
      { role: "user", content: "héllo 😀" },
      { role: "assistant", content: "ok <b>&\u2028" },
      { role: "system", content: "late sys" },
      { role: "user", content: "again" },
      { role: "user", content: "and again" },
    ],
  },
  tools: { messages: TOOL_TURNS, tools: TOOLS },
  toolsflat: { messages: TOOL_TURNS },
  nosystem: {
    messages: [{ role: "assistant", content: "I start" }, { role: "user", content: "x" }],
  },
  empty: { messages: [] },
  systemonly: { messages: [{ role: "system", content: "Only system" }] },
};

/** Checks every invariant the daemon relies on, against independent computations. */
async function assertWellFormed(ctx: Awaited<ReturnType<typeof buildContext>>): Promise<void> {
  const m = ctx.manifest;
  const stable = enc.encode(ctx.stableText);
  const all = enc.encode(ctx.stableText + ctx.volatileText);
  assert.equal(ctx.prefix.text, ctx.stableText);
  assert.equal(ctx.suffix.text, ctx.volatileText);
  assert.equal(ctx.prefix.manifest, m);
  assert.equal(ctx.suffix.manifest, m);
  assert.equal(m.stableBytes, stable.length);
  assert.equal(m.totalBytes, all.length);
  assert.equal(m.stableByteHash, await sha256(stable));
  assert.equal(m.segments.length, ctx.messages.length);
  let cursor = 0;
  for (const [i, seg] of m.segments.entries()) {
    const msg = ctx.messages[i];
    assert.equal(seg.kind, msg.role);
    assert.equal(seg.byteStart, cursor, `segment ${i} is contiguous`);
    cursor = seg.byteEnd;
    assert.equal(seg.stable, seg.byteEnd <= m.stableBytes && msg.role === "system");
    const slice = all.slice(seg.byteStart, seg.byteEnd);
    assert.equal(dec.decode(slice), msg.content, `segment ${i} bytes are the message`);
    assert.equal(seg.byteEnd - seg.byteStart, utf8ByteLength(msg.content));
    assert.equal(seg.byteHash, await sha256(slice));
    assert.equal(seg.toolCallId, msg.toolCallId ?? "");
    assert.equal(seg.toolCallsJson !== "", (msg.toolCalls?.length ?? 0) > 0);
  }
  assert.equal(cursor, m.totalBytes);
}

for (const planner of ["v0.36.0", "v0.32.3"] as const) {
  for (const [name, c] of Object.entries(CASES)) {
    Deno.test(`buildContext matches the Go ${planner} planner: ${name}`, async () => {
      const ctx = await buildContext(c.messages, { tools: c.tools, planner });
      const want = GO_FIXTURES[planner][name];
      assert.equal(ctx.stableText, want.stable);
      assert.equal(ctx.volatileText, want.volatile);
      assert.equal(ctx.prefix.tools, want.tools);
      assert.equal(manifestGoJson(ctx.manifest), want.manifestJson);
      assert.equal(await manifestDigest(ctx.manifest), want.digest);
      await assertWellFormed(ctx);
    });
  }
}

/** A message as plain data, without `$typeName`, for `create()` to build afresh. */
function initOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(initOf);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).filter(([k]) => k !== "$typeName").map(([k, v]) => [k, initOf(v)]),
  );
}

/** Asserts `message` is what protobuf-es's `create()` makes from the same fields. */
function assertCreated(schema: DescMessage, message: object): void {
  const created = create(schema, initOf(message) as Record<string, unknown>);
  assert.deepStrictEqual(message, created);
  // Same keys in the same order, down to the segments: what JSON.stringify or a spread sees.
  assert.equal(JSON.stringify(message), JSON.stringify(created));
  assert.deepEqual(toJson(schema, message as never), toJson(schema, created));
  assert.deepEqual(toBinary(schema, message as never), toBinary(schema, created));
}

for (const [name, c] of Object.entries(CASES)) {
  Deno.test(`buildContext's inputs are the messages create() makes, field for field: ${name}`, async () => {
    const ctx = await buildContext(c.messages, { tools: c.tools });
    assertCreated(PrefixInputSchema, ctx.prefix);
    assertCreated(SuffixInputSchema, ctx.suffix);
  });
}

Deno.test("ASCII: stable system prompt, volatile turns, offsets over both", async () => {
  const ctx = await buildContext([
    { role: "system", content: "You are terse." },
    { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello." },
    { role: "user", content: "2+2?" },
  ]);
  assert.equal(ctx.stableText, "You are terse.");
  assert.equal(ctx.volatileText, "HiHello.2+2?");
  assert.deepEqual(
    ctx.manifest.segments.map((s) => [s.kind, s.stable, s.byteStart, s.byteEnd]),
    [["system", true, 0, 14], ["user", false, 14, 16], ["assistant", false, 16, 22], [
      "user",
      false,
      22,
      26,
    ]],
  );
  assert.equal(ctx.prefix.tools, "");
  await assertWellFormed(ctx);
});

Deno.test("non-ASCII and emoji: offsets count UTF-8 bytes, not UTF-16 units", async () => {
  const ctx = await buildContext([
    { role: "system", content: "Café 日本語" },
    { role: "user", content: "😀 é" },
    { role: "assistant", content: "👍🏽" },
  ], { planner: "v0.32.3" });
  assert.equal("😀".length, 2);
  assert.equal(utf8ByteLength("😀"), 4);
  assert.equal(ctx.manifest.stableBytes, 5 + 1 + 9); // "Café" 5, space, 3×3
  const [sys, user, asst] = ctx.manifest.segments;
  assert.deepEqual([sys.byteStart, sys.byteEnd], [0, 15]);
  assert.deepEqual([user.byteStart, user.byteEnd], [15, 15 + 4 + 1 + 2]);
  assert.deepEqual([asst.byteStart, asst.byteEnd], [22, 30]);
  assert.equal(ctx.manifest.totalBytes, 30);
  await assertWellFormed(ctx);
});

Deno.test("multiple system messages: v0.36.0 merges them, v0.32.3 keeps leading ones apart", async () => {
  const msgs: ChatMessage[] = [
    { role: "system", content: "  One. " },
    { role: "system", content: "Two." },
    { role: "user", content: "Hi" },
    { role: "system", content: "Three." },
  ];
  const merged = await buildContext(msgs);
  assert.equal(merged.stableText, "One.\n\nTwo.\n\nThree.");
  assert.equal(merged.manifest.segments.filter((s) => s.kind === "system").length, 1);
  await assertWellFormed(merged);

  const raw = await buildContext(msgs, { planner: "v0.32.3" });
  assert.equal(raw.stableText, "  One. Two.");
  assert.equal(raw.volatileText, "HiThree.");
  assert.deepEqual(
    raw.manifest.segments.map((s) => [s.kind, s.stable]),
    [["system", true], ["system", true], ["user", false], ["system", false]],
  );
  await assertWellFormed(raw);
});

Deno.test("tool definitions render as OpenAI-style function defs", async () => {
  const ctx = await buildContext([{ role: "user", content: "x" }], { tools: TOOLS });
  const defs = JSON.parse(ctx.prefix.tools);
  assert.deepEqual(defs, [
    {
      type: "function",
      function: {
        name: "weather",
        description: "Get <weather> & more",
        parameters: {
          type: "object",
          properties: { city: { type: "string" } },
          required: ["city"],
        },
      },
    },
    {
      type: "function",
      function: {
        name: "noop",
        description: "",
        parameters: { type: "object", additionalProperties: true },
      },
    },
  ]);
  assert.ok(ctx.prefix.tools.includes("\\u003cweather\\u003e \\u0026"), "Go HTML escaping");
  assert.equal(ctx.suffix.manifest, ctx.prefix.manifest);
});

Deno.test("assistant tool calls and tool results carry tool_calls_json and tool_call_id", async () => {
  const ctx = await buildContext(TOOL_TURNS, { tools: TOOLS });
  const asst = ctx.manifest.segments[2];
  assert.equal(asst.kind, "assistant");
  assert.equal(asst.byteStart, asst.byteEnd);
  assert.deepEqual(JSON.parse(asst.toolCallsJson), [
    { id: "c1", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } },
    { type: "function", function: { name: "noop", arguments: "{}" } },
  ]);
  const tool = ctx.manifest.segments[3];
  assert.equal(tool.kind, "tool");
  assert.equal(tool.toolCallId, "c1");
  assert.equal(tool.toolCallsJson, "");
  await assertWellFormed(ctx);
});

Deno.test("without tool definitions, v0.36.0 flattens tool traffic into text turns", async () => {
  const ctx = await buildContext(TOOL_TURNS);
  assert.deepEqual(ctx.messages.map((m) => m.role), ["system", "user", "assistant", "user"]);
  assert.match(ctx.messages[2].content, /^Assistant requested tool calls:\n\[/);
  assert.equal(ctx.messages[3].content, "Tool result for c1:\n18°C\n\nThanks");
  assert.ok(ctx.manifest.segments.every((s) => s.toolCallsJson === "" && s.toolCallId === ""));
});

Deno.test("empty volatile part and no system message", async () => {
  const onlySystem = await buildContext([{ role: "system", content: "Be nice." }]);
  assert.equal(onlySystem.volatileText, "");
  assert.equal(onlySystem.manifest.totalBytes, onlySystem.manifest.stableBytes);
  await assertWellFormed(onlySystem);

  const noSystem = await buildContext([{ role: "user", content: "Hi" }]);
  assert.equal(noSystem.stableText, "");
  assert.equal(noSystem.manifest.stableBytes, 0);
  assert.equal(noSystem.manifest.stableByteHash, await sha256(""));
  assert.equal(
    noSystem.manifest.stableByteHash,
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(noSystem.manifest.segments[0].byteStart, 0);
  assert.notEqual(await manifestDigest(noSystem.manifest), "", "not a zero manifest");
  await assertWellFormed(noSystem);
});

Deno.test("identity and stable hash stay equal across turns", async () => {
  const turn1: ChatMessage[] = [
    { role: "system", content: "You are terse. ☕" },
    { role: "user", content: "Hi" },
  ];
  const first = await buildContext(turn1, { tools: TOOLS });
  const second = await buildContext([
    ...turn1,
    { role: "assistant", content: "Hello." },
    { role: "user", content: "And now?" },
  ], { tools: TOOLS });
  assert.equal(second.manifest.stableByteHash, first.manifest.stableByteHash);
  assert.equal(second.prefix.text, first.prefix.text);
  assert.equal(second.prefix.tools, first.prefix.tools);
  for (
    const key of [
      "profileId",
      "backend",
      "backendVersion",
      "modelDigest",
      "promptFormat",
      "promptTemplateDigest",
      "runtimeDigest",
      "addBos",
    ] as const
  ) {
    assert.equal(second.manifest[key], first.manifest[key], key);
  }
  assert.ok(second.manifest.totalBytes > first.manifest.totalBytes);
});

Deno.test("identity defaults follow the Go runtime and can be overridden", async () => {
  const id = defaultManifestIdentity();
  assert.equal(id.backend, "llamacpp");
  assert.equal(id.backendVersion, "llamacpp-direct");
  assert.equal(id.promptFormat, "chatml");
  assert.equal(id.addBos, true);
  assert.equal(id.promptTemplateDigest, await sha256("llama-runtime-prompt-metadata:chatml:v1"));
  assert.equal(
    id.runtimeDigest,
    await sha256(
      '{"num_ctx":0,"num_batch":512,"num_threads":0,"num_gpu_layers":0,"flash_attention":false}',
    ),
  );
  const old = defaultManifestIdentity("v0.32.3", "llama3");
  assert.equal(old.backendVersion, "");
  assert.equal(
    old.promptTemplateDigest,
    await sha256(
      "llama3:v1:<|start_header_id|>role<|end_header_id|>\\n\\ncontent<|eot_id|>:assistant-cue",
    ),
  );

  const ctx = await buildContext([{ role: "user", content: "x" }], {
    identity: { addBos: false, profileId: "p", modelDigest: "sha256:abc", promptFormat: "llama3" },
  });
  assert.equal(ctx.manifest.addBos, false);
  assert.equal(ctx.manifest.profileId, "p");
  assert.equal(ctx.manifest.modelDigest, "sha256:abc");
  assert.equal(
    ctx.manifest.promptTemplateDigest,
    defaultManifestIdentity("v0.36.0", "llama3").promptTemplateDigest,
  );
  assert.ok(manifestGoJson(ctx.manifest).startsWith('{"profile_id":"p","backend":"llamacpp"'));
});

Deno.test("manifestDigest is empty for a zero manifest", async () => {
  assert.equal(await manifestDigest({}), "");
  assert.equal(await manifestDigest({ addBos: true, stableBytes: 3 }), "");
  assert.notEqual(await manifestDigest({ backend: "x" }), "");
});

Deno.test("bad input throws InvalidArgumentError naming the fix", async () => {
  const bad: [unknown, RegExp, object?][] = [
    [[{ role: "developer", content: "x" }], /messages\[0\]\.role is "developer"/],
    [[{ role: "user" }], /messages\[0\]\.content must be a string, got undefined/],
    [[{ role: "user", content: 42 }], /content must be a string, got a number/],
    [[{ role: "user", content: null }], /content must be a string, got null/],
    [[{ role: "tool", content: "r" }], /tool result without toolCallId/],
    [[{ role: "user", content: "x", toolCallId: "c" }], /only tool turns/],
    [
      [{ role: "user", content: "x", toolCalls: [{ name: "f", arguments: "{}" }] }],
      /only assistant/,
    ],
    [
      [{ role: "assistant", content: "", toolCalls: [{ name: "", arguments: "{}" }] }],
      /name must be/,
    ],
    [
      [{ role: "assistant", content: "", toolCalls: [{ name: "f", arguments: 3 }] }],
      /arguments must be/,
    ],
    [[{ role: "user", content: "bad \ud800 surrogate" }], /lone UTF-16 surrogate at code point 4/],
    [[{ role: "user", content: "tail \udc00" }], /lone UTF-16 surrogate/],
    [[{ role: "user", content: "x" }], /tools\[0\]\.name/, { tools: [{ name: "" }] }],
    [[{ role: "user", content: "x" }], /identity\.addBos/, { identity: { addBos: "yes" } }],
    [[{ role: "user", content: "x" }], /no default template digest/, {
      identity: { promptFormat: "gemma" },
    }],
    [[{ role: "user", content: "x" }], /unknown planner/, { planner: "v9" }],
    ["not an array", /messages must be an array/],
  ];
  for (const [messages, re, options] of bad) {
    await assert.rejects(
      () => buildContext(messages as ChatMessage[], options as never),
      (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError, String(err));
        assert.equal(err.code, "invalid_argument");
        assert.match(err.message, re);
        return true;
      },
    );
  }
  // A custom format is fine with an explicit template digest.
  const ctx = await buildContext([{ role: "user", content: "x" }], {
    identity: { promptFormat: "gemma", promptTemplateDigest: "t" },
  });
  assert.equal(ctx.manifest.promptFormat, "gemma");
});

Deno.test("utf8ByteLength matches TextEncoder", () => {
  for (const s of ["", "a", "é", "日本語", "😀", "a😀b", "\u2028", "👍🏽x"]) {
    assert.equal(utf8ByteLength(s), enc.encode(s).length, s);
  }
  assert.equal(utf8ByteLength("\ud800"), 3, "a lone surrogate counts as U+FFFD");
});
