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
