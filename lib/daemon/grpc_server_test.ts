import assert from "node:assert/strict";
import { Compute } from "../../gen/contenox/transport/v1/compute_pb.ts";
import { envelopeOf } from "../envelope.ts";
import { rawGrpcCall } from "../testing/_test_support.ts";
import { GrpcServer } from "./grpc_server.ts";

/** One Health call with the given grpc-timeout; the response's status and body as text. */
async function rawHealth(
  endpoint: string,
  timeout: string,
): Promise<{ body: string; status: string }> {
  const { fields, data } = await rawGrpcCall(
    endpoint,
    "/contenox.transport.v1.Compute/Health",
    envelopeOf("{}"),
    [["grpc-timeout", timeout]],
  );
  return {
    status: fields.find(([n]) => n === "grpc-status")?.[1] ?? "",
    body: data.map((d) => new TextDecoder().decode(d.subarray(5))).join(""),
  };
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
