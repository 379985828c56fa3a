/**
 * One gRPC call on one HTTP/2 stream of a connection: request headers in
 * modeld's dialect (content-subtype, owner fence, `grpc-timeout`), envelopes
 * written as they are handed over (each awaited, so a push never queues more
 * than one frame), response envelopes split as the HTTP/2 session
 * (`h2/session.ts`) hands over each DATA payload, and the outcome (status, a dropped connection, an abort or a
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
import { EnvelopeSplitter, EnvelopeTooLargeError } from "./envelope.ts";
import { encodeHeaderBlock, type HeaderField } from "./h2/hpack.ts";
import { H2_CANCEL, type H2Stream, type StreamHandler } from "./h2/session.ts";
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
  /** Opens an HTTP/2 stream (after the handshake), with the request's first DATA when given. */
  connection: {
    request(
      headerBlock: Uint8Array,
      handler: StreamHandler,
      body?: Uint8Array,
      end?: boolean,
    ): Promise<{ stream: H2Stream; sent: Promise<boolean> }>;
  };
  /** `host:port`, for error messages and `:authority`. */
  endpoint: string;
  /** The fence sent with every call but Health ("" = none). */
  instanceId: string;
  /** The largest message sent or received. */
  maxBytes: number;
}

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

/** Header fields as a record; a repeated name's values joined as `Headers` joins them. */
type HeaderRecord = Record<string, string>;

