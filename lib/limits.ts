/**
 * The bounds of a connection and its calls ({@linkcode TransportLimits}) and
 * their defaults ({@linkcode DEFAULT_LIMITS}). Kept apart from the transport,
 * so that naming a limit loads no HTTP/2 stack.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS, type TransportLimits } from "@contenox/modeldconn";
 *
 * const limits: TransportLimits = { healthTimeoutMs: 2_000 };
 * console.log({ ...DEFAULT_LIMITS, ...limits });
 * ```
 *
 * @module
 */

/**
 * Bounds of a connection and its calls; see {@linkcode DEFAULT_LIMITS}.
 *
 * @example
 * ```ts
 * import type { TransportLimits } from "@contenox/modeldconn";
 * const limits: TransportLimits = { healthTimeoutMs: 2_000 };
 * ```
 */
export interface TransportLimits {
  /** How long the HTTP/2 handshake (TCP connect, the daemon's SETTINGS) may take. */
  connectTimeoutMs?: number;
  /** The deadline of a Health call that sets no `timeoutMs`. */
  healthTimeoutMs?: number;
  /** The deadline of any other unary call (but PushModel) that sets no `timeoutMs`. */
  unaryTimeoutMs?: number;
  /** How often an open call with no incoming data sends a keepalive PING. */
  pingIntervalMs?: number;
  /** How long a PING may go unanswered before the connection counts as dead. */
  pingTimeoutMs?: number;
  /** The largest message sent or received (refused at its length prefix). */
  maxMessageBytes?: number;
}

/**
 * The defaults, next to grpc-go's: handshake 20 s (grpc-go's minimum connect
 * timeout); Health 10 s and other unary calls 10 minutes (grpc-go has no
 * default deadline; a cold model load can take minutes); PushModel and Decode
 * none (bounded by the caller's signal and the keepalive); a keepalive PING
 * after 6 minutes without data while a call is open, never while idle (grpc-go
 * servers allow one per 5 minutes and only with open streams); messages up to
 * 512 MiB both ways (modeld's `maxTransportMessageBytes`, v0.33.0+).
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS } from "@contenox/modeldconn";
 * console.assert(DEFAULT_LIMITS.connectTimeoutMs === 20_000);
 * ```
 */
export const DEFAULT_LIMITS: Readonly<Required<TransportLimits>> = Object.freeze({
  connectTimeoutMs: 20_000,
  healthTimeoutMs: 10_000,
  unaryTimeoutMs: 600_000,
  pingIntervalMs: 360_000,
  pingTimeoutMs: 20_000,
  maxMessageBytes: 512 * 1024 * 1024,
});
