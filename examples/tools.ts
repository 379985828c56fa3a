/**
 * Tool calls: give `Chat` the functions the model may call; when a reply
 * carries `toolCalls`, run them and send the results back as `tool`
 * messages until the model answers in text. The daemon parses tool calls
 * with the model's chat template (v0.32.4+, a model that supports tools).
 *
 * ```sh
 * deno run --allow-read=$HOME/.contenox --allow-net=127.0.0.1 examples/tools.ts $HOME/.contenox [MODEL]
 * ```
 *
 * @module
 */
import { Chat, type ChatMessage } from "@contenox/modeldconn";

const [dataRoot, model] = Deno.args;
if (!dataRoot) {
  console.error("usage: tools.ts DATA_ROOT [MODEL]");
  Deno.exit(2);
}

/** The functions this script offers. */
const functions: Record<string, (args: Record<string, unknown>) => unknown> = {
  weather: ({ city }) => ({ city, celsius: 18, sky: "clear" }),
};

await using chat = new Chat({
  dataRoot,
  model,
  tools: [{
    name: "weather",
    description: "The current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    },
  }],
});

let reply = await chat.send("What's the weather in Oslo?");
for (let round = 0; reply.toolCalls.length > 0 && round < 5; round++) {
  const results: ChatMessage[] = [];
  for (const call of reply.toolCalls) {
    const name = call.function?.name ?? "";
    const args = JSON.parse(call.function?.arguments || "{}");
    const result = functions[name]?.(args) ?? { error: `no function ${name}` };
    console.log(`tool ${name}(${JSON.stringify(args)}) -> ${JSON.stringify(result)}`);
    results.push({ role: "tool", toolCallId: call.id, content: JSON.stringify(result) });
  }
  reply = await chat.send(results);
}
console.log(reply.text);
