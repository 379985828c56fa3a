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
  type DescMethodStreaming,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import {
  type CallOptions as ConnectCallOptions,
  type Client,
  Code,
  ConnectError,
  type ContextValues,
  createClient,
  createContextKey,
  createContextValues,
  type Transport,
} from "@connectrpc/connect";
import { Compute } from "../gen/contenox/transport/v1/compute_pb.ts";
import { parseEndpoint } from "./endpoint.ts";
import { encodeEnvelope } from "./envelope.ts";
import { PermissionNeededError } from "./errors.ts";
import { readGoJson } from "./go_json.ts";
import { type CallTarget, GrpcCall } from "./grpc_call.ts";
import { H2Connection } from "./h2_connection.ts";
import { DEFAULT_LIMITS, type TransportLimits } from "./limits.ts";

export { CONTENT_TYPE, FENCE_HEADER } from "./grpc_call.ts";
export { isConnectionDrop, isUnprocessed } from "./transport_marks.ts";
export { DEFAULT_LIMITS };
export type { TransportLimits };

const utf8Decoder = new TextDecoder();

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
   * Connect call options for a deadline the client enforces alone: a
   * default (Health 10 s, other unary calls 10 minutes) is not announced to
   * the daemon as `grpc-timeout`, as Go's client sends none when its caller
   * set no deadline. A deadline the caller passes is sent.
   *
   * @param timeoutMs The deadline, or `undefined` for none.
   * @returns Options to spread into the call's options.
   */
  localDeadline(timeoutMs: number | undefined): ConnectCallOptions;
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
  const hostname = target.dialHost.replace(/^\[(.*)\]$/, "$1");
  const connection = new H2Connection(hostname, target.port, endpoint, bounds);
  const callTarget: CallTarget = {
    connection,
    endpoint: target.authority,
    instanceId,
    maxBytes: bounds.maxMessageBytes,
  };
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    connection.close();
  };
  return {
    endpoint,
    instanceId,
    rpc: createClient(Compute, modeldTransport(callTarget)),
    get closed() {
      return closed;
    },
    limits: bounds,
    localDeadline: (timeoutMs) =>
      timeoutMs === undefined
        ? {}
        : { contextValues: createContextValues().set(LOCAL_DEADLINE, timeoutMs) },
    serverStream: (method, input, signal) => serverStream(callTarget, method, input, signal),
    close,
    [Symbol.dispose]: close,
    [Symbol.asyncDispose]: () => Promise.resolve(close()),
  };
}

/** A deadline the client enforces without sending `grpc-timeout` (see `Connection.localDeadline`). */
const LOCAL_DEADLINE = createContextKey<number | undefined>(undefined, {
  description: "a default deadline, enforced by the client alone",
});

/** The HTTP/2 path of a method. */
function pathOf(method: { name: string; parent: { typeName: string } }): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** Connect's timeout convention: `undefined` or ≤ 0 means none. */
function deadline(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined || timeoutMs <= 0 ? undefined : timeoutMs;
}

/** A response payload as a message; a payload that does not parse fails the call as Connect does. */
function parse<O extends DescMessage>(desc: O, payload: Uint8Array): MessageShape<O> {
  try {
    return readGoJson(desc, utf8Decoder.decode(payload));
  } catch (err) {
    throw ConnectError.from(err, Code.InvalidArgument);
  }
}

/**
 * Connect's transport interface over {@linkcode GrpcCall}: the typed client
 * from the generated service calls this, one request envelope written as Go
 * JSON in one pass, each response envelope parsed once.
 */
