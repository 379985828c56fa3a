/**
 * One plaintext HTTP/2 connection to a modeld endpoint, speaking the daemon's
 * own wire format through Connect-ES: gRPC framing, content-subtype
 * `contenoxtransportjson`, Go-compatible JSON bodies and the owner fence header
 * on every call but Health.
 *
 * A {@linkcode Connection} is long-lived on purpose: v0.32.6+ daemons close
 * every session opened on a connection when that connection closes, so it
 * never closes itself while idle, and pings only while calls are open and no
 * more often than grpc-go servers allow. Close it with `close()` or `await using`.
 *
 * Every failure of the connection itself (reset, refused stream, GOAWAY, TCP
 * FIN or RST, a handshake that never completes) becomes a gRPC `UNAVAILABLE`
 * error here, marked so that callers can tell a dropped connection from a
 * status the daemon sent; {@linkcode DEFAULT_LIMITS} bounds the handshake and
 * the size of a message (refused at its length prefix).
 *
 * @example
 * ```ts ignore
 * import { dial } from "./transport.ts";
 *
 * await using conn = dial("127.0.0.1:40517", "5f0c3c1e-…");
 * const health = await conn.rpc.health({});
 * console.log(health.instanceId, health.backend);
 * ```
 *
 * @module
 */

import {
  create,
  type DescMessage,
  type DescMethodServerStreaming,
  fromJson,
  type MessageInitShape,
  type MessageShape,
  toJson,
} from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createTransport } from "@connectrpc/connect/protocol-grpc";
import type { UniversalClientFn, UniversalClientRequest } from "@connectrpc/connect/protocol";
import { createNodeHttpClient, Http2SessionManager } from "@connectrpc/connect-node";
import { fromBinary } from "@bufbuild/protobuf";
import {
  requestHeader,
  validateResponse,
  validateTrailer,
} from "@connectrpc/connect/protocol-grpc";
import type http2 from "node:http2";
import { StatusSchema } from "../gen/google/rpc/status_pb.ts";
import { Compute } from "../gen/contenox/transport/v1/compute_pb.ts";
import { parseEndpoint } from "./endpoint.ts";
import { PermissionNeededError } from "./errors.ts";
import { quoteUnsafeIntegers, toGoJson } from "./go_json.ts";

/**
 * The gRPC content-type whose subtype selects modeld's JSON codec.
 *
 * @example
 * ```ts
 * import { CONTENT_TYPE } from "./transport.ts";
 * console.assert(CONTENT_TYPE.endsWith("+contenoxtransportjson"));
 * ```
 */
export const CONTENT_TYPE = "application/grpc+contenoxtransportjson";
/**
 * The metadata key carrying the lease instance id (the owner fence).
 *
 * @example
 * ```ts
 * import { FENCE_HEADER } from "./transport.ts";
 * console.assert(FENCE_HEADER === "x-contenox-owner-instance");
 * ```
 */
export const FENCE_HEADER = "x-contenox-owner-instance";

// Connect-ES only accepts its own gRPC content types; the bodies are JSON either way.
const CONNECT_JSON_CONTENT_TYPE = "application/grpc+json";

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
const MAX_TIMER_MS = 2 ** 31 - 1; // the longest setTimeout Node allows
const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** A typed Connect client for the Compute service. */
export type ComputeClient = Client<typeof Compute>;

/**
 * A live connection to one daemon instance.
 *
 * @example
 * ```ts ignore
 * import { dial } from "./transport.ts";
 * using conn = dial("127.0.0.1:40517", "");
 * console.log(conn.endpoint, conn.closed);
 * ```
 */
