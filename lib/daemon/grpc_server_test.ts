import assert from "node:assert/strict";
import { Compute } from "../../gen/contenox/transport/v1/compute_pb.ts";
import { envelopeOf } from "../envelope.ts";
import { encodeHeaderBlock, type HeaderField } from "../h2/hpack.ts";
import { H2Session } from "../h2/session.ts";
import { GrpcServer } from "./grpc_server.ts";

/** One Health call over a bare HTTP/2 session, with the given grpc-timeout; the response as text. */
async function rawHealth(
  endpoint: string,
  timeout: string,
): Promise<{ body: string; status: string }> {
  const port = Number(endpoint.split(":").at(-1));
  const session = await H2Session.connect("127.0.0.1", port);
  try {
    await session.handshake;
    const block = encodeHeaderBlock([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/contenox.transport.v1.Compute/Health"],
      [":authority", endpoint],
      ["content-type", "application/grpc+contenoxtransportjson"],
      ["te", "trailers"],
      ["grpc-timeout", timeout],
    ]);
    return await new Promise((resolve, reject) => {
      let body = "";
      let status = "";
      const done = (end: boolean) => end && resolve({ body, status });
      session.request(
        block,
        {
          onHeaders: (fields: HeaderField[], end: boolean) => {
            for (const [n, v] of fields) if (n === "grpc-status") status = v;
            done(end);
          },
          onData: (chunk: Uint8Array, end: boolean) => {
            body += new TextDecoder().decode(chunk.subarray(5));
            done(end);
          },
          onReset: (code: number) => reject(new Error(`reset ${code}`)),
          onError: reject,
        },
        envelopeOf("{}"),
        true,
      );
    });
  } finally {
    session.close();
  }
}

Deno.test("grpc-timeout: the handler's signal ends with a TimeoutError when it passes; a call under a long one answers", async () => {
  const server = new GrpcServer(Compute, {
    health: async (_req, ctx) => {
      // The short deadline waits for its signal; the long one answers at once.
      if (ctx.header("grpc-timeout")[0] !== "50m") return { backend: "answered" };
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      return { backend: (ctx.signal.reason as DOMException).name };
    },
  });
  const endpoint = await server.listen("127.0.0.1", 0);
  try {
    const slow = await rawHealth(endpoint, "50m");
    assert.equal(slow.status, "0");
    assert.match(slow.body, /"backend":"TimeoutError"/);
    // (That its timer goes with the call is checked by tests/faults/memory_test.ts.)
    const quick = await rawHealth(endpoint, "10M");
    assert.equal(quick.status, "0");
    assert.match(quick.body, /"backend":"answered"/);
  } finally {
    await server.close();
  }
});
