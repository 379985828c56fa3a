import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { type CallTarget, GrpcCall } from "./grpc_call.ts";

const target: CallTarget = {
  connection: { request: () => Promise.reject(new Error("not dialled in this test")) },
  endpoint: "127.0.0.1:1",
  instanceId: "",
  maxBytes: 1 << 20,
};

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* the deadline timer cannot fire meanwhile */ }
}

Deno.test("grpc: the daemon's CANCEL after our deadline passed is DEADLINE_EXCEEDED (grpc-go's rule); before it, CANCELED", () => {
  const late = new GrpcCall(target, "/s/M", "M", undefined, 2);
  busyWait(5);
  late.onReset(8);
  assert.throws(
    () => late.poll(),
    (err) => err instanceof ConnectError && err.code === Code.DeadlineExceeded,
  );
  late.finish();

  const early = new GrpcCall(target, "/s/M", "M", undefined, 60_000);
  early.onReset(8);
  assert.throws(
    () => early.poll(),
    (err) => err instanceof ConnectError && err.code === Code.Canceled,
  );
  early.finish();
});
