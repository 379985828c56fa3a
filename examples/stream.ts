/**
 * Streaming to stdout: `generateStream().textStream()` is a
 * `ReadableStream<string>`; pipe it through a `TextEncoderStream`. Ctrl-C
 * aborts the signal, which cancels the decode on the daemon.
 *
 * ```sh
 * deno run --allow-read=$HOME/.contenox --allow-net=127.0.0.1 examples/stream.ts $HOME/.contenox "Tell me a story"
 * ```
 *
 * @module
 */
import { generateStream } from "@contenox/modeldconn";

const [dataRoot, ...words] = Deno.args;
if (!dataRoot) {
  console.error("usage: stream.ts DATA_ROOT [PROMPT...]");
  Deno.exit(2);
}

const controller = new AbortController();
const onInterrupt = () => controller.abort();
Deno.addSignalListener("SIGINT", onInterrupt);
try {
  const stream = generateStream({
    dataRoot,
    prompt: words.join(" ") || "Tell me a short story.",
    maxTokens: 200,
    signal: controller.signal,
  });
  await stream.textStream()
    .pipeThrough(new TextEncoderStream())
    .pipeTo(Deno.stdout.writable, { preventClose: true });
  console.log();
  console.error(`[stopped: ${stream.usage.stopReason}]`);
} finally {
  Deno.removeSignalListener("SIGINT", onInterrupt);
}