export interface Connection extends Disposable, AsyncDisposable {
  /** The `host:port` this connection talks to. */
  readonly endpoint: string;
  /** The fence sent with every call but Health ("" = unfenced). */
  readonly instanceId: string;
  /** The Connect client. */
  readonly rpc: ComputeClient;
  /** Whether `close()` was called. */
  readonly closed: boolean;
  /** The limits this connection was dialled with (defaults filled in). */
  readonly limits: Readonly<Required<TransportLimits>>;
  /**
   * Runs a server-streaming RPC (Decode) straight over the HTTP client: the
   * same wire as `rpc`, but each read is not raced against a call-long abort
   * promise, so a long stream holds no memory per message it already yielded
   * (Connect-ES 2.3.0's `runStreamingCall` keeps every read's result until the
   * call ends). Aborting `signal` resets the stream.
   */
  serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    input: MessageInitShape<I>,
    signal: AbortSignal,
  ): AsyncIterable<MessageShape<O>>;
  /** Closes the HTTP/2 session; calls in flight fail. Idempotent. */
  close(): void;
}

/**
 * Turns a lease endpoint (`host:port`, `[v6]:port`) into a base URL.
 *
 * @param endpoint The lease's `meta.endpoint`.
 * @returns `http://host:port`.
 *
 * @example
 * ```ts
 * import { endpointUrl } from "./transport.ts";
 * console.assert(endpointUrl("[::1]:9") === "http://[::1]:9");
 * ```
 */
export function endpointUrl(endpoint: string): string {
  return parseEndpoint(endpoint).url;
}

/**
 * The host part of an endpoint, as `--allow-net` wants it.
 *
 * @param endpoint `host:port` or `[v6]:port`.
 * @returns The host without port.
 *
 * @example
 * ```ts
 * import { endpointHost } from "./transport.ts";
 * console.assert(endpointHost("127.0.0.1:40517") === "127.0.0.1");
 * ```
 */
export function endpointHost(endpoint: string): string {
  return parseEndpoint(endpoint).dialHost;
}

/**
 * Opens a connection (lazily: the TCP dial happens on the first call).
 *
 * @param endpoint The daemon's `host:port`.
 * @param instanceId The lease instance id to fence with ("" = unfenced).
 * @param limits Bounds overriding {@linkcode DEFAULT_LIMITS}.
 * @returns The connection.
 * @throws {InvalidEndpointError} When `endpoint` is not a `host:port` Go could dial.
 * @throws {PermissionNeededError} When the script may not connect to `endpoint`.
 *
 * @example
 * ```ts ignore
 * import { dial } from "./transport.ts";
 * using conn = dial("127.0.0.1:40517", "");
 * console.log((await conn.rpc.health({})).ready);
 * ```
 */
export function dial(
  endpoint: string,
  instanceId: string,
  limits: TransportLimits = {},
): Connection {
  const bounds: Readonly<Required<TransportLimits>> = Object.freeze({
    ...DEFAULT_LIMITS,
    ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)),
  });
  const target = parseEndpoint(endpoint); // wildcards dial loopback; see endpoint.ts
  // Ask first: a missing grant must be an error that names the flag, never a prompt.
  const netState = Deno.permissions.querySync({ name: "net", host: target.authority }).state;
  if (netState !== "granted") {
    throw new PermissionNeededError(
      "--allow-net",
      target.dialHost,
      `connect to modeld at ${endpoint}`,
    );
  }
  const baseUrl = target.url;
  const sessions = new Http2SessionManager(baseUrl, {
    // grpc-go answers more than one ping per 5 minutes (or any while idle) with GOAWAY.
    pingIntervalMs: bounds.pingIntervalMs,
    pingTimeoutMs: bounds.pingTimeoutMs,
    pingIdleConnection: false,
    connectTimeoutMs: bounds.connectTimeoutMs,
    // Never close an idle connection: the daemon would close its sessions.
    idleConnectionTimeoutMs: MAX_TIMER_MS,
  });
  const provider = handshakeBounded(sessions, bounds.connectTimeoutMs, endpoint);
  const inner = createNodeHttpClient({ httpVersion: "2", sessionProvider: () => provider });
  const httpClient = modeldHttpClient(inner, instanceId, bounds.maxMessageBytes);
  const transport = createTransport({
    baseUrl,
    httpClient,
    useBinaryFormat: false,
    jsonOptions: { ignoreUnknownFields: true },
    readMaxBytes: bounds.maxMessageBytes,
    writeMaxBytes: bounds.maxMessageBytes,
    compressMinBytes: Number.MAX_SAFE_INTEGER,
    acceptCompression: [],
    sendCompression: null,
    interceptors: [],
  });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    provider.release();
    sessions.abort();
  };
  return {
    endpoint,
    instanceId,
    rpc: createClient(Compute, transport),
    get closed() {
      return closed;
    },
    limits: bounds,
    serverStream: (method, input, signal) =>
      serverStream(httpClient, baseUrl, method, input, signal),
    close,
    [Symbol.dispose]: close,
    [Symbol.asyncDispose]: () => Promise.resolve(close()),
  };
}

