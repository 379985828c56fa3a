/**
 * A multi-turn chat on one warm session: `Chat` keeps the history, sends the
 * whole conversation each turn, and the daemon reuses the resident prefix
 * (`usage.reusedTokens`). Every line of stdin is a turn.
 *
 * ```sh
 * printf 'Hi\nWhat did I just say?\n' | \
 *   deno run --allow-read=$HOME/.contenox --allow-net=127.0.0.1 examples/chat.ts $HOME/.contenox
 * ```
 *
 * @module
 */
import { Chat } from "@contenox/modeldconn";

const [dataRoot, model] = Deno.args;
if (!dataRoot) {
  console.error("usage: chat.ts DATA_ROOT [MODEL] < turns");
  Deno.exit(2);
}

await using chat = new Chat({ dataRoot, model, system: "You are terse.", maxTokens: 128 });
const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let pending = "";
for await (const chunk of lines) {
  pending += chunk;
  let newline;
  while ((newline = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, newline).trim();
    pending = pending.slice(newline + 1);
    if (line !== "") await turn(line);
  }
}
if (pending.trim() !== "") await turn(pending.trim());

async function turn(line: string): Promise<void> {
  console.log(`> ${line}`);
  const reply = await chat.send(line);
  console.log(reply.text);
  console.error(`[reused ${reply.usage.reusedTokens} tokens, ${chat.messages.length} messages]`);
}
