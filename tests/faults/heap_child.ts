/**
 * Child of the memory tests, run alone (not under `deno test`, whose own
 * allocations move V8's young-generation sizing) with
 * `--v8-flags=--expose-gc`: Health calls, printing V8's committed heap (MiB,
 * after a forced GC) at each of `Deno.args[2]` (comma-separated call counts,
 * ascending) as one JSON array.
 *
 * - `node <host:port> <marks>`: `RemoteNode.health()` against that server.
 * - `client <dataRoot> <marks>`: `ModeldClient.health({ signal })` against the
 *   daemon of that data root, with one long-lived signal for every call, as a
 *   script with a shutdown signal makes them.
 */
import { ModeldClient, RemoteNode } from "../../mod.ts";
import { dial } from "../../lib/transport.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const [mode, target, marksArg] = Deno.args;
const marks = marksArg.split(",").map(Number);

let health: () => Promise<unknown>;
let close: () => void | Promise<void>;
if (mode === "node") {
  const conn = dial(target, "");
  const node = new RemoteNode("m", conn, "llama");
  health = () => node.health();
  close = () => conn.close();
} else {
  const client = new ModeldClient({ dataRoot: target });
  const { signal } = new AbortController();
  health = () => client.health({ signal });
  close = () => client.close();
}
const committed: number[] = [];
for (let calls = 0; calls <= marks[marks.length - 1]; calls++) {
  if (marks.includes(calls)) {
    gc();
    committed.push(Deno.memoryUsage().heapTotal / 2 ** 20);
  }
  await health();
}
await close();
console.log(JSON.stringify(committed));
