/**
 * One gRPC call on one HTTP/2 stream of a connection: request headers in
 * modeld's dialect (content-subtype, owner fence, `grpc-timeout`), envelopes
 * written as they are handed over (each awaited, so a push never queues more
 * than one frame), response envelopes read straight off the stream's `data`
 * events, and the outcome (status, a dropped connection, an abort or a
 * deadline) as one Connect error. No Connect pipeline sits between the stream
 * and the caller: Connect's typed client calls this through the transport in
 * `transport.ts`, and its gRPC helpers judge headers and trailers that are not
 * a plain success.
 *
 * @example
 * ```ts ignore
 * import { GrpcCall } from "./grpc_call.ts";
 *
 * const call = new GrpcCall(target, "/contenox.transport.v1.Compute/Health", "Health", undefined, 2000);
 * await call.send(envelope, true);
 * const payload = await call.next(); // the response message's bytes
 * await call.next(); // undefined: the call ended with status OK
 * ```
 *
 * @module
 */

import { Code, ConnectError } from "@connectrpc/connect";
import { validateResponse, validateTrailer } from "@connectrpc/connect/protocol-grpc";
import type http2 from "node:http2";
import { EnvelopeSplitter, EnvelopeTooLargeError } from "./envelope.ts";
import { reconcileStatusDetails } from "./status_details.ts";
import { markDropped, markUnprocessed } from "./transport_marks.ts";

/**
 * The gRPC content-type whose subtype selects modeld's JSON codec.
 *
 * @example
 * ```ts
 * import { CONTENT_TYPE } from "./grpc_call.ts";
 * console.assert(CONTENT_TYPE.endsWith("+contenoxtransportjson"));
 * ```
 */
export const CONTENT_TYPE = "application/grpc+contenoxtransportjson";
/**
 * The metadata key carrying the lease instance id (the owner fence).
 *
 * @example
 * ```ts
 * import { FENCE_HEADER } from "./grpc_call.ts";
 * console.assert(FENCE_HEADER === "x-contenox-owner-instance");
 * ```
 */
export const FENCE_HEADER = "x-contenox-owner-instance";

/** Where a call goes: the stream source and what every call on it shares. */
export interface CallTarget {
  /** Opens an HTTP/2 stream (after the handshake) and hears of bytes read (keepalive). */
  connection: {
    request(path: string, headers: http2.OutgoingHttpHeaders): Promise<http2.ClientHttp2Stream>;
    alive(stream: http2.ClientHttp2Stream): void;
  };
  /** `host:port`, for error messages. */
  endpoint: string;
  /** The fence sent with every call but Health ("" = none). */
  instanceId: string;
  /** The largest message sent or received. */
  maxBytes: number;
}

const NGHTTP2_CANCEL = 8;
/** Read-ahead before the stream is paused (HTTP/2 flow control then stops the daemon). */
const QUEUE_HIGH_WATER = 64;

/** The names of HTTP/2 error codes, for messages. */
const H2_CODES = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

/**
 * One call. Send with {@linkcode GrpcCall.send}, read with
 * {@linkcode GrpcCall.next} until it returns `undefined`; every failure is
 * thrown by the next `send` or `next` as a `ConnectError`. A caller that stops
 * early calls {@linkcode GrpcCall.cancel}, which resets the stream.
 *
 * @example
 * ```ts ignore
 * const call = new GrpcCall(target, path, "Decode", signal, undefined);
 * await call.send(envelope, true);
 * for (let m; (m = await call.next()) !== undefined;) handle(m);
 * ```
 */
export class GrpcCall {
  readonly #target: CallTarget;
  readonly #signal?: AbortSignal;
  readonly #splitter: EnvelopeSplitter;
  readonly #queue: Uint8Array[] = [];
  #stream?: http2.ClientHttp2Stream;
  #opening?: Promise<http2.ClientHttp2Stream>;
  #headers?: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader;
  #trailers?: http2.IncomingHttpHeaders;
  #ended = false;
  #failure?: Error;
  #done = false;
  #paused = false;
  #wake?: () => void;
  #timer?: ReturnType<typeof setTimeout>;
  readonly #onAbort = () => this.#fail(abortError(this.#signal!.reason));

