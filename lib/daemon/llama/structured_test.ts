import assert from "node:assert/strict";
import { parseToolCallEnvelope, structuredMode } from "./structured.ts";

Deno.test("structuredMode: modeld's llama protocols; others unsupported", () => {
  assert.equal(structuredMode(""), null);
  assert.equal(structuredMode("json_schema"), "json_schema");
  assert.equal(structuredMode("llama:json_schema"), "json_schema");
  assert.equal(structuredMode("llama:json_schema_tool_calls"), "tool_calls");
  assert.equal(structuredMode("openvino:json_schema_tool_calls"), undefined);
});

Deno.test("tool-call envelopes are normalized as modeld's sessionkit does", () => {
  const r = parseToolCallEnvelope(JSON.stringify({
    content: "calling",
    tool_calls: [
      { name: "a", arguments: { x: 1 } },
      { function: { name: "b", arguments: '{"y":2}' }, id: "mine", type: "function" },
      { tool_name: "c", parameters: null },
      { function: { name: "d", parameters: "  " } },
    ],
  }));
  assert.equal(r.text, "calling");
  assert.deepEqual(r.toolCalls, [
    { id: "call_1", type: "function", function: { name: "a", arguments: '{"x":1}' } },
    { id: "mine", type: "function", function: { name: "b", arguments: '{"y":2}' } },
    { id: "call_3", type: "function", function: { name: "c", arguments: "{}" } },
    { id: "call_4", type: "function", function: { name: "d", arguments: "{}" } },
  ]);
});

Deno.test("Qwen <tool_call> blocks are parsed; plain text stays text; bad output is an error", () => {
  const r = parseToolCallEnvelope(
    'Sure. <tool_call>{"name":"f","arguments":{"q":"x"}}</tool_call>',
  );
  assert.equal(r.text, "Sure.");
  assert.deepEqual(r.toolCalls[0].function, { name: "f", arguments: '{"q":"x"}' });
  assert.deepEqual(parseToolCallEnvelope("just text"), { text: "just text", toolCalls: [] });
  assert.throws(() => parseToolCallEnvelope("  "), /structured tool call output is empty/);
  assert.throws(
    () => parseToolCallEnvelope('{"tool_calls": [}'),
    /parse structured tool call envelope/,
  );
  assert.throws(() => parseToolCallEnvelope("{}"), /neither content nor tool_calls/);
  assert.throws(
    () => parseToolCallEnvelope('<tool_call>{"arguments":{}}</tool_call>'),
    /missing name/,
  );
});
