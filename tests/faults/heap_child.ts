/**
 * Child of memory_test.ts, run alone (not under `deno test`, whose own
 * allocations move V8's young-generation sizing) with
 * `--v8-flags=--expose-gc`: Health calls against `Deno.args[0]`, printing
 * V8's committed heap (MiB, after a forced GC) at each of `Deno.args[1]`
 * (comma-separated call counts, ascending) as one JSON array.
 */
import { RemoteNode } from "../../mod.ts";
import { dial } from "../../lib/transport.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const marks = Deno.args[1].split(",").map(Number);
using conn = dial(Deno.args[0], "");
const node = new RemoteNode("m", conn, "llama");
const committed: number[] = [];
for (let calls = 0; calls <= marks[marks.length - 1]; calls++) {
  if (marks.includes(calls)) {
    gc();
    committed.push(Deno.memoryUsage().heapTotal / 2 ** 20);
  }
  await node.health();
}
console.log(JSON.stringify(committed));