const methodInputs: ReadonlyMap<string, DescMessage> = new Map(
  Compute.methods.map((m) => [`/${Compute.typeName}/${m.name}`, m.input]),
);

/** One server-streaming call; see {@linkcode Connection.serverStream}. */
async function* serverStream<I extends DescMessage, O extends DescMessage>(
  http: UniversalClientFn,
  baseUrl: string,
  method: DescMethodServerStreaming<I, O>,
  input: MessageInitShape<I>,
  signal: AbortSignal,
): AsyncGenerator<MessageShape<O>> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  if (signal.aborted) onAbort();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const json = JSON.stringify(toJson(method.input, create(method.input, input)));
    const res = await http({
      url: `${baseUrl}/${method.parent.typeName}/${method.name}`,
      method: "POST",
      header: requestHeader(false, undefined, undefined),
      body: (async function* () {
        yield envelope(0, utf8Encoder.encode(json));
      })(),
      signal: controller.signal,
    });
    const { foundStatus, headerError } = validateResponse(res.status, res.header);
    if (headerError) throw headerError;
    if (!foundStatus) {
      // The body arrives as whole envelopes (rewriteEnvelopes), but a truncated tail.
      for await (const chunk of res.body) {
        const length = chunk.length >= 5
          ? new DataView(chunk.buffer, chunk.byteOffset, 5).getUint32(1)
          : -1;
        if (length !== chunk.length - 5) {
          throw new ConnectError("protocol error: incomplete envelope", Code.Internal);
        }
        if (chunk[0] !== 0) {
          throw new ConnectError("protocol error: received a compressed message", Code.Internal);
        }
        const value = JSON.parse(utf8Decoder.decode(chunk.subarray(5)));
        yield fromJson(method.output, value, { ignoreUnknownFields: true });
      }
    }
    validateTrailer(res.trailer, res.header);
  } finally {
    signal.removeEventListener("abort", onAbort);
    controller.abort(); // a consumer that left early resets the stream
  }
}

/**
 * Whether a failure was the connection itself breaking (reset, GOAWAY, FIN,
 * RST, refused stream, handshake timeout) rather than a status the daemon sent.
 *
 * @param err What a call threw (or any error in its `cause` chain).
 * @returns `true` for a dropped or refused connection.
 *
 * @example
 * ```ts
 * import { isConnectionDrop } from "./transport.ts";
 * console.assert(!isConnectionDrop(new Error("model_busy")));
 * ```
 */
export function isConnectionDrop(err: unknown): boolean {
  return someCause(err, (e) => drops.has(e as object));
}

/**
 * Whether a failed call never reached the daemon's handler (REFUSED_STREAM, a
 * stream above a GOAWAY's last stream id, Deno's spurious client-side CANCEL),
 * so sending it again is safe.
 *
 * @param err What a call threw.
 * @returns `true` when the daemon never processed the call.
 *
 * @example
 * ```ts
 * import { isUnprocessed } from "./transport.ts";
 * console.assert(!isUnprocessed(new Error("EOF")));
 * ```
 */
