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

/**
 * Whether a path exists.
 *
 * @param path The path.
 * @returns False only for NotFound; other errors are thrown.
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
