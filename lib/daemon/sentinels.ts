/**
 * The daemon's error classes as the test daemon raises them: a
 * {@linkcode ServiceError} carries the Go sentinel token and the Go
 * `err.Error()` text, and {@linkcode encodeServiceError} turns it into the
 * gRPC status modeld would send (`"<token>: <text>"`, the sentinel's code,
 * and for a counted `context_overflow` at v0.33+ the `ErrorInfo` counts).
 *
 * @example
 * ```ts
 * import { encodeServiceError, ServiceError } from "./sentinels.ts";
 * const status = encodeServiceError(ServiceError.of("session_closed"), "v0.36.0");
 * console.assert(status.message === "session_closed: session is closed");
 * ```
 *
 * @module
 */

import { Code } from "@connectrpc/connect";

/**
 * The daemon versions the test daemon can imitate.
 *
 * @example
 * ```ts
 * import type { DaemonVersion } from "@contenox/modeldconn/testing";
 * const versions: DaemonVersion[] = ["v0.32.3", "v0.36.0"];
 * ```
 */
export type DaemonVersion = "v0.32.3" | "v0.36.0";

/**
 * Counts a `context_overflow` carries at v0.33+ (ErrorInfo / `error_detail`).
 *
 * @example
 * ```ts
 * import type { OverflowDetail } from "@contenox/modeldconn/testing";
 * const d: OverflowDetail = { stage: "decode", residentTokens: 3, additionalTokens: 1, numCtx: 4 };
 * ```
 */
export interface OverflowDetail {
  /** `prefix`, `suffix` or `decode`. */
  stage: string;
  /** Tokens resident before the step. */
  residentTokens: number;
  /** Tokens the step wanted to add. */
  additionalTokens: number;
  /** The window. */
  numCtx: number;
}

interface Sentinel {
  readonly token: string;
  readonly code: Code;
  readonly text: string;
}

/** The HEAD sentinel table, in Go's order (the first match wins). */
const SENTINELS: readonly Sentinel[] = [
  { token: "context_canceled", code: Code.Canceled, text: "context canceled" },
  { token: "deadline_exceeded", code: Code.DeadlineExceeded, text: "context deadline exceeded" },
  { token: "stale_fence", code: Code.FailedPrecondition, text: "stale owner fence token" },
  {
    token: "not_owner",
    code: Code.FailedPrecondition,
    text: "instance is not the local runtime owner",
  },
  { token: "session_closed", code: Code.FailedPrecondition, text: "session is closed" },
  {
    token: "context_overflow",
    code: Code.ResourceExhausted,
    text: "exceeded the session context window",
  },
  { token: "session_fatal", code: Code.Aborted, text: "session marked fatal; evict and reopen" },
  { token: "model_busy", code: Code.FailedPrecondition, text: "modeld active model slot is busy" },
  {
    token: "model_not_active",
    code: Code.FailedPrecondition,
    text: "requested model is not active in modeld",
  },
  {
    token: "model_switch_required",
    code: Code.FailedPrecondition,
    text: "modeld active model slot must be switched",
  },
  { token: "device_busy", code: Code.ResourceExhausted, text: "modeld accelerator device is busy" },
  { token: "model_load_failed", code: Code.Internal, text: "modeld failed to load model" },
  {
    token: "insufficient_memory",
    code: Code.ResourceExhausted,
    text: "insufficient memory for requested model",
  },
  {
    token: "slot_generation_stale",
    code: Code.FailedPrecondition,
    text: "stale modeld slot generation",
  },
  {
    token: "backend_mismatch",
    code: Code.FailedPrecondition,
    text: "model type not served by this modeld backend",
  },
  { token: "unsupported_feature", code: Code.Unimplemented, text: "unsupported transport feature" },
  {
    token: "manifest_mismatch",
    code: Code.FailedPrecondition,
    text: "contextasm: context manifest mismatch",
  },
  {
    token: "model_not_found",
    code: Code.NotFound,
    text: "model not found in modeld's local store",
  },
  {
    token: "digest_mismatch",
    code: Code.FailedPrecondition,
    text: "model content digest mismatch",
  },
  {
    token: "unsupported_model_type",
    code: Code.InvalidArgument,
    text: "unsupported model backend type",
  },
];

/** The tokens v0.32.3's table knows; anything else crosses the wire as `internal`. */
const V0323_TOKENS: ReadonlySet<string> = new Set([
  "stale_fence",
  "not_owner",
  "session_closed",
  "context_overflow",
  "manifest_mismatch",
]);

/**
 * An error raised inside the test daemon, the way a Go service error looks:
 * the sentinel `token` (or `""` for an unclassified error) and the full Go
 * `err.Error()` text. A `model_load_failed` wrapping another class lists the
 * inner token in `wraps`.
 *
 * @example
 * ```ts
 * import { ServiceError } from "./sentinels.ts";
 * const err = ServiceError.of("model_not_found", "qwen (llama)");
 * console.assert(err.message === "model not found in modeld's local store: qwen (llama)");
 * ```
 */