export function isUnprocessed(err: unknown): boolean {
  return someCause(err, (e) => unprocessed.has(e as object) || isSpuriousCancel(e));
}

/**
 * A CANCEL the caller never asked for: after a Decode stream is reset while
 * the daemon is still sending on it, Deno 2.9.3's node:http2 client fails the
 * next stream with RST_STREAM CANCEL without sending it (bench/h2_cancel_repro.ts;
 * issue 8, item 16: 268 of 300 calls right after a cancelled decode against
 * grpc-go). Nothing reached the daemon, so the call may be retried once. A
 * caller's own abort is ruled out before this is asked.
 */
function isSpuriousCancel(err: unknown): boolean {
  return err instanceof ConnectError && err.code === Code.Canceled &&
    /stream closed with error code CANCEL/.test(err.rawMessage);
}

const drops = new WeakSet<object>();
/** A listener that captures nothing, for sessions that outlive their connection. */
const ignore = () => {};
const unprocessed = new WeakSet<object>();

function someCause(err: unknown, test: (e: unknown) => boolean): boolean {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (typeof e === "object" && test(e)) return true;
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}

/**
 * Turns a failure of the HTTP/2 layer into `UNAVAILABLE`, marked as a drop
 * (and as unprocessed for REFUSED_STREAM, which is also what a stream above a
 * GOAWAY's last stream id gets). A cancellation, a deadline or a size refusal
 * passes unchanged.
 */
function transportFailure(err: unknown, endpoint: string): unknown {
  if (
    err instanceof ConnectError &&
    (err.code === Code.Canceled || err.code === Code.DeadlineExceeded ||
      err.code === Code.ResourceExhausted || drops.has(err))
  ) {
    return err;
  }
  const text = err instanceof Error ? err.message : String(err);
  const out = new ConnectError(
    `the connection to ${endpoint} failed: ${text}`,
    Code.Unavailable,
    undefined,
    undefined,
    err,
  );
  drops.add(out);
  if (/REFUSED_STREAM/.test(text)) unprocessed.add(out);
  return out;
}

/** What Connect's HTTP/2 client needs from a session manager, and a release. */
type SessionProvider =
  & Pick<Http2SessionManager, "authority" | "request" | "notifyResponseByteRead">
  & { release(): void };

/**
 * The session manager, with the HTTP/2 handshake bounded: a stream is handed
 * out only once the daemon acknowledged our SETTINGS (Connect's own bound ends
 * at the TCP connect), else the connection is dropped as `UNAVAILABLE`.
 */
