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
import type { ModeldError } from "./errors.ts";
import type { RpcErrorContext } from "./rpc_errors.ts";
import type { Connection } from "./transport.ts";
import { isUnprocessed } from "./transport_marks.ts";

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
  /**
   * A deadline in milliseconds, also sent to the daemon as `grpc-timeout`.
   * Unset: the connection's default (`DEFAULT_LIMITS`: Health 10 s, other
   * unary calls 10 minutes, PushModel and Decode none), enforced by the
   * client alone and not sent, as Go's client sends no deadline its caller did
   * not set; `Infinity`: none.
   */
  timeoutMs?: number;
}

/**
 * Runs one unary RPC, mapping any failure to a typed error. An already-aborted
 * signal fails before anything is sent; a call the daemon never processed
 * (REFUSED_STREAM, above a GOAWAY's last stream id) is sent once more, as
 * grpc-go's transparent retry does (not PushModel, whose frames are consumed).
 *
 * @param conn The connection (for the endpoint, the default deadlines).
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
  const ctx = { rpc, endpoint: conn.endpoint, signal: options.signal };
  if (options.signal?.aborted) throw await typedError(options.signal.reason, ctx);
  const timeoutMs = callTimeout(conn, rpc, options.timeoutMs);
  // A default deadline is the client's own; only the caller's goes on the wire.
  const callOptions: ConnectCallOptions = options.timeoutMs === undefined
    ? { signal: options.signal, ...conn.localDeadline(timeoutMs) }
    : { signal: options.signal, timeoutMs };
  for (let attempt = 0;; attempt++) {
    try {
      return await run(callOptions);
    } catch (err) {
      const retry = attempt === 0 && rpc !== "PushModel" && isUnprocessed(err) &&
        !options.signal?.aborted;
      if (!retry) throw await typedError(err, ctx);
    }
  }
}

/**
 * Maps anything a call threw to a typed error. The mapping (and Connect-ES
 * with it) is loaded when the first call fails, not at start-up; by then a
 * dial has loaded them anyway.
 *
 * @param err The thrown value.
 * @param ctx The RPC, endpoint and caller signal.
 * @returns The typed error.
 *
 * @example
 * ```ts
 * import { typedError } from "./call.ts";
 * const err = await typedError(new Error("boom"), { rpc: "Status", endpoint: "127.0.0.1:1" });
 * console.assert(err.code === "internal");
 * ```
 */
export async function typedError(err: unknown, ctx: RpcErrorContext): Promise<ModeldError> {
  const { fromRpcError } = await import("./rpc_errors.ts");
  return fromRpcError(err, ctx);
}

/**
 * The deadline of a call: the caller's, else the connection's default for it.
 *
 * @param conn The connection, whose `limits` hold the defaults.
 * @param rpc The RPC name.
 * @param timeoutMs The caller's timeout (`Infinity` = none).
 * @returns Milliseconds, or `undefined` for no deadline.
 *
 * @example
 * ```ts ignore
 * callTimeout(conn, "Health", undefined); // 10_000 with the defaults
 * ```
 */
export function callTimeout(
  conn: Connection,
  rpc: string,
  timeoutMs: number | undefined,
): number | undefined {
  const limits = conn.limits;
  const ms = timeoutMs ??
    (rpc === "Health"
      ? limits?.healthTimeoutMs
      : rpc === "PushModel" || rpc === "Decode"
      ? undefined
      : limits?.unaryTimeoutMs);
  return ms === undefined || !Number.isFinite(ms) ? undefined : ms;
}