export class ServiceError extends Error {
  /** The sentinel token, or `""` for an error no sentinel matches. */
  readonly token: string;
  /** Overflow counts (v0.33+ typed overflow). */
  readonly detail?: OverflowDetail;
  /** Tokens of errors this one wraps (Go `%w`), matched after `token`. */
  readonly wraps: readonly string[];

  /**
   * @param token The sentinel token ("" = none).
   * @param message The Go `err.Error()` text.
   * @param options Overflow counts and wrapped tokens.
   */
  constructor(
    token: string,
    message: string,
    options: { detail?: OverflowDetail; wraps?: readonly string[] } = {},
  ) {
    super(message);
    this.name = "ServiceError";
    this.token = token;
    if (options.detail) this.detail = options.detail;
    this.wraps = options.wraps ?? [];
  }

  /**
   * The sentinel error itself, optionally with a suffix the way Go's
   * `fmt.Errorf("%w: %s", sentinel, rest)` writes it.
   *
   * @param token A sentinel token.
   * @param rest Text after the sentinel text.
   * @returns The error.
   *
   * @example
   * ```ts
   * import { ServiceError } from "./sentinels.ts";
   * console.assert(ServiceError.of("stale_fence").message === "stale owner fence token");
   * ```
   */
  static of(token: string, rest?: string): ServiceError {
    const text = sentinelText(token);
    return new ServiceError(token, rest ? `${text}: ${rest}` : text);
  }

  /**
   * A typed overflow (HEAD's `transport.NewContextOverflowError`).
   *
   * @param detail The counts.
   * @returns The error, whose text names the stage and counts.
   *
   * @example
   * ```ts
   * import { ServiceError } from "./sentinels.ts";
   * const err = ServiceError.overflow({ stage: "prefix", residentTokens: 0, additionalTokens: 15, numCtx: 4 });
   * console.assert(err.message.endsWith("during prefix: resident_tokens=0 additional_tokens=15 num_ctx=4"));
   * ```
   */
  static overflow(detail: OverflowDetail): ServiceError {
    return new ServiceError(
      "context_overflow",
      `${sentinelText("context_overflow")} during ${detail.stage}: ` +
        `resident_tokens=${detail.residentTokens} additional_tokens=${detail.additionalTokens} ` +
        `num_ctx=${detail.numCtx}`,
      { detail },
    );
  }
}

/**
 * The Go sentinel text of a token.
 *
 * @param token A sentinel token.
 * @returns Its `errors.New` text.
 *
 * @example
 * ```ts
 * import { sentinelText } from "./sentinels.ts";
 * console.assert(sentinelText("model_busy") === "modeld active model slot is busy");
 * ```
 */
export function sentinelText(token: string): string {
  const s = SENTINELS.find((s) => s.token === token);
  if (!s) throw new TypeError(`Cannot find sentinel ${token}: not in the table`);
  return s.text;
}

/** A gRPC status ready to put on the wire. */
export interface WireStatus {
  /** The gRPC code (0 = OK; otherwise a Connect `Code`). */
  code: number;
  /** The unencoded `grpc-message`. */
  message: string;
  /** The overflow counts for a `google.rpc.ErrorInfo` detail. */
  overflow?: OverflowDetail;
}

/**
 * Encodes a service error as modeld's `encodeError` does at `version`: the
 * first table row the error matches gives `"<token>: <text>"` and the code;
 * no match gives INTERNAL `"internal: <text>"`. At v0.32.3 only five tokens
 * exist and overflow never has details.
 *
 * @param err The error a handler threw (non-{@linkcode ServiceError}s are internal).
 * @param version The daemon version to imitate.
 * @returns The status.
 *
 * @example
 * ```ts
 * import { encodeServiceError, ServiceError } from "./sentinels.ts";
 * const st = encodeServiceError(ServiceError.of("model_busy"), "v0.32.3");
 * console.assert(st.message === "internal: modeld active model slot is busy");
 * ```
 */
export function encodeServiceError(err: unknown, version: DaemonVersion): WireStatus {
  if (err instanceof ServiceError) {
    const matches = [err.token, ...err.wraps].filter((t) =>
      t !== "" && (version !== "v0.32.3" || V0323_TOKENS.has(t))
    );
    const row = SENTINELS.find((s) => matches.includes(s.token));
    if (row) {
      const status: WireStatus = { code: row.code, message: `${row.token}: ${err.message}` };
      if (row.token === "context_overflow" && err.detail && version !== "v0.32.3") {
        status.overflow = err.detail;
      }
      return status;
    }
    return { code: Code.Internal, message: `internal: ${err.message}` };
  }
  const text = err instanceof Error ? err.message : String(err);
  return { code: Code.Internal, message: `internal: ${text}` };
}

/**
 * The `error_token` of a Decode error chunk (HEAD): the first matching row's
 * token, or `""`.
 *
 * @param err The stream error.
 * @returns The token.
 *
 * @example
 * ```ts
 * import { errorToken, ServiceError } from "./sentinels.ts";
 * console.assert(errorToken(ServiceError.of("session_fatal")) === "session_fatal");
 * ```
 */
export function errorToken(err: unknown): string {
  if (!(err instanceof ServiceError)) return "";
  const matches = [err.token, ...err.wraps];
  return SENTINELS.find((s) => matches.includes(s.token))?.token ?? "";
}