function handshakeBounded(
  sessions: Http2SessionManager,
  timeoutMs: number,
  endpoint: string,
): SessionProvider {
  const handshakes = new WeakMap<http2.ClientHttp2Session, Promise<void>>();
  const open = new WeakMap<http2.ClientHttp2Session, Set<http2.ClientHttp2Stream>>();
  const seen = new Set<http2.ClientHttp2Session>();
  const handshake = (session: http2.ClientHttp2Session): Promise<void> => {
    let done = handshakes.get(session);
    if (done) return done;
    // A session Connect stopped listening to (after GOAWAY) may still report a
    // failed write; its streams carry the failure, so an unheard one must not crash.
    session.on("error", ignore);
    session.once("close", () => seen.delete(session));
    // Streams above a GOAWAY's last stream id were never processed: fail them
    // first, marked so, before the session tears them down as a premature close.
    session.once("goaway", (_code: number, lastStreamId: number) => {
      for (const stream of open.get(session) ?? []) {
        if (stream.id === undefined || stream.id <= lastStreamId) continue;
        const err = new ConnectError(
          `${endpoint} sent GOAWAY before processing the call (last stream ${lastStreamId})`,
          Code.Unavailable,
        );
        drops.add(err);
        unprocessed.add(err);
        stream.destroy(err);
      }
    });
    done = !session.pendingSettingsAck
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
        const finish = () => {
          clearTimeout(timer);
          session.off("localSettings", finish);
          session.off("close", finish);
          resolve();
        };
        const timer = setTimeout(() => {
          session.off("localSettings", finish);
          session.off("close", finish);
          const err = new ConnectError(
            `the HTTP/2 handshake with ${endpoint} did not complete within ${timeoutMs} ms`,
            Code.Unavailable,
          );
          drops.add(err);
          session.destroy();
          reject(err);
        }, Math.min(timeoutMs, MAX_TIMER_MS));
        session.once("localSettings", finish);
        session.once("close", finish);
      });
    handshakes.set(session, done);
    return done;
  };
  return {
    authority: sessions.authority,
    async request(
      method: string,
      path: string,
      headers: http2.OutgoingHttpHeaders,
      options: Omit<http2.ClientSessionRequestOptions, "signal">,
    ): Promise<http2.ClientHttp2Stream> {
      const stream = await sessions.request(method, path, headers, options);
      const session = stream.session as http2.ClientHttp2Session;
      seen.add(session);
      let streams = open.get(session);
      if (!streams) open.set(session, streams = new Set());
      streams.add(stream);
      stream.once("close", () => streams.delete(stream));
      await handshake(session);
      return stream;
    },
    notifyResponseByteRead(stream: http2.ClientHttp2Stream): void {
      sessions.notifyResponseByteRead(stream);
    },
    release(): void {
      // Deno's node:http2 keeps every closed session reachable from a global
      // handle (bench/http2_leak_repro.ts). Destroy ours without an error, so
      // the socket stores none (an error's stack keeps each caller's frames,
      // this connection and its client alive), and drop their listeners.
      for (const session of seen) {
        if (!session.destroyed) session.destroy();
        session.removeAllListeners();
        session.on("error", ignore);
      }
      seen.clear();
    },
  };
}

/** Wraps Connect's HTTP client to speak modeld's dialect of gRPC. */
function modeldHttpClient(
  inner: UniversalClientFn,
  instanceId: string,
  maxBytes: number,
): UniversalClientFn {
  return async (req: UniversalClientRequest) => {
    const url = new URL(req.url);
    const path = url.pathname;
    req.header.set("content-type", CONTENT_TYPE);
    if (instanceId !== "" && !path.endsWith("/Health")) req.header.set(FENCE_HEADER, instanceId);
    const input = methodInputs.get(path);
    if (input && req.body) {
      req.body = rewriteEnvelopes(req.body, (json) => toGoJson(input, JSON.parse(json)), maxBytes);
    }
    let res;
    try {
      res = await inner(req);
    } catch (err) {
      throw transportFailure(err, url.host);
    }
    const contentType = res.header.get("content-type") ?? "";
    if (contentType.startsWith(CONTENT_TYPE)) {
      res.header.set("content-type", CONNECT_JSON_CONTENT_TYPE);
    }
    const trailersOnly = res.header.has("grpc-status");
    if (trailersOnly) reconcileStatusDetails(res.header);
    const trailer = res.trailer;
    const body = rewriteEnvelopes(res.body, quoteUnsafeIntegers, maxBytes);
    // Go writes 64-bit integers bare; quote the ones JSON.parse would round.
    res.body = (async function* () {
      try {
        yield* body;
      } catch (err) {
        throw transportFailure(err, url.host);
      }
      if (res.status !== 200 || trailersOnly) return;
      if (!trailer.has("grpc-status")) {
        // END_STREAM without trailers: RST_STREAM NO_ERROR, or a peer that hung up.
        throw transportFailure(
          new Error("the stream ended without a gRPC status (reset or closed by the daemon)"),
          url.host,
        );
      }
      reconcileStatusDetails(trailer);
    })();
    return res;
  };
}

