/**
 * The floor under the client: the same Health call and the same Decode
 * stream as a bare loop over Deno's `node:http2` and over this package's own
 * HTTP/2 session (`lib/h2/session.ts`; no Connect, no protobuf-es, no gRPC
 * layer), next to this package's transport (`Connection.rpc`, Connect's
 * typed client on our gRPC transport) and the public API (`RemoteNode`,
 * `Session`), against one Go peer. Per operation: wall time and this
 * process's CPU time (user+sys). Medians over rounds that alternate the order.
 *
 *     bash tests/interop/build.sh && deno run --allow-read=.cache/tmp \
 *       --allow-write=.cache/tmp --allow-net=127.0.0.1 --allow-run=tests/interop/bin/peer \
 *       bench/h2_floor.ts [--rounds 7]
 *
 * @module
 */

import http2 from "node:http2";
import process from "node:process";
import { RemoteNode } from "../mod.ts";
import { dial } from "../lib/transport.ts";
import { envelopeOf as envelope, EnvelopeSplitter } from "../lib/envelope.ts";
import { encodeHeaderBlock } from "../lib/h2/hpack.ts";
import { H2Session } from "../lib/h2/session.ts";
import { startBenchPeer } from "./workloads.ts";

const rounds = Number(Deno.args[Deno.args.indexOf("--rounds") + 1]) || 7;
const HEALTH_CALLS = 500;
const DECODES = 10;
const TOKENS = 512;
const CONTENT_TYPE = "application/grpc+contenoxtransportjson";

await Deno.mkdir(".cache/tmp", { recursive: true });
await using peer = await startBenchPeer("memory");
using conn = dial(peer.endpoint, peer.instanceId);
const node = new RemoteNode("peer", conn, "llama");
await using session = await node.openSession({ name: "m", path: "/m" }, {
  config: { numCtx: 1_000_000 },
});
await session.ensurePrefix({ text: "hello" });
const raw = http2.connect(`http://${peer.endpoint}`);
const own = await H2Session.connect("127.0.0.1", Number(peer.endpoint.split(":").at(-1)));
await own.handshake;

const healthBody = envelope("{}");
const decodeBody = envelope(
  JSON.stringify({ handle: session.handle, config: { MaxTokens: TOKENS } }),
);

/** Counts whole envelopes in a byte stream: framing only (the transport's splitter), no parsing. */
function envelopeCounter(): { push: (chunk: Uint8Array) => void; messages: number } {
  const splitter = new EnvelopeSplitter(2 ** 32);
  const counter = {
    messages: 0,
    push: (chunk: Uint8Array) => splitter.push(chunk, () => counter.messages++),
  };
  return counter;
}

/** One call on the bare session: write the envelope, count whole envelopes, wait for close. */
function rawCall(path: string, body: Uint8Array, fenced: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": path,
      "content-type": CONTENT_TYPE,
      te: "trailers",
    };
    if (fenced) headers["x-contenox-owner-instance"] = peer.instanceId;
    const stream = raw.request(headers);
    const counter = envelopeCounter();
    stream.on("data", counter.push);
    stream.on("error", reject);
    stream.on("close", () => resolve(counter.messages));
    stream.end(body);
  });
}

/** One call on our bare session: the same, with no gRPC layer above the frames. */
function ownCall(path: string, body: Uint8Array, fenced: boolean): Promise<number> {
  const fields: [string, string][] = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", peer.endpoint],
    ["content-type", CONTENT_TYPE],
    ["te", "trailers"],
  ];
  if (fenced) fields.push(["x-contenox-owner-instance", peer.instanceId]);
  const block = encodeHeaderBlock(fields);
  return new Promise((resolve, reject) => {
    const counter = envelopeCounter();
    own.request(
      block,
      {
        onHeaders: (_fields, end) => end && resolve(counter.messages),
        onData: (chunk, end) => {
          counter.push(chunk);
          if (end) resolve(counter.messages);
        },
        onReset: (code) => reject(new Error(`reset ${code}`)),
        onError: reject,
      },
      body,
      true,
    );
  });
}

type Case = { name: string; unit: string; ops: number; run: () => Promise<void> };
const cases: Case[] = [
  {
    name: "Health: bare node:http2",
    unit: "call",
    ops: HEALTH_CALLS,
    run: async () => {
      for (let i = 0; i < HEALTH_CALLS; i++) {
        await rawCall("/contenox.transport.v1.Compute/Health", healthBody, false);
      }
    },
  },
  {
    name: "Health: bare H2Session (this package's HTTP/2)",
    unit: "call",
    ops: HEALTH_CALLS,
    run: async () => {
      for (let i = 0; i < HEALTH_CALLS; i++) {
        await ownCall("/contenox.transport.v1.Compute/Health", healthBody, false);
      }
    },
  },
  {
    name: "Health: Connection.rpc (Connect typed client, our transport)",
    unit: "call",
    ops: HEALTH_CALLS,
    run: async () => {
      for (let i = 0; i < HEALTH_CALLS; i++) await conn.rpc.health({});
    },
  },
  {
    name: "Health: RemoteNode.health() (typed errors, retry rule, deadline)",
    unit: "call",
    ops: HEALTH_CALLS,
    run: async () => {
      for (let i = 0; i < HEALTH_CALLS; i++) await node.health();
    },
  },
  {
    name: "Decode chunks: bare node:http2 (framing only)",
    unit: "chunk",
    ops: DECODES * TOKENS,
    run: async () => {
      for (let i = 0; i < DECODES; i++) {
        await rawCall("/contenox.transport.v1.Compute/Decode", decodeBody, true);
      }
    },
  },
  {
    name: "Decode chunks: bare H2Session (framing only)",
    unit: "chunk",
    ops: DECODES * TOKENS,
    run: async () => {
      for (let i = 0; i < DECODES; i++) {
        await ownCall("/contenox.transport.v1.Compute/Decode", decodeBody, true);
      }
    },
  },
  {
    name: "Decode chunks: Session.decode() (parsed, typed deltas)",
    unit: "chunk",
    ops: DECODES * TOKENS,
    run: async () => {
      for (let i = 0; i < DECODES; i++) {
        for await (const _ of session.decode({ maxTokens: TOKENS })) { /* drain */ }
      }
    },
  },
];

const wall = new Map<string, number[]>();
const cpu = new Map<string, number[]>();
for (const c of cases) await c.run(); // warm-up
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? cases : [...cases].reverse();
  for (const c of order) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await c.run();
    const t = (performance.now() - t0) * 1000 / c.ops;
    const d = process.cpuUsage(c0);
    wall.set(c.name, [...wall.get(c.name) ?? [], t]);
    cpu.set(c.name, [...cpu.get(c.name) ?? [], (d.user + d.system) / c.ops]);
  }
}
raw.close();
own.close();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const floorOf = (c: Case) => cases.find((x) => x.unit === c.unit)!;
console.log(`## The floor: bare node:http2 vs this client (median of ${rounds} rounds)\n`);
console.log(
  "| Operation | µs wall per op | µs CPU per op (client process) | ÷ bare node:http2 (CPU) |",
);
console.log("| --- | ---: | ---: | ---: |");
for (const c of cases) {
  const base = median(cpu.get(floorOf(c).name)!);
  const mine = median(cpu.get(c.name)!);
  console.log(
    `| ${c.name} | ${median(wall.get(c.name)!).toFixed(1)} | ${mine.toFixed(1)} | ${
      (mine / base).toFixed(2)
    } |`,
  );
}
