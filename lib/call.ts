/**
 * Per-call options (`signal`, `timeoutMs`) and the one place unary RPCs turn
 * Connect errors into typed {@linkcode ModeldError}s.
 *
 * @example
 * ```ts ignore
 * import { unary } from "./call.ts";
 * const health = await unary(conn, "Health", { timeoutMs: 2000 }, (o) => conn.rpc.health({}, o));
 * ```
 *
 * @module
 */

import type { CallOptions as ConnectCallOptions } from "@connectrpc/connect";
import { fromRpcError } from "./rpc_errors.ts";
import type { Connection } from "./transport.ts";
import type { ModeldError } from "./errors.ts";

/**
 * Options every call takes.
 *
 * @example
 * ```ts ignore
 * await client.status({ signal: AbortSignal.timeout(5000) });
 * await client.status({ timeoutMs: 5000 });
 * ```
 */
export interface CallOptions {
  /** Aborts the call; an abort surfaces as `AbortedError` (a timeout reason as `TimeoutError`). */
  signal?: AbortSignal;
  /** A deadline in milliseconds, also sent to the daemon as `grpc-timeout`. */
  timeoutMs?: number;
}

/**
 * Runs one unary RPC, mapping any failure to a typed error.
 *
 * @param conn The connection (for the endpoint in error messages).
 * @param rpc The RPC name, for error messages.
 * @param options The caller's signal and timeout.
 * @param run Issues the call with Connect call options.
 * @returns The response.
 * @throws {ModeldError} Every failure, typed.
 *
 * @example
 * ```ts ignore
 * const res = await unary(conn, "Status", {}, (o) => conn.rpc.status({}, o));
 * ```
 */
export async function unary<T>(
  conn: Connection,
  rpc: string,
  options: CallOptions,
  run: (o: ConnectCallOptions) => Promise<T>,
): Promise<T> {
  try {
    return await run({ signal: options.signal, timeoutMs: options.timeoutMs });
  } catch (err) {
    throw fromRpcError(err, {
      rpc,
      endpoint: conn.endpoint,
      signal: options.signal,
    }) as ModeldError;
  }
}