function modeldTransport(target: CallTarget): Transport {
  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      _header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ) {
      const envelope = encodeEnvelope(method.input, create(method.input, input));
      const announced = deadline(timeoutMs);
      const call = new GrpcCall(
        target,
        pathOf(method),
        method.name,
        signal,
        announced ?? contextValues?.get(LOCAL_DEADLINE),
        announced !== undefined,
      );
      try {
        await call.send(envelope, true);
        const payload = await call.next();
        if (payload === undefined) {
          throw new ConnectError(
            "protocol error: missing output message for unary method",
            Code.Unimplemented,
          );
        }
        let extra;
        try {
          extra = await call.next();
        } catch (err) {
          if (!(err instanceof ConnectError) || isDropOrAbort(err)) throw err;
          throw new ConnectError(
            "protocol error: received output message for unary method with error status",
            Code.Unknown,
            undefined,
            undefined,
            err,
          );
        }
        if (extra !== undefined) {
          throw new ConnectError(
            "protocol error: received extra output message for unary method",
            Code.Unimplemented,
          );
        }
        return {
          stream: false as const,
          service: method.parent,
          method,
          header: new Headers(),
          message: parse(method.output, payload),
          trailer: new Headers(),
        };
      } finally {
        call.finish();
      }
    },

    stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      _header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
    ) {
      const call = new GrpcCall(target, pathOf(method), method.name, signal, deadline(timeoutMs));
      // Frames go out one at a time, each awaited until the socket took it (so
      // a push holds one frame, whatever the file's size), while the reply is
      // read: a daemon that answers early (a refused push) stops the sending.
      void (async () => {
        // One buffer for every frame of the call: a frame is sent (copied into
        // HTTP/2 frames and written) before the next is encoded. A 1 GiB push
        // allocated 256 envelopes of 5.3 MiB, which glibc kept as RSS.
        let reuse: Uint8Array | undefined;
        try {
          for await (const init of input) {
            const envelope = encodeEnvelope(method.input, create(method.input, init), reuse);
            if (envelope.buffer !== reuse?.buffer) reuse = new Uint8Array(envelope.buffer);
            const open = await call.send(envelope, false);
            if (!open) return;
          }
          await call.end();
        } catch (err) {
          call.abort(err);
        }
      })();
      return Promise.resolve({
        stream: true as const,
        service: method.parent,
        method,
        header: new Headers(),
        message: readMessages(() => ({ call, sent: Promise.resolve() }), method.output),
        trailer: new Headers(),
      });
    },
  };
}

/** Whether a failure is the connection's or the caller's, not a status the daemon sent. */
function isDropOrAbort(err: ConnectError): boolean {
  return err.code === Code.Canceled || err.code === Code.DeadlineExceeded ||
    err.code === Code.Unavailable;
}

/**
 * The response messages of a call, as a plain iterator rather than a
 * generator: a message already received is handed out with one resolved
 * promise. `open` starts the call on the first read (so an error writing the
 * request surfaces there) and returns it with what to await before reading;
 * a consumer that leaves early resets the stream.
 */
function readMessages<O extends DescMessage>(
  open: () => { call: GrpcCall; sent: Promise<unknown> },
  output: O,
): AsyncIterable<MessageShape<O>> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<MessageShape<O>> {
      let call: GrpcCall | undefined;
      const done = (): IteratorResult<MessageShape<O>> => {
        call?.finish();
        return { done: true, value: undefined };
      };
      const read = async (): Promise<IteratorResult<MessageShape<O>>> => {
        try {
          if (!call) {
            const opened = open();
            call = opened.call;
            await opened.sent;
          }
          for (;;) {
            const payload = call.poll();
            if (payload === null) return done();
            if (payload !== undefined) return { done: false, value: parse(output, payload) };
            await call.arrival();
          }
        } catch (err) {
          done();
          throw err;
        }
      };
      return {
        next(): Promise<IteratorResult<MessageShape<O>>> {
          try {
            const payload = call?.poll();
            if (payload) return Promise.resolve({ done: false, value: parse(output, payload) });
          } catch (err) {
            done();
            return Promise.reject(err);
          }
          return read();
        },
        return: () => Promise.resolve(done()),
      };
    },
  };
}

/** One server-streaming call; see {@linkcode Connection.serverStream}. */
function serverStream<I extends DescMessage, O extends DescMessage>(
  target: CallTarget,
  method: DescMethodServerStreaming<I, O>,
  input: MessageInitShape<I>,
  signal: AbortSignal,
): AsyncIterable<MessageShape<O>> {
  return readMessages(() => {
    const envelope = encodeEnvelope(method.input, create(method.input, input));
    const call = new GrpcCall(target, pathOf(method), method.name, signal, undefined);
    return { call, sent: call.send(envelope, true) };
  }, method.output);
}
