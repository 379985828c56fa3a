/**
 * Memory of the client under three loads (issue 8, item 11), against the
 * hostile server's well-behaved listener (tests/faults/bin/hostile, mode `ok`,
 * whose Decode streams `{"text":"tok "}` messages as fast as flow control allows):
 *
 *   churn  N cycles of dial + Health + close (default 5000)
 *   stream one Decode read for S seconds (default 30)
 *   large  one 40 MiB Health reply (mode `big`)
 *
 * Prints one JSON line: RSS and V8 heap before and after (after a forced GC
 * when --v8-flags=--expose-gc is given), their peaks while running (sampled
 * every 500 cycles / 50,000 messages, without GC), and the per-unit growth.
 *
 *   deno run --v8-flags=--expose-gc --allow-net=127.0.0.1 \
 *     --allow-run=tests/faults/bin/hostile bench/memory.ts churn 5000
 *
 * @module
 */

import { RemoteNode } from "../lib/client.ts";
import { Session } from "../lib/session.ts";
import { dial } from "../lib/transport.ts";
import { startHostile } from "../tests/faults/hostile.ts";

const [mode = "churn", arg] = Deno.args;
const gc = (globalThis as { gc?: () => void }).gc;

function snapshot() {
  gc?.();
  const m = Deno.memoryUsage();
  return { rssMB: m.rss / 2 ** 20, heapMB: m.heapUsed / 2 ** 20 };
}

await using hostile = await startHostile();
const round = (n: number) => Math.round(n * 10) / 10;
const start = performance.now();
let before = snapshot();
let units = 0;
let peakRssMB = before.rssMB;
let peakHeapMB = before.heapMB;
const sample = () => {
  const m = Deno.memoryUsage();
  peakRssMB = Math.max(peakRssMB, m.rss / 2 ** 20);
  peakHeapMB = Math.max(peakHeapMB, m.heapUsed / 2 ** 20);
};

if (mode === "churn") {
  const cycles = Number(arg ?? 5000);
  const addr = hostile.addr("ok");
  // Warm up, so the first connection's one-time costs are not counted.
  for (let i = 0; i < 50; i++) {
    const node = new RemoteNode("m", dial(addr, ""), "llama");
    await node.health();
    node.close();
  }
  before = snapshot();
  for (let i = 0; i < cycles; i++) {
    const node = new RemoteNode("m", dial(addr, ""), "llama");
    await node.health();
    node.close();
    if (i % 500 === 0) sample();
  }
  units = cycles;
} else if (mode === "stream") {
  const seconds = Number(arg ?? 30);
  using conn = dial(hostile.addr("ok"), "");
  const stream = new Session(conn, "h1").decode({ maxTokens: 0 });
  const until = performance.now() + seconds * 1000;
  for await (const _ of stream) {
    units++;
    if (units % 50_000 === 0) {
      sample();
      if (performance.now() > until) break;
    }
  }
} else if (mode === "large") {
  const node = new RemoteNode("m", dial(hostile.addr("big"), ""), "llama");
  const health = await node.health({ timeoutMs: 600_000 });
  units = health.backend.length;
  sample();
  node.close();
} else {
  throw new Error(`unknown mode ${mode}: churn | stream | large`);
}

const after = snapshot();
console.log(JSON.stringify({
  mode,
  units,
  seconds: round((performance.now() - start) / 1000),
  rssMB: [round(before.rssMB), round(after.rssMB)],
  peakRssMB: round(peakRssMB),
  peakHeapMB: round(peakHeapMB),
  heapMB: [round(before.heapMB), round(after.heapMB)],
  heapKBPerUnit: units ? round(((after.heapMB - before.heapMB) * 1024) / units * 1000) / 1000 : 0,
}));
