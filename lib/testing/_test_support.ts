/**
 * Helpers shared by the test daemon's own tests (not published).
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConnectError } from "@connectrpc/connect";

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
