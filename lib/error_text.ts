/**
 * The daemon's error texts turned into the typed errors of `errors.ts`: a
 * `"<token>: <text>"` message, or a bare sentinel text (v0.32.3 streams carry
 * no token), with `context_overflow` counts read from the text or a Decode
 * chunk's `error_detail`. Free of Connect and protobuf imports, so that a
 * Decode error chunk is typed without loading them; `rpc_errors.ts` adds what
 * a failed Connect call needs.
 *
 * @example
 * ```ts
 * import { fromStreamErrorChunk } from "./error_text.ts";
 * import { ModelBusyError } from "@contenox/modeldconn";
 *
 * const err = fromStreamErrorChunk({ error: "model_busy: modeld active model slot is busy", errorToken: "" });
 * console.assert(err instanceof ModelBusyError);
 * ```
 *
 * @module
 */

import type { DecodeChunk } from "../gen/contenox/transport/v1/compute_pb.ts";
import {
  type ContextOverflowCounts,
  daemonErrorFor,
  type DaemonErrorToken,
  DaemonInternalError,
  isDaemonErrorToken,
  type ModeldError,
} from "./errors.ts";

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

/** The fields of a Decode chunk an error chunk is typed from. */
export type ErrorChunk = Pick<DecodeChunk, "error" | "errorToken"> & {
  /** The `context_overflow` counts (v0.33+). */
  errorDetail?: Partial<ContextOverflowCounts>;
};

/**
 * Maps the error chunk of a Decode stream (the stream itself ended OK).
 *
 * @param chunk A chunk whose `error` is non-empty.
 * @param rpc The RPC name for the message.
 * @returns The typed error.
 *
 * @example
 * ```ts
 * import { fromStreamErrorChunk } from "./error_text.ts";
 * import { ContextOverflowError } from "@contenox/modeldconn";
 *
 * const err = fromStreamErrorChunk({
 *   error: "exceeded the session context window during decode",
 *   errorToken: "context_overflow",
 *   errorDetail: { stage: "decode", residentTokens: 3, additionalTokens: 1, numCtx: 4 },
 * });
 * console.assert(err instanceof ContextOverflowError && err.numCtx === 4);
 * ```
 */
export function fromStreamErrorChunk(chunk: ErrorChunk, rpc = "Decode"): ModeldError {
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

/**
 * Classifies `"<token>: <text>"`, or a bare sentinel text (v0.32.3 streams).
 *
 * @param message The status message or chunk error.
 * @param grpcCode The gRPC status code (0 for a stream chunk).
 * @param rpc The RPC name.
 * @param cause The error to keep as the cause.
 * @param overflow Reads `context_overflow` counts, called only for that token.
 * @returns The typed error, or `undefined` when the text names no token.
 *
 * @example
 * ```ts
 * import { classifyMessage } from "./error_text.ts";
 * const err = classifyMessage("session is closed", 0, "Decode", undefined, () => undefined);
 * console.assert(err?.code === "session_closed");
 * ```
 */
export function classifyMessage(
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

/**
 * Reads counts from the message text, which both the v0.33+ transport and the
 * v0.32.3 llama backend write as `during <stage>: resident_tokens=R additional_tokens=A num_ctx=N`.
 *
 * @param message The error text.
 * @returns The counts, or `undefined` when the text has none.
 *
 * @example
 * ```ts
 * import { parseOverflowText } from "./error_text.ts";
 * const counts = parseOverflowText("overflow during decode: resident_tokens=3 additional_tokens=1 num_ctx=4");
 * console.assert(counts?.numCtx === 4);
 * ```
 */
export function parseOverflowText(message: string): Partial<ContextOverflowCounts> | undefined {
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
