/**
 * Minimal repro (no Connect, no modeldconn) of Deno 2.9.3's `node:http2`
 * client failing a stream it did not cancel: one connection; each round opens
 * a streaming call, resets it with RST_STREAM CANCEL while the server is still
 * sending DATA for it (legal: RFC 9113 §6.4 has the receiver tolerate those),
 * then makes one small unary call. The server below never sends RST_STREAM,
 * yet the unary stream closes with rstCode 8 (CANCEL) and the session is
 * destroyed soon after. The hostile server, run with HOSTILE_DEBUG=1, logs
 * every RST_STREAM it receives: the client resets the right (Decode) streams,
 * and nothing goes on the wire for the unary stream it fails. The same happens
 * through modeldconn against the real grpc-go peer (tests/interop/bin/peer,
 * memory mode): 193 of 300 Health calls made right after a cancelled decode
 * failed with "http/2 stream closed with error code CANCEL". So the RST CANCEL
 * "from the test daemon" of issue 8, item 16 is Deno's client, not a server.
 *
 *   bash tests/faults/build.sh
 *   deno run --allow-net=127.0.0.1 --allow-run=tests/faults/bin/hostile bench/h2_cancel_repro.ts
 *
 * @module
 */

import http2 from "node:http2";
import { startHostile } from "../tests/faults/hostile.ts";

await using hostile = await startHostile();
// Mode `ok`: Decode streams messages until the client resets the stream; Health answers.
const session = http2.connect(`http://${hostile.addr("ok")}`);
let sessionError = "";
session.on("error", (e: Error) => sessionError = e.message);
const body = new Uint8Array([0, 0, 0, 0, 2, 0x7b, 0x7d]); // one gRPC message: {}
const call = (method: string) => {
  const stream = session.request({
    ":method": "POST",
    ":path": `/contenox.transport.v1.Compute/${method}`,
    "content-type": "application/grpc+contenoxtransportjson",
  });
  stream.on("error", () => {});
  stream.end(body);
  return stream;
};

let spurious = 0;
let rounds = 0;
for (; rounds < 200 && !session.destroyed; rounds++) {
  const decode = call("Decode");
  await new Promise<void>((resolve) => {
    let bytes = 0;
    decode.on("data", (chunk: Uint8Array) => {
      bytes += chunk.length;
      if (bytes > 20_000 && !decode.closed) {
        decode.close(http2.constants.NGHTTP2_CANCEL);
        resolve();
      }
    });
    decode.on("close", () => resolve());
  });
  if (session.destroyed) break;
  const health = call("Health");
  const code = await new Promise<number>((resolve) => {
    health.on("data", () => {});
    health.on("close", () => resolve(health.rstCode ?? 0));
  });
  if (code !== 0) spurious++;
}
console.log(JSON.stringify({
  deno: Deno.version.deno,
  rounds,
  unaryStreamsResetWithoutServerRst: spurious,
  sessionDestroyed: session.destroyed,
  sessionError,
}));
if (!session.destroyed) session.close();
