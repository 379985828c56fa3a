/**
 * Minimal repro of a per-connection leak in Deno's `node:http2` client (no
 * Connect, no modeldconn): N cycles of connect → one request → read the reply
 * → close, against any h2c server. Prints heap and RSS growth per connection.
 *
 *   deno run --v8-flags=--expose-gc --allow-net=127.0.0.1 bench/http2_leak_repro.ts 127.0.0.1:PORT 5000
 *
 * On Deno 2.9.3 the heap keeps growing with every connection although each
 * session is closed and nothing references it (see BENCHMARKS.md, "Memory
 * under faults and churn"); Node 20 stays flat. That part is upstream.
 *
 * @module
 */

import http2 from "node:http2";

const [addr, n = "5000"] = Deno.args;
const cycles = Number(n);
const gc = (globalThis as { gc?: () => void }).gc;
const mem = () => {
  gc?.();
  const m = Deno.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
};

async function once(): Promise<void> {
  const session = http2.connect(`http://${addr}`);
  session.on("error", () => {});
  const req = session.request({
    ":method": "POST",
    ":path": "/contenox.transport.v1.Compute/Health",
    "content-type": "application/grpc+contenoxtransportjson",
  });
  req.end(new Uint8Array([0, 0, 0, 0, 2, 0x7b, 0x7d])); // one message: {}
  for await (const _ of req) { /* drain */ }
  await new Promise<void>((resolve) => session.close(resolve));
}

for (let i = 0; i < 50; i++) await once();
const before = mem();
for (let i = 0; i < cycles; i++) await once();
const after = mem();
console.log(JSON.stringify({
  cycles,
  heapKBPerConnection: Math.round((after.heap - before.heap) / cycles / 102.4) / 10,
  rssKBPerConnection: Math.round((after.rss - before.rss) / cycles / 102.4) / 10,
}));
