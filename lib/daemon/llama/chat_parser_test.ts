import assert from "node:assert/strict";
import { ChatOutputParser } from "./chat_parser.ts";

function run(pieces: string[], options: ConstructorParameters<typeof ChatOutputParser>[0]) {
  const p = new ChatOutputParser(options);
  const steps = pieces.map((x) => p.push(x));
  const last = p.finish();
  return {
    text: steps.map((d) => d.text).join("") + last.text,
    thinking: steps.map((d) => d.thinking).join("") + last.thinking,
    toolCalls: last.toolCalls,
    steps,
  };
}

Deno.test("reasoning: a <think> block streams as thinking, split tags are held back", () => {
  const r = run(["<thi", "nk>let me ", "see</th", "ink>\n\nThe answer", " is 4."], {
    tools: false,
    reasoning: true,
    startsInThinking: false,
  });
  assert.equal(r.thinking, "let me see");
  assert.equal(r.text, "The answer is 4.");
  assert.ok(r.steps.every((d) => !d.text.includes("<") && !d.thinking.includes("<")));
});

Deno.test("reasoning: a prompt that opened <think> makes the reply start in thinking", () => {
  const r = run(["hmm", "</think>", "ok"], {
    tools: false,
    reasoning: true,
    startsInThinking: true,
  });
  assert.deepEqual([r.thinking, r.text], ["hmm", "ok"]);
});

Deno.test("tools: <tool_call> blocks leave the text and arrive in the final delta", () => {
  const r = run(
    [
      "Let me check.",
      " <tool_",
      'call>{"name":"get_weather",',
      '"arguments":{"city":"Paris"}}',
      "</tool_call>",
    ],
    { tools: true, reasoning: false, startsInThinking: false },
  );
  assert.equal(r.text, "Let me check. ");
  assert.deepEqual(r.toolCalls, [
    {
      id: "call_1",
      type: "function",
      function: { name: "get_weather", arguments: '{"city":"Paris"}' },
    },
  ]);
  assert.ok(r.steps.every((d) => d.toolCalls.length === 0), "tool calls only at the end");
});

Deno.test("tools: text that only looks like a tag is kept", () => {
  const r = run(["a < b", " and <tool"], {
    tools: true,
    reasoning: false,
    startsInThinking: false,
  });
  assert.equal(r.text, "a < b and <tool");
  assert.deepEqual(r.toolCalls, []);
});
