/**
 * One-off generation: `generate()` opens a session, sends the prompt,
 * decodes, closes the session and returns the reply with its usage.
 *
 * ```sh
 * deno run --allow-read=$HOME/.contenox --allow-net=127.0.0.1 examples/generate.ts $HOME/.contenox [MODEL]
 * ```
 *
 * Without MODEL it uses the only model in the daemon's store.
 *
 * @module
 */
import { generate } from "@contenox/modeldconn";

const [dataRoot, model] = Deno.args;
if (!dataRoot) {
  console.error("usage: generate.ts DATA_ROOT [MODEL]");
  Deno.exit(2);
}

const { text, usage } = await generate({
  dataRoot,
  model,
  system: "You are terse.",
  prompt: "Why is the sky blue?",
  maxTokens: 64,
  temperature: 0,
});
console.log(text);
console.error(
  `[${usage.promptTokens} prompt tokens, ${usage.chunks} chunks, stopped: ${usage.stopReason}]`,
);
