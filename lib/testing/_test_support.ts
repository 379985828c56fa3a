/**
 * Helpers shared by the tests (not published).
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