  /**
   * Prepares the call; the stream opens with the first `send`.
   *
   * @param target The connection's stream source and shared settings.
   * @param path `/package.Service/Method`.
   * @param rpc The method name (Health goes unfenced).
   * @param signal The caller's signal.
   * @param timeoutMs The deadline; `undefined` for none.
   * @param announce Whether to send the deadline as `grpc-timeout` (a default is enforced here alone).
   */
  constructor(
    target: CallTarget,
    readonly path: string,
    readonly rpc: string,
    signal: AbortSignal | undefined,
    readonly timeoutMs: number | undefined,
    readonly announce = true,
  ) {
    this.#target = target;
    this.#signal = signal;
    this.#splitter = new EnvelopeSplitter(target.maxBytes);
    if (signal?.aborted) {
      this.#failure = abortError(signal.reason);
      return;
    }
    signal?.addEventListener("abort", this.#onAbort);
    // setTimeout fires at once beyond 2^31-1 ms; a deadline that far (24.8 days) is none.
    if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
      this.#timer = setTimeout(
        () => this.#fail(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
        timeoutMs,
      );
    }
  }

  /**
   * Writes one envelope; resolves once the stream took it.
   *
   * @param envelope A whole envelope.
   * @param last Whether it ends the request.
   * @returns Whether more may be sent: `false` once the daemon has answered
   *   (or reset the stream), when further frames would be thrown away.
   * @throws {ConnectError} When the call failed.
   */
  async send(envelope: Uint8Array, last: boolean): Promise<boolean> {
    const stream = this.#stream ?? await this.#open();
    if (this.#failure) throw this.#failure;
    if (this.#ended || stream.writableEnded || stream.destroyed) return false;
    if (envelope.length - 5 > this.#target.maxBytes) {
      const err = new ConnectError(
        `message size ${
          envelope.length - 5
        } is larger than configured writeMaxBytes ${this.#target.maxBytes}`,
        Code.ResourceExhausted,
      );
      this.#fail(err);
      throw err;
    }
    await new Promise<void>((resolve) => {
      const written = () => resolve();
      if (last) stream.end(envelope, written);
      else stream.write(envelope, written);
    });
    return !this.#failure && !this.#ended;
  }

  /** Ends the request without another message. */
  async end(): Promise<void> {
    const stream = this.#stream ?? await this.#open();
    if (!stream.writableEnded) await new Promise<void>((resolve) => stream.end(resolve));
  }

  /**
   * The next response message's payload, or `undefined` once the call ended
   * with status OK.
   *
   * @returns The payload bytes (Go JSON), or `undefined` at the end.
   * @throws {ConnectError} The call's failure: its status, or a dropped connection, abort or deadline.
   */
  async next(): Promise<Uint8Array | undefined> {
    for (;;) {
      const message = this.poll();
      if (message !== undefined) return message ?? undefined;
      await this.arrival();
    }
  }

  /**
   * The next response message without waiting: its payload, `null` once the
   * call ended with status OK, `undefined` when nothing new has arrived (then
   * await {@linkcode GrpcCall.arrival}). Lets a stream reader hand out
   * messages already received without a promise per message.
   *
   * @returns The payload, `null` at the end, or `undefined` for not yet.
   * @throws {ConnectError} The call's failure.
   */
  poll(): Uint8Array | null | undefined {
    if (this.#failure) throw this.#failure;
    const message = this.#queue.shift();
    if (message !== undefined) {
      if (this.#paused && this.#queue.length < QUEUE_HIGH_WATER / 2) {
        this.#paused = false;
        this.#stream?.resume();
      }
      return message;
    }
    if (this.#ended) {
      this.#settle();
      if (this.#failure) throw this.#failure;
      return null;
    }
    return undefined;
  }

  /**
   * Resolves when {@linkcode GrpcCall.poll} may have something new.
   *
   * @returns A promise for the next arrival, end or failure.
   */
  arrival(): Promise<void> {
    return new Promise<void>((resolve) => this.#wake = resolve);
  }

  /**
   * Fails the call with `err` (the request's source failed): resets the
   * stream, and the next read throws `err`.
   *
   * @param err Why.
   */
  abort(err: unknown): void {
    this.#fail(err instanceof Error ? err : new Error(String(err)));
  }

  /** Stops the call (a consumer that left early): resets the stream with CANCEL. */
  cancel(): void {
    this.#fail(new ConnectError("the call was cancelled by the client", Code.Canceled));
  }

  /** Releases the timer and the signal listener; call once the call is over. */
  finish(): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener("abort", this.#onAbort);
    // Left before the end (a consumer that stopped reading): reset, never leak.
    if (!this.#ended) this.cancel();
  }

  #open(): Promise<http2.ClientHttp2Stream> {
    this.#opening ??= this.#openStream();
    return this.#opening;
  }

  async #openStream(): Promise<http2.ClientHttp2Stream> {
    if (this.#failure) throw this.#failure;
    // No user-agent: gRPC makes it optional, modeld ignores it, and each header
    // costs Deno's node:http2 measurable CPU per call (~14 µs for this one).
    const headers: http2.OutgoingHttpHeaders = { "content-type": CONTENT_TYPE, te: "trailers" };
    if (this.timeoutMs !== undefined && this.announce) {
      headers["grpc-timeout"] = grpcTimeout(this.timeoutMs);
    }
    if (this.#target.instanceId !== "" && this.rpc !== "Health") {
      headers[FENCE_HEADER] = this.#target.instanceId;
    }
    let stream: http2.ClientHttp2Stream;
    try {
      stream = await this.#target.connection.request(this.path, headers);
    } catch (err) {
      this.#fail(transportFailure(err, this.#target.endpoint));
      throw this.#failure;
    }
    this.#stream = stream;
    if (this.#failure) {
      this.#reset(stream);
      throw this.#failure;
    }
    stream.on("response", (headers) => this.#onResponse(headers));
    stream.on("data", (chunk: Uint8Array) => this.#onData(stream, chunk));
    stream.on("trailers", (trailers) => this.#trailers = trailers);
    stream.on("end", () => this.#onEnd());
    stream.on("error", (err: unknown) => this.#onError(stream, err));
    stream.on("close", () => this.#onClose(stream));
    return stream;
  }

  #onResponse(headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void {
    this.#headers = headers;
    const contentType = String(headers["content-type"] ?? "");
    const plain = headers[":status"] === 200 && contentType.startsWith(CONTENT_TYPE) &&
      headers["grpc-status"] === undefined;
    if (plain) return;
    const err = responseError(headers[":status"] ?? 0, toWebHeaders(headers));
    if (err) this.#fail(err);
  }

  #onData(stream: http2.ClientHttp2Stream, chunk: Uint8Array): void {
    this.#target.connection.alive(stream);
    if (this.#failure) return;
    try {
      this.#splitter.push(chunk, (flags, data) => {
        if (flags !== 0) {
          throw new ConnectError(
            "protocol error: received a compressed message",
            Code.Internal,
          );
        }
        this.#queue.push(data);
      });
    } catch (err) {
      this.#fail(
        err instanceof EnvelopeTooLargeError
          ? new ConnectError(err.message, Code.ResourceExhausted)
          : err as ConnectError,
      );
      return;
    }
    if (this.#queue.length >= QUEUE_HIGH_WATER && !this.#paused) {
      this.#paused = true;
      stream.pause();
    }
    this.#wakeReader();
  }

  #onEnd(): void {
    this.#ended = true;
    this.#wakeReader();
  }

  #onError(stream: http2.ClientHttp2Stream, err: unknown): void {
    // The daemon answered and closed while the request was still being written:
    // its answer (already received) wins over our failed write, as in connect-node.
    if (stream.writableEnded && (err as { code?: string }).code === "ERR_STREAM_WRITE_AFTER_END") {
      return;
    }
    this.#fail(transportFailure(err, this.#target.endpoint));
  }

  #onClose(stream: http2.ClientHttp2Stream): void {
    const code = stream.rstCode ?? 0;
    // A reset counts unless the status already arrived (Deno may emit 'end' first).
    const complete = this.#trailers !== undefined || this.#headers?.["grpc-status"] !== undefined;
    const grpc = complete ? undefined : rstCodeToGrpc(code);
    if (grpc !== undefined) {
      const text = `http/2 stream closed with error code ${H2_CODES[code]} (0x${
        code.toString(16)
      })`;
      this.#fail(transportFailure(new ConnectError(text, grpc), this.#target.endpoint));
    } else if (!this.#headers && !this.#failure) {
      this.#fail(transportFailure(
        new ConnectError(
          `http/2 stream closed with error code ${H2_CODES[code] ?? code} (0x${
            code.toString(16)
          }) before the response was received`,
          Code.Internal,
        ),
        this.#target.endpoint,
      ));
    }
    this.#ended = true;
    this.#wakeReader();
  }

  /** The status once the body is read: OK, the daemon's error, or a missing status. */
  #settle(): void {
    if (this.#failure) return;
    if (this.#splitter.buffered > 0) {
      this.#failure = transportFailure(
        new ConnectError("protocol error: incomplete envelope", Code.Internal),
        this.#target.endpoint,
      );
      return;
    }
    const headers = this.#headers ?? {};
    const trailers = headers["grpc-status"] !== undefined ? headers : this.#trailers;
    if (!trailers || trailers["grpc-status"] === undefined) {
      this.#failure = transportFailure(
        new Error("the stream ended without a gRPC status (reset or closed by the daemon)"),
        this.#target.endpoint,
      );
      return;
    }
    if (trailers["grpc-status"] === "0" && trailers["grpc-status-details-bin"] === undefined) {
      return;
    }
    this.#failure = statusError(
      toWebHeaders(trailers),
      trailers === headers ? new Headers() : toWebHeaders(headers),
    );
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    clearTimeout(this.#timer);
    if (this.#stream) this.#reset(this.#stream);
    this.#wakeReader();
  }

  #reset(stream: http2.ClientHttp2Stream): void {
    if (!stream.closed) stream.close(NGHTTP2_CANCEL);
    // A stream closed with pending data is not destroyed until it is read.
    stream.destroy();
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/**
 * What Connect makes of response headers that are not a plain success: an
 * HTTP status other than 200, a content type that is not gRPC. A status in the
 * headers (a trailers-only response) is left to {@linkcode statusError}.
 *
 * @param status The HTTP status.
 * @param headers The response headers.
 * @returns The error, or `undefined` when the response may proceed.
 *
 * @example
 * ```ts
 * import { responseError } from "./grpc_call.ts";
 * console.assert(responseError(503, new Headers())?.message.includes("HTTP 503"));
 * ```
 */
export function responseError(status: number, headers: Headers): ConnectError | undefined {
  // Connect knows only its own gRPC content types; the bodies are JSON either way.
  if ((headers.get("content-type") ?? "").startsWith(CONTENT_TYPE)) {
    headers.set("content-type", "application/grpc+json");
  }
  reconcileStatusDetails(headers);
  try {
    const { headerError } = validateResponse(status, headers);
    if (headerError && !headers.has("grpc-status")) return headerError;
  } catch (err) {
    return err as ConnectError;
  }
  return undefined;
}

/**
 * The call's outcome from its status (trailers, or headers of a trailers-only
 * response), judged by Connect after grpc-go's details rule.
 *
 * @param trailer Where the status is.
 * @param header The response headers (for the error's metadata).
 * @returns The error, or `undefined` for status OK.
 *
 * @example
 * ```ts
 * import { statusError } from "./grpc_call.ts";
 * const err = statusError(new Headers({ "grpc-status": "9", "grpc-message": "busy" }), new Headers());
 * console.assert(err?.rawMessage === "busy");
 * ```
 */
export function statusError(trailer: Headers, header: Headers): ConnectError | undefined {
  reconcileStatusDetails(trailer);
  try {
    validateTrailer(trailer, header);
  } catch (err) {
    return err as ConnectError;
  }
  return undefined;
}

/** The longest delay setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A deadline as gRPC's `grpc-timeout` header: at most 8 digits, so a long
 * deadline moves to a coarser unit (rounded up) instead of becoming a header
 * grpc-go refuses as malformed.
 *
 * @param ms The deadline in milliseconds (≥ 0).
 * @returns The header value, e.g. `500m`, `200000S`.
 *
 * @example
 * ```ts
 * import { grpcTimeout } from "./grpc_call.ts";
 * console.assert(grpcTimeout(1500) === "1500m" && grpcTimeout(2e8) === "200000S");
 * ```
 */
export function grpcTimeout(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  for (const [unit, perUnit] of [["m", 1], ["S", 1e3], ["M", 6e4], ["H", 3.6e6]] as const) {
    const n = Math.ceil(whole / perUnit);
    if (n <= 99_999_999) return `${n}${unit}`;
  }
  return "99999999H";
}

/**
 * The caller's abort as Connect reports it: their reason, code CANCELED.
 *
 * @param reason The signal's reason.
 * @returns The error.
 *
 * @example
 * ```ts
 * import { abortError } from "./grpc_call.ts";
 * console.assert(abortError(new Error("stop")).code === 1);
 * ```
 */
export function abortError(reason: unknown): ConnectError {
  if (reason instanceof ConnectError) return reason;
  return ConnectError.from(
    reason ?? new DOMException("This operation was aborted", "AbortError"),
    Code.Canceled,
  );
}

/**
 * gRPC's mapping of an RST_STREAM code (grpc/doc/PROTOCOL-HTTP2.md), as
 * connect-node has it; STREAM_CLOSED and unknown codes are left to the protocol.
 */
function rstCodeToGrpc(code: number): Code | undefined {
  switch (code) {
    case 7:
      return Code.Unavailable; // REFUSED_STREAM
    case 8:
      return Code.Canceled;
    case 11:
      return Code.ResourceExhausted; // ENHANCE_YOUR_CALM
    case 12:
    case 13:
      return Code.PermissionDenied;
    case 1:
    case 2:
    case 3:
    case 4:
    case 6:
    case 9:
    case 10:
      return Code.Internal;
    default:
      return undefined;
  }
}

function toWebHeaders(headers: http2.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [key, value] of Object.entries(headers)) {
    if (key.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) { for (const v of value) out.append(key, v); }
    else out.set(key, String(value));
  }
  return out;
}