/**
 * Follows grpc-go with `grpc-status-details-bin`: details that do not decode
 * are ignored, details whose code differs from `grpc-status` make the status
 * INTERNAL (Connect would otherwise let the details override the status).
 */
function reconcileStatusDetails(headers: Headers): void {
  const bin = headers.get("grpc-status-details-bin");
  if (bin === null) return;
  headers.delete("grpc-status-details-bin");
  let details;
  try {
    details = fromBinary(StatusSchema, base64Decode(bin));
  } catch {
    return; // undecodable: grpc-status and grpc-message stand
  }
  const code = Number.parseInt(headers.get("grpc-status") ?? "", 10);
  if (details.code === code) {
    headers.set("grpc-status-details-bin", bin);
    return;
  }
  let message = headers.get("grpc-message") ?? "";
  try {
    message = decodeURIComponent(message);
  } catch { /* keep the raw text */ }
  headers.set("grpc-status", String(Code.Internal));
  headers.set(
    "grpc-message",
    encodeURIComponent(
      `grpc-status-details-bin mismatch: grpc-status=${code}, grpc-message=${
        JSON.stringify(message)
      }, grpc-status-details-bin code=${details.code}`,
    ),
  );
}

function base64Decode(text: string): Uint8Array {
  const std = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  if (/[^A-Za-z0-9+/]/.test(std)) throw new Error("not base64");
  const bin = atob(std + "=".repeat((4 - std.length % 4) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Rewrites the JSON text of each length-prefixed message of a gRPC body.
 * Envelopes may span or share chunks; each byte is copied once (chunks are
 * kept in a list until a message is complete), and a length prefix above
 * `maxBytes` is refused as soon as it arrives, as grpc-go's client does.
 * Trailing partial bytes pass through.
 */
async function* rewriteEnvelopes(
  body: AsyncIterable<Uint8Array>,
  rewrite: (json: string) => string,
  maxBytes: number,
): AsyncIterable<Uint8Array> {
  const parts: Uint8Array[] = [];
  let buffered = 0;
  let need = 5; // bytes of the next envelope: its prefix, then the whole envelope
  let header = true;
  for await (const chunk of body) {
    if (chunk.length === 0) continue;
    parts.push(chunk);
    buffered += chunk.length;
    while (buffered >= need) {
      const head = take(parts, header ? 5 : need, false);
      if (header) {
        const length = new DataView(head.buffer, head.byteOffset, 5).getUint32(1);
        if (length > maxBytes) {
          throw new ConnectError(
            `grpc: received message larger than max (${length} vs. ${maxBytes})`,
            Code.ResourceExhausted,
          );
        }
        need = 5 + length;
        header = false;
        continue;
      }
      const message = take(parts, need, true);
      buffered -= need;
      need = 5;
      header = true;
      if (message[0] !== 0) {
        yield message; // compressed: modeld never compresses, so leave it to Connect to refuse
        continue;
      }
      yield envelope(0, utf8Encoder.encode(rewrite(utf8Decoder.decode(message.subarray(5)))));
    }
  }
  if (buffered > 0) yield take(parts, buffered, true);
}

/**
 * The first `n` bytes of `parts` as one array (copied once when they span
 * parts); with `consume` they are removed from `parts`.
 */
function take(parts: Uint8Array[], n: number, consume: boolean): Uint8Array {
  const first = parts[0];
  if (first.length >= n) {
    if (consume) {
      if (first.length === n) parts.shift();
      else parts[0] = first.subarray(n);
    }
    return first.subarray(0, n);
  }
  const out = new Uint8Array(n);
  let filled = 0;
  let i = 0;
  while (filled < n) {
    const part = parts[i];
    const used = Math.min(part.length, n - filled);
    out.set(part.subarray(0, used), filled);
    filled += used;
    if (used < part.length) {
      if (consume) parts[i] = part.subarray(used);
      break;
    }
    i++;
  }
  if (consume) parts.splice(0, i);
  return out;
}

function envelope(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}