/** Request header blocks by target and call shape: built once, sent as they are (HPACK without the dynamic table). */
const headerBlocks = new WeakMap<CallTarget, Map<string, Uint8Array>>();

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
export class GrpcCall implements StreamHandler {
  readonly #target: CallTarget;
  readonly #signal?: AbortSignal;
  readonly #splitter: EnvelopeSplitter;
  readonly #queue: Uint8Array[] = [];
  #stream?: H2Stream;
  #headers?: HeaderRecord;
  #trailers?: HeaderRecord;
  #ended = false;
  #failure?: Error;
  #done = false;
  #paused = false;
  #wake?: () => void;
  #timer?: ReturnType<typeof setTimeout>;
  /** When the deadline passes (performance.now()), if there is one. */
  #deadlineAt?: number;

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
    // The call itself listens (handleEvent), not a closure: a closure per
    // call, kept for its length, made about 5% of all the client allocated
    // survive V8's young-generation collections (--trace-gc-nvp: 4.8–7.9%
    // against 0.1–0.2%), so V8 kept growing the young generation, and RSS.
    signal?.addEventListener("abort", this);
    // setTimeout fires at once beyond 2^31-1 ms; a deadline that far (24.8 days) is none.
    if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
      this.#deadlineAt = performance.now() + timeoutMs;
      this.#timer = setTimeout(
        () => this.#fail(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
        timeoutMs,
      );
    }
  }

  /**
   * Writes one envelope; resolves once the socket took it (a push never
   * holds more than the frame being sent).
   *
   * @param envelope A whole envelope.
   * @param last Whether it ends the request.
   * @returns Whether more may be sent: `false` once the daemon has answered
   *   (or reset the stream), when further frames would be thrown away.
   * @throws {ConnectError} When the call failed.
   */
  async send(envelope: Uint8Array, last: boolean): Promise<boolean> {
    if (this.#failure) throw this.#failure;
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
    if (this.#ended) return false;
    await this.#write(envelope, last);
    if (this.#failure) throw this.#failure;
    return !this.#ended && !(this.#stream?.closed ?? true);
  }

  /** Ends the request without another message. */
  async end(): Promise<void> {
    if (this.#failure || this.#ended || this.#stream?.localEnded) return;
    await this.#write(undefined, true);
  }

  /**
   * Opens the stream with `body` (HEADERS, and DATA with them when it fits)
   * or writes `body` on it, and waits until the socket took it; a failure
   * fails the call. Calls are sequential: a write waits for the one before.
   */
  async #write(body: Uint8Array | undefined, last: boolean): Promise<void> {
    try {
      if (!this.#stream) await (await this.#openStream(body, last)).sent;
      else await this.#stream.write(body ?? new Uint8Array(0), last);
    } catch (err) {
      this.#fail(transportFailure(err, this.#target.endpoint));
    }
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
    this.#signal?.removeEventListener("abort", this);
    // Left before the end (a consumer that stopped reading): reset, never leak.
    if (!this.#ended) this.cancel();
  }

  /** @internal The caller's signal fired. */
  handleEvent(): void {
    this.#fail(abortError(this.#signal!.reason));
  }

  /** @internal Response headers, or trailers. */
  onHeaders(fields: HeaderField[], end: boolean): void {
    const record: HeaderRecord = {};
    for (const [name, value] of fields) {
      record[name] = name in record ? `${record[name]}, ${value}` : value;
    }
    if (this.#headers === undefined) this.#onResponse(record);
    else this.#trailers = record;
    if (end) this.#onEnd();
  }

  /** @internal A DATA payload. */
  onData(chunk: Uint8Array, end: boolean): void {
    if (!this.#failure) this.#onData(chunk);
    if (end) this.#onEnd();
  }

  /** @internal The daemon reset the stream. */
  onReset(code: number): void {
    // A reset counts unless the status already arrived.
    const complete = this.#trailers !== undefined || this.#headers?.["grpc-status"] !== undefined;
    if (
      !complete && code === H2_CANCEL && this.#deadlineAt !== undefined &&
      performance.now() >= this.#deadlineAt
    ) {
      // grpc-go's rule: a CANCEL after our deadline passed is the daemon
      // enforcing the grpc-timeout we sent, so the call timed out.
      this.#fail(new ConnectError("the operation timed out", Code.DeadlineExceeded));
      this.#onEnd();
      return;
    }
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
    this.#onEnd();
  }

  /** @internal The connection failed or went away. */
  onError(err: Error): void {
    this.#fail(transportFailure(err, this.#target.endpoint));
  }

  async #openStream(
    body: Uint8Array | undefined,
    end: boolean,
  ): Promise<{ stream: H2Stream; sent: Promise<boolean> }> {
    if (this.#failure) throw this.#failure;
    let opened;
    try {
      opened = await this.#target.connection.request(this.#headerBlock(), this, body, end);
    } catch (err) {
      this.#fail(transportFailure(err, this.#target.endpoint));
      throw this.#failure;
    }
    this.#stream = opened.stream;
    if (this.#failure) {
      opened.stream.reset(H2_CANCEL);
      throw this.#failure;
    }
    return opened;
  }

  /**
   * The request's header block. No user-agent: gRPC makes it optional and
   * modeld ignores it. Blocks without a deadline are built once per path.
   */
  #headerBlock(): Uint8Array {
    const timeout = this.timeoutMs !== undefined && this.announce
      ? grpcTimeout(this.timeoutMs)
      : undefined;
    const fence = this.#target.instanceId !== "" && this.rpc !== "Health";
    let blocks = headerBlocks.get(this.#target);
    if (!blocks) headerBlocks.set(this.#target, blocks = new Map());
    const key = `${this.path}\n${fence}`;
    const cached = timeout === undefined ? blocks.get(key) : undefined;
    if (cached) return cached;
    const fields: HeaderField[] = [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", this.path],
      [":authority", this.#target.endpoint],
      ["content-type", CONTENT_TYPE],
      ["te", "trailers"],
    ];
    if (timeout !== undefined) fields.push(["grpc-timeout", timeout]);
    if (fence) fields.push([FENCE_HEADER, this.#target.instanceId]);
    const block = encodeHeaderBlock(fields);
    if (timeout === undefined) blocks.set(key, block);
    return block;
  }

  #onResponse(headers: HeaderRecord): void {
    this.#headers = headers;
    const status = Number(headers[":status"] ?? 0);
    const contentType = headers["content-type"] ?? "";
    const plain = status === 200 && contentType.startsWith(CONTENT_TYPE) &&
      headers["grpc-status"] === undefined;
    if (plain) return;
    const err = responseError(status, toWebHeaders(headers));
    if (err) this.#fail(err);
  }

  #onData(chunk: Uint8Array): void {
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
      this.#stream?.pause();
    }
    this.#wakeReader();
  }

  #onEnd(): void {
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
    this.#stream?.reset(H2_CANCEL);
    this.#wakeReader();
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

function toWebHeaders(headers: HeaderRecord): Headers {
  const out = new Headers();
  for (const [key, value] of Object.entries(headers)) {
    if (!key.startsWith(":")) out.set(key, value);
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