/**
 * Turns a failure of the HTTP/2 layer into `UNAVAILABLE`, marked as a drop
 * (and as unprocessed for REFUSED_STREAM, which is also what a stream above a
 * GOAWAY's last stream id gets). A cancellation, a deadline or a size refusal
 * passes unchanged, as does an error already judged.
 *
 * @param err What the HTTP/2 layer reported.
 * @param endpoint `host:port`, for the message.
 * @returns The error to throw.
 *
 * @example
 * ```ts
 * import { transportFailure } from "./grpc_call.ts";
 * import { isConnectionDrop } from "./transport_marks.ts";
 * console.assert(isConnectionDrop(transportFailure(new Error("ECONNRESET"), "127.0.0.1:1")));
 * ```
 */
export function transportFailure(err: unknown, endpoint: string): ConnectError {
  if (
    err instanceof ConnectError &&
    (err.code === Code.Canceled || err.code === Code.DeadlineExceeded ||
      err.code === Code.ResourceExhausted || judged.has(err))
  ) {
    return err;
  }
  const text = err instanceof Error ? err.message : String(err);
  const out = markDropped(
    new ConnectError(
      `the connection to ${endpoint} failed: ${text}`,
      Code.Unavailable,
      undefined,
      undefined,
      err,
    ),
  );
  judged.add(out);
  if (/REFUSED_STREAM/.test(text)) markUnprocessed(out);
  return out;
}

/** Errors transportFailure made or that came out judged (GOAWAY), never wrapped twice. */
const judged = new WeakSet<ConnectError>();

/**
 * Marks an error made by the connection (GOAWAY, handshake timeout) as final:
 * {@linkcode transportFailure} passes it through unchanged.
 *
 * @param err The error.
 * @returns `err`.
 *
 * @example
 * ```ts
 * import { Code, ConnectError } from "@connectrpc/connect";
 * import { judgedFailure, transportFailure } from "./grpc_call.ts";
 * const err = judgedFailure(new ConnectError("goaway", Code.Unavailable));
 * console.assert(transportFailure(err, "x:1") === err);
 * ```
 */
export function judgedFailure(err: ConnectError): ConnectError {
  judged.add(err);
  return markDropped(err);
}
