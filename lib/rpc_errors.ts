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
import type { DecodeChunk } from "../gen/contenox/transport/v1/compute_pb.ts";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.ts";
import {
  AbortedError,
  ConnectionError,
  type ContextOverflowCounts,
  daemonErrorFor,
  type DaemonErrorToken,
  DaemonInternalError,
  DaemonTooOldError,
  isDaemonErrorToken,
  isPermissionError,
  ModeldError,
  PermissionNeededError,
  TimeoutError,
} from "./errors.ts";

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
 * The daemon's sentinel texts: v0.32.3 sends stream errors without a token,
 * so the text is all there is to classify them by.
 */
const SENTINEL_TEXTS: ReadonlyArray<readonly [string, DaemonErrorToken]> = [
  ["context canceled", "context_canceled"],
  ["context deadline exceeded", "deadline_exceeded"],
  ["stale owner fence token", "stale_fence"],
  ["instance is not the local runtime owner", "not_owner"],
  ["session is closed", "session_closed"],
  ["exceeded the session context window", "context_overflow"],
  ["session marked fatal; evict and reopen", "session_fatal"],
  ["modeld active model slot is busy", "model_busy"],
  ["requested model is not active in modeld", "model_not_active"],
  ["modeld active model slot must be switched", "model_switch_required"],
  ["modeld accelerator device is busy", "device_busy"],
  ["modeld failed to load model", "model_load_failed"],
  ["insufficient memory for requested model", "insufficient_memory"],
  ["stale modeld slot generation", "slot_generation_stale"],
  ["model type not served by this modeld backend", "backend_mismatch"],
  ["unsupported transport feature", "unsupported_feature"],
  ["contextasm: context manifest mismatch", "manifest_mismatch"],
  ["model not found in modeld's local store", "model_not_found"],
  ["model content digest mismatch", "digest_mismatch"],
  ["unsupported model backend type", "unsupported_model_type"],
  // v0.32.3's llama backend had its own error values, not the transport's
  // sentinels: unary calls carry them as `internal: llama: …` (contract 6.2).
  ["llama: context overflow", "context_overflow"],
  ["llama: session closed", "session_closed"],
];

/** The prefix the daemon puts on an error that matches none of its tokens. */
const INTERNAL_PREFIX = "internal: ";

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

/**
 * Maps the error chunk of a Decode stream (the stream itself ended OK).
 *
 * @param chunk A chunk whose `error` is non-empty.
 * @param rpc The RPC name for the message.
 * @returns The typed error.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { DecodeChunkSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
 * import { fromStreamErrorChunk } from "./rpc_errors.ts";
 * import { ContextOverflowError } from "@contenox/modeldconn";
 *
 * const err = fromStreamErrorChunk(create(DecodeChunkSchema, {
 *   error: "exceeded the session context window during decode",
 *   errorToken: "context_overflow",
 *   errorDetail: { stage: "decode", residentTokens: 3, additionalTokens: 1, numCtx: 4 },
 * }));
 * console.assert(err instanceof ContextOverflowError && err.numCtx === 4);
 * ```
 */
export function fromStreamErrorChunk(chunk: DecodeChunk, rpc = "Decode"): ModeldError {
  const detail = chunk.errorDetail;
  const counts = detail
    ? {
      stage: detail.stage,
      residentTokens: detail.residentTokens,
      additionalTokens: detail.additionalTokens,
      numCtx: detail.numCtx,
    }
    : undefined;
  if (isDaemonErrorToken(chunk.errorToken)) {
    return daemonErrorFor(chunk.errorToken, { grpcCode: 0, detail: chunk.error, rpc }, counts);
  }
  return classifyMessage(chunk.error, 0, rpc, undefined, () => counts) ??
    new DaemonInternalError(rpc, 0, chunk.error);
}

/** Classifies `"<token>: <text>"`, or a bare sentinel text (v0.32.3 streams). */
function classifyMessage(
  message: string,
  grpcCode: number,
  rpc: string,
  cause: unknown,
  overflow: () => Partial<ContextOverflowCounts> | undefined,
): ModeldError | undefined {
  const colon = message.indexOf(": ");
  const head = colon >= 0 ? message.slice(0, colon) : message;
  if (isDaemonErrorToken(head)) {
    const detail = message.slice(colon + 2);
    return daemonErrorFor(head, { grpcCode, detail, rpc, cause }, overflow());
  }
  const text0 = message.startsWith(INTERNAL_PREFIX)
    ? message.slice(INTERNAL_PREFIX.length)
    : message;
  for (const [text, token] of SENTINEL_TEXTS) {
    if (text0.startsWith(text)) {
      return daemonErrorFor(token, { grpcCode, detail: message, rpc, cause }, {
        ...parseOverflowText(message),
        ...overflow(),
      });
    }
  }
  return undefined;
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

/**
 * Reads counts from the message text, which both the v0.33+ transport and the
 * v0.32.3 llama backend write as `during <stage>: resident_tokens=R additional_tokens=A num_ctx=N`.
 */
function parseOverflowText(message: string): Partial<ContextOverflowCounts> | undefined {
  const m = /during (\w+): resident_tokens=(\d+) additional_tokens=(\d+) num_ctx=(\d+)/.exec(
    message,
  );
  if (!m) return undefined;
  return {
    stage: m[1],
    residentTokens: Number(m[2]),
    additionalTokens: Number(m[3]),
    numCtx: Number(m[4]),
  };
}

function findCause(err: unknown, test: (e: unknown) => boolean): unknown {
  for (let e = err, depth = 0; e !== undefined && depth < 8; depth++) {
    if (test(e)) return e;
    e = e instanceof Error ? e.cause : undefined;
  }
  return undefined;
}
