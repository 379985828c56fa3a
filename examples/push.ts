/**
 * Model push with progress: `pushModelFile()` hashes the file, streams it to
 * the daemon's model store in 4 MiB frames and reports progress; then the
 * store lists it. (v0.34.0+ daemons.)
 *
 * ```sh
 * deno run --allow-read=$HOME/.contenox,./model.gguf --allow-net=127.0.0.1 \
 *   examples/push.ts $HOME/.contenox ./model.gguf smollm2
 * ```
 *
 * @module
 */
import { ModeldClient } from "@contenox/modeldconn";

const [dataRoot, file, name] = Deno.args;
if (!dataRoot || !file || !name) {
  console.error("usage: push.ts DATA_ROOT FILE NAME");
  Deno.exit(2);
}

await using client = new ModeldClient({ dataRoot });
const result = await client.pushModelFile(file, {
  name,
  onProgress: (p) => {
    const percent = p.totalBytes ? Math.floor((100 * p.sentBytes) / p.totalBytes) : 0;
    console.log(`pushed ${p.sentBytes} of ${p.totalBytes ?? "?"} bytes (${percent}%)`);
  },
});
console.log(
  result.alreadyPresent
    ? `${name} was already stored`
    : `stored ${name}: ${result.bytesWritten} bytes`,
);
for (const m of await client.listModels()) console.log(`${m.name}\t${m.sizeBytes} bytes`);
