/**
 * Helpers shared by the tests (not published).
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConnectError } from "@connectrpc/connect";
import { CONTENT_TYPE } from "../grpc_call.ts";
import { encodeHeaderBlock, type HeaderField } from "../h2/hpack.ts";
import { H2Session } from "../h2/session.ts";

/**
 * Awaits a call that must fail with a gRPC status.
 *
 * @param promise The call.
 * @returns The ConnectError it failed with.
 */
export async function rejects(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ConnectError, `expected a ConnectError, got ${err}`);
    return err;
  }
  assert.fail("expected the call to fail");
}

export { exists } from "../daemon/model_store.ts";

/**
 * `deno info --json ENTRY`, parsed: the module graph Deno resolves for `entry`.
 *
 * @param entry A module path, relative to the working directory.
 * @returns The parsed JSON.
 */
export async function denoInfo(entry: string): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/**
 * A model file that exists (the test daemon refuses a missing `path`, as the
 * real daemon does): `GGUF` in a new temporary directory. The scripted engine
 * never reads more than that it exists.
 *
 * @param name The file name.
 * @returns Its path.
 */
export async function modelFile(name = "m.gguf"): Promise<string> {
  const path = `${await Deno.makeTempDir({ prefix: "model-" })}/${name}`;
  await Deno.writeTextFile(path, "GGUF");
  return path;
}

/**
 * One gRPC call over a bare HTTP/2 session (no Connect, no transport), for
 * tests that look at the wire itself: the response's header fields (headers,
 * then trailers) and its DATA payloads, one per frame, as they came.
 *
 * @param endpoint The server's `host:port` on 127.0.0.1.
 * @param path `/package.Service/Method`.
 * @param body The request's envelopes.
 * @param extra Headers after the standard ones (a fence, `grpc-timeout`).
 * @returns The fields and the DATA payloads.
 */
export async function rawGrpcCall(
  endpoint: string,
  path: string,
  body: Uint8Array,
  extra: HeaderField[] = [],
): Promise<{ fields: HeaderField[]; data: Uint8Array[] }> {
  const session = await H2Session.connect("127.0.0.1", Number(endpoint.split(":").at(-1)));
  try {
    await session.handshake;
    const block = encodeHeaderBlock([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", path],
      [":authority", endpoint],
      ["content-type", CONTENT_TYPE],
      ["te", "trailers"],
      ...extra,
    ]);
    const fields: HeaderField[] = [];
    const data: Uint8Array[] = [];
    await new Promise<void>((resolve, reject) => {
      session.request(
        block,
        {
          onHeaders: (f, end) => {
            fields.push(...f);
            if (end) resolve();
          },
          onData: (chunk, end) => {
            if (chunk.length > 0) data.push(chunk);
            if (end) resolve();
          },
          onReset: (code) => reject(new Error(`reset ${code}`)),
          onError: reject,
        },
        body,
        true,
      );
    });
    return { fields, data };
  } finally {
    session.close();
  }
}
