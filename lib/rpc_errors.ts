/**
 * Turns what a failed call produced (a Connect-ES `ConnectError`, an error
 * chunk inside a Decode stream, a thrown Deno error) into the typed errors of
 * `errors.ts`, following the daemon's encoding: a gRPC status whose message is
 * `"<token>: <text>"`, with `context_overflow` counts in a `google.rpc.ErrorInfo`
 * detail (unary) or in `error_token` + `error_detail` (stream).
 *
 * @example
 * ```ts
 * import { Code, ConnectError } from "@connectrpc/connect";
 * import { fromRpcError } from "./rpc_errors.ts";
 * import { ModelBusyError } from "@contenox/modeldconn";
 *
 * const err = fromRpcError(
 *   new ConnectError("model_busy: modeld active model slot is busy", Code.FailedPrecondition),
 *   { rpc: "OpenSession", endpoint: "127.0.0.1:1" },
 * );
 * console.assert(err instanceof ModelBusyError);
 * ```
 *
 * @module
 */

import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.ts";
import { classifyMessage, parseOverflowText } from "./error_text.ts";
import {
  AbortedError,
  ConnectionError,
  type ContextOverflowCounts,
  DaemonInternalError,
  DaemonTooOldError,
  isPermissionError,
  ModeldError,
  PermissionNeededError,
  TimeoutError,
} from "./errors.ts";

// Typing a Decode error chunk needs no Connect; it lives in error_text.ts.
export { fromStreamErrorChunk } from "./error_text.ts";

/** What the caller was doing when the error happened. */
export interface RpcErrorContext {
  /** The RPC name, e.g. `OpenSession`. */
  rpc: string;
  /** The endpoint called. */
  endpoint: string;
  /** The caller's signal, to tell a user abort from other cancellations. */
  signal?: AbortSignal;
}

/**
 * Maps anything a call threw to a {@linkcode ModeldError}.
 *
 * @param err The thrown value.
 * @param ctx The RPC, endpoint and caller signal.
 * @returns The typed error.
 *
 * @example
 * ```ts
 * import { Code, ConnectError } from "@connectrpc/connect";
 * import { fromRpcError } from "./rpc_errors.ts";
 * const err = fromRpcError(new ConnectError("unknown method Status for service x", Code.Unimplemented), {
 *   rpc: "Status", endpoint: "127.0.0.1:1",
 * });
 * console.assert(err.code === "daemon_too_old");
 * ```
 */
export function fromRpcError(err: unknown, ctx: RpcErrorContext): ModeldError {
  // Our own refusal (e.g. go_json's InvalidArgumentError while writing the
  // request), wrapped by Connect on its way out: the request message was never sent.
  const own = findCause(err, (e) => e instanceof ModeldError);
  if (own) return own as ModeldError;
  if (ctx.signal?.aborted) {
    const reason = ctx.signal.reason;
    if (reason instanceof DOMException && reason.name === "TimeoutError") {
      return new TimeoutError(ctx.rpc, { cause: reason });
    }
    return new AbortedError(ctx.rpc, { cause: reason });
  }
  const notCapable = findCause(err, isPermissionError);
  if (notCapable) {
    return new PermissionNeededError(
      "--allow-net",
      ctx.endpoint.replace(/:\d+$/, "").replace(/^\[|\]$/g, ""),
      `connect to modeld at ${ctx.endpoint}`,
      { cause: notCapable },
    );
  }
  if (!(err instanceof ConnectError)) {
    return new DaemonInternalError(ctx.rpc, Code.Unknown, String(err), { cause: err });
  }
  const message = err.rawMessage;
  const classified = classifyMessage(
    message,
    err.code,
    ctx.rpc,
    err,
    () => overflowFromDetails(err),
  );
  if (classified) return classified;
  switch (err.code) {
    case Code.Unimplemented:
      if (message.startsWith("unknown method") || message.startsWith("unknown service")) {
        return new DaemonTooOldError(ctx.rpc, { cause: err });
      }
      break;
    case Code.Unavailable:
      return new ConnectionError(ctx.endpoint, message, { cause: err });
    case Code.DeadlineExceeded:
      return new TimeoutError(ctx.rpc, { cause: err });
    case Code.Canceled:
      return new ConnectionError(ctx.endpoint, `the call was cancelled: ${message}`, {
        cause: err,
      });
  }
  return new DaemonInternalError(ctx.rpc, err.code, message, { cause: err });
}

/** Reads the counts from a `google.rpc.ErrorInfo` detail (daemons v0.33.0+). */
function overflowFromDetails(err: ConnectError): Partial<ContextOverflowCounts> | undefined {
  const info = err.findDetails(ErrorInfoSchema).find((d) => d.reason === "context_overflow");
  if (!info) return parseOverflowText(err.rawMessage);
  const count = (key: string) => {
    const n = Number.parseInt(info.metadata[key] ?? "", 10);
    return Number.isFinite(n) ? n : 0;
  };
  return {
    stage: info.metadata["stage"] ?? "",
    residentTokens: count("resident_tokens"),
    additionalTokens: count("additional_tokens"),
    numCtx: count("num_ctx"),
  };
}

function findCause(err: unknown, test: (e: unknown) => boolean): unknown {
  for (let e = err, depth = 0; e !== undefined && depth < 8; depth++) {
    if (test(e)) return e;
    e = e instanceof Error ? e.cause : undefined;
  }
  return undefined;
}
