/**
 * A small gRPC server over plaintext HTTP/2 (h2c, on the package's own
 * HTTP/2 session, `lib/h2/session.ts`, as the client) that speaks
 * modeld's dialect: content-subtype `contenoxtransportjson`, Go-style JSON
 * bodies, `"<token>: <text>"` statuses with trailers-only responses for early
 * errors, percent-encoded `grpc-message` and, for counted overflows, a
 * `grpc-status-details-bin` holding a `google.rpc.Status` with an
 * `ErrorInfo`. Unary, server-streaming and client-streaming methods; no
 * compression.
 *
 * It reproduces grpc-go's behaviour at the edges a client can observe: an
 * unknown method is `UNIMPLEMENTED "unknown method <M> for service <S>"`, a
 * request without the JSON subtype fails like grpc-go's proto codec
 * (`INTERNAL "grpc: error unmarshalling request: failed to unmarshal, message
 * is *grpc.<type>, want proto.Message"`), a non-gRPC content type is HTTP 415.
 *
 * @example
 * ```ts ignore
 * import { GrpcServer } from "./grpc_server.ts";
 * import { Compute } from "../../gen/contenox/transport/v1/compute_pb.ts";
 *
 * const server = new GrpcServer(Compute, {
 *   health: async () => ({ ready: true, backend: "llama" }),
 * });
 * const endpoint = await server.listen("127.0.0.1", 0);
 * // ... dial(endpoint, "") ...
 * await server.close();
 * ```
 *
 * @module
 */

import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromJson,
  type JsonValue,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.ts";
import { StatusSchema } from "../../gen/google/rpc/status_pb.ts";
import { concatBytes } from "../bytes.ts";
import { encodeEnvelope, EnvelopeSplitter, EnvelopeTooLargeError } from "../envelope.ts";
import { MAX_TIMER_MS } from "../grpc_call.ts";
import type { HeaderField } from "../h2/hpack.ts";
import { H2_INTERNAL_ERROR, H2Session, type H2Stream, type StreamHandler } from "../h2/session.ts";
import { goIntProblem, quoteUnsafeIntegers } from "../go_json.ts";
import type { WireStatus } from "./sentinels.ts";

/**
 * The codec subtype modeld registers.
 *
 * @example
 * ```ts
 * import { CODEC_SUBTYPE } from "./grpc_server.ts";
 * console.assert(`application/grpc+${CODEC_SUBTYPE}` === "application/grpc+contenoxtransportjson");
 * ```
 */
export const CODEC_SUBTYPE = "contenoxtransportjson";

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/**
 * What a handler knows about the call it serves.
 *
 * @example
 * ```ts
 * import type { CallContext } from "@contenox/modeldconn/testing";
 * function fence(ctx: CallContext): string | undefined {
 *   const values = ctx.header("x-contenox-owner-instance");
 *   return values.length === 1 ? values[0] : undefined;
 * }
 * ```
 */
export interface CallContext {
  /** The method name, e.g. `OpenSession`. */
  readonly method: string;
  /** Every value of a request header (lower-case name), in order. */
  header(name: string): string[];
  /** The id of the HTTP/2 connection (1, 2, ...), for connection-bound state. */
  readonly connectionId: number;
  /**
   * Aborted when the client resets the stream, the connection drops, the
   * `grpc-timeout` passes (reason: a `TimeoutError` DOMException) or the
   * server is killed.
   */
  readonly signal: AbortSignal;
}

/**
 * One RPC as received, for assertions in tests.
 *
 * @example
 * ```ts ignore
 * const open = daemon.requests.find((r) => r.method === "OpenSession")!;
 * console.assert(open.fenceHeader === daemon.instanceId && open.body.includes('"NumCtx"'));
 * ```
 */
export interface RequestRecord {
  /** The method name, e.g. `EnsurePrefix`. */
  method: string;
  /** The `x-contenox-owner-instance` value (several joined by `, `), or `undefined`. */
  fenceHeader: string | undefined;
  /** The request's `content-type`. */
  contentType: string;
  /** The `grpc-timeout` the client announced, or `undefined`. */
  timeoutHeader: string | undefined;
  /** The first request message's JSON text, exactly as received ("" when none arrived). */
  body: string;
  /** How many request messages arrived (client streams send many). */
  messages: number;
}

/** The handler of one method, typed by its descriptor. */
export type MethodImpl<M> = M extends {
  methodKind: "unary";
  input: infer I extends DescMessage;
  output: infer O extends DescMessage;
} ? (req: MessageShape<I>, ctx: CallContext) => Promise<MessageInitShape<O>>
  : M extends {
    methodKind: "server_streaming";
    input: infer I extends DescMessage;
    output: infer O extends DescMessage;
  } ? (req: MessageShape<I>, ctx: CallContext) => AsyncIterable<MessageInitShape<O>>
  : M extends {
    methodKind: "client_streaming";
    input: infer I extends DescMessage;
    output: infer O extends DescMessage;
  } ? (reqs: AsyncIterable<MessageShape<I>>, ctx: CallContext) => Promise<MessageInitShape<O>>
  : never;

/** Handlers by the method's local (camelCase) name; absent ones are unknown methods. */
export type ServiceImpl<S extends DescService> = {
  [K in keyof S["method"]]?: MethodImpl<S["method"][K]>;
};

/** Options for {@linkcode GrpcServer}. */
export interface GrpcServerOptions {
  /** Turns what a handler threw into a status (default: INTERNAL with the error text). */
  encodeError?: (err: unknown) => WireStatus;
  /** The Go request type of a method, for grpc-go's codec error texts (default `<method>Req`). */
  goRequestType?: (method: string) => string;
  /** The largest request message accepted (grpc-go: 4 MiB by default, modeld v0.33+: 512 MiB). */
  maxReceiveBytes?: number;
  /** Called for each RPC once its request message(s) arrived (or the call failed early). */
  onRequest?: (record: RequestRecord) => void;
  /** Called when a client reset a call whose handler was still running. */
  onCancelled?: (method: string) => void;
  /** Called when an HTTP/2 connection closes. */
  onConnectionClose?: (connectionId: number) => void;
  /** Calls wait for this before being dispatched (e.g. until the lease is taken). */
  ready?: Promise<unknown>;
  /**
   * Server-streaming responses: a message written less than this many ms
   * after the previous socket write is held, and the held messages go out
   * together (one write, one wake-up of the client) at most this long after
   * that write. The first message and the end of the stream go out at once;
   * each message stays its own gRPC message. 0 (default): every message at once.
   */
  streamFlushMs?: number;
}

/**
 * A status a handler can throw to end a call with an exact code and message.
 *
 * @example
 * ```ts
 * import { Code } from "@connectrpc/connect";
 * import { GrpcStatusError } from "./grpc_server.ts";
 * const err = new GrpcStatusError({ code: Code.Unknown, message: "EOF" });
 * console.assert(err.status.code === Code.Unknown);
 * ```
 */
export class GrpcStatusError extends Error {
  /** The status. */
  readonly status: WireStatus;

  /**
   * @param status The code, message and optional overflow counts.
   */
  constructor(status: WireStatus) {
    super(status.message);
    this.name = "GrpcStatusError";
    this.status = status;
  }
}

/**
 * Percent-encodes a `grpc-message` as grpc-go does: UTF-8 bytes outside
 * 0x20–0x7E, and `%`, become `%XX`.
 *
 * @param message The status message.
 * @returns The header value.
 *
 * @example
 * ```ts
 * import { encodeGrpcMessage } from "./grpc_server.ts";
 * console.assert(encodeGrpcMessage("100% ü") === "100%25 %C3%BC");
 * ```
 */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const b of utf8Encoder.encode(message)) {
    if (b >= 0x20 && b <= 0x7e && b !== 0x25) out += String.fromCharCode(b);
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * The `grpc-status-details-bin` value of a status: unpadded standard base64 of
 * a serialized `google.rpc.Status`, with one `ErrorInfo` for overflow counts.
 * `undefined` when the status has no details.
 *
 * @param status The status.
 * @returns The header value, or `undefined`.
 *
 * @example
 * ```ts
 * import { Code } from "@connectrpc/connect";
 * import { statusDetailsBin } from "./grpc_server.ts";
 * const bin = statusDetailsBin({
 *   code: Code.ResourceExhausted,
 *   message: "context_overflow: …",
 *   overflow: { stage: "prefix", residentTokens: 0, additionalTokens: 5, numCtx: 4 },
 * });
 * console.assert(bin !== undefined && !bin.endsWith("="));
 * ```
 */
export function statusDetailsBin(status: WireStatus): string | undefined {
  const o = status.overflow;
  if (!o) return undefined;
  const info = create(ErrorInfoSchema, {
    reason: "context_overflow",
    domain: "contenox.transport",
    metadata: {
      stage: o.stage,
      resident_tokens: String(o.residentTokens),
      additional_tokens: String(o.additionalTokens),
      num_ctx: String(o.numCtx),
    },
  });
  const st = create(StatusSchema, {
    code: status.code,
    message: status.message,
    details: [anyPack(ErrorInfoSchema, info)],
  });
  return bytesToBase64(toBinary(StatusSchema, st)).replace(/=+$/, "");
}

/**
 * A gRPC server for one service over h2c.
 *
 * @example
 * ```ts ignore
 * import { GrpcServer } from "./grpc_server.ts";
 * import { Compute } from "../../gen/contenox/transport/v1/compute_pb.ts";
 * const server = new GrpcServer(Compute, { health: async () => ({ ready: true }) });
 * console.log(await server.listen("127.0.0.1", 0));
 * await server.close();
 * ```
 */
export class GrpcServer<S extends DescService> {
  readonly #service: S;
  readonly #impl: () => ServiceImpl<S>;
  readonly #options: GrpcServerOptions;
  readonly #sessions = new Set<H2Session>();
  readonly #calls = new Set<AbortController>();
  #listener?: Deno.TcpListener;
  #accepting?: Promise<void>;
  #connectionSeq = 0;
  #closed = false;

  /**
   * @param service The service descriptor.
   * @param impl The handlers, or a function giving them (called once `ready` settles).
   * @param options Error encoding, limits and hooks.
   */
  constructor(
    service: S,
    impl: ServiceImpl<S> | (() => ServiceImpl<S>),
    options: GrpcServerOptions = {},
  ) {
    this.#service = service;
    this.#impl = typeof impl === "function" ? impl : () => impl;
    this.#options = options;
  }

  /**
   * Starts listening.
   *
   * @param host The address to bind, e.g. `127.0.0.1`.
   * @param port The port (0 = any free port).
   * @returns The bound `host:port` (`[v6]:port` for IPv6).
   *
   * @example
   * ```ts ignore
   * const endpoint = await server.listen("127.0.0.1", 0);
   * ```
   */
  listen(host: string, port: number): Promise<string> {
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ hostname: host, port, transport: "tcp" });
    } catch (err) {
      return Promise.reject(err); // a port in use: the caller's await throws, as before
    }
    this.#listener = listener;
    this.#accepting = this.#accept(listener);
    const addr = listener.addr;
    return Promise.resolve(
      addr.hostname.includes(":")
        ? `[${addr.hostname}]:${addr.port}`
        : `${addr.hostname}:${addr.port}`,
    );
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // the listener closed
      }
      if (this.#closed) {
        conn.close();
        continue;
      }
      const id = ++this.#connectionSeq;
      const session = H2Session.accept(conn, (stream, fields, end) => {
        this.#onStream(id, stream, fields, end).catch(() => stream.reset(H2_INTERNAL_ERROR));
      });
      this.#sessions.add(session);
      session.onClose = () => {
        this.#sessions.delete(session);
        this.#options.onConnectionClose?.(id);
      };
    }
  }

  /** The number of open HTTP/2 connections. */
  get connections(): number {
    return this.#sessions.size;
  }

  /**
   * Stops gracefully, like grpc-go's `GracefulStop`: stops accepting, sends
   * GOAWAY on every connection and waits for calls in flight; after `graceMs`
   * the remaining connections are destroyed.
   *
   * @param graceMs How long to wait for calls in flight.
   * @returns When every connection is closed.
   *
   * @example
   * ```ts ignore
   * await server.close(1000);
   * ```
   */
  async close(graceMs = 5_000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopListening();
    for (const session of this.#sessions) session.goaway();
    const until = Date.now() + graceMs;
    while (this.#sessions.size > 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (this.#sessions.size > 0) this.destroy();
    await this.#accepting;
  }

  /**
   * Stops at once: aborts every call and closes every connection without
   * GOAWAY, as if the process died.
   *
   * @example
   * ```ts ignore
   * server.destroy();
   * ```
   */
  destroy(): void {
    this.#closed = true;
    for (const call of this.#calls) call.abort(new DOMException("server killed", "AbortError"));
    for (const session of [...this.#sessions]) session.close();
    this.#stopListening();
  }

  #stopListening(): void {
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
  }

  async #onStream(
    connectionId: number,
    stream: H2Stream,
    fields: HeaderField[],
    ended: boolean,
  ): Promise<void> {
    // First, before any await: the session hands this stream's next frames to its handler.
    const body = new RequestBody(stream, ended);
    stream.handler = body;
    const headers: Record<string, string> = {};
    for (const [name, value] of fields) headers[name] ??= value;
    const path = headers[":path"] ?? "";
    const contentType = headers["content-type"] ?? "";
    const headerValues = (name: string): string[] => {
      const out: string[] = [];
      for (const [n, v] of fields) if (n === name) out.push(v);
      return out;
    };
    const fence = headerValues("x-contenox-owner-instance");
    const record: RequestRecord = {
      method: path.slice(path.lastIndexOf("/") + 1),
      fenceHeader: fence.length === 0 ? undefined : fence.join(", "),
      contentType,
      timeoutHeader: headers["grpc-timeout"],
      body: "",
      messages: 0,
    };

    // grpc-go: a non-gRPC content type is HTTP 415 with INVALID_ARGUMENT.
    const subtype = grpcSubtype(contentType);
    if (subtype === undefined || headers[":method"] !== "POST") {
      const bad = headers[":method"] !== "POST"
        ? { status: 405, message: `invalid gRPC request method ${headers[":method"]}` }
        : { status: 415, message: `invalid gRPC request content-type "${contentType}"` };
      stream.respond([
        [":status", String(bad.status)],
        ["content-type", "application/grpc"],
        ["grpc-status", String(Code.InvalidArgument)],
        ["grpc-message", encodeGrpcMessage(bad.message)],
      ], true);
      this.#options.onRequest?.(record);
      return;
    }
    const writer = new ResponseWriter(
      stream,
      subtype === "" ? "application/grpc" : `application/grpc+${subtype}`,
    );

    await this.#options.ready;
    const method = this.#lookup(path);
    if (typeof method === "string") {
      await writer.finish({ code: Code.Unimplemented, message: method });
      this.#options.onRequest?.(record);
      return;
    }
    record.method = method.name;

    const controller = new AbortController();
    this.#calls.add(controller);
    let finished = false;
    const onGone = () => {
      if (finished || controller.signal.aborted) return;
      controller.abort(new DOMException("the client cancelled the call", "AbortError"));
      this.#options.onCancelled?.(method.name);
    };
    body.onGone = onGone;
    const timeoutMs = parseGrpcTimeout(headers["grpc-timeout"] ?? "");
    // A timer cleared when the call ends, not AbortSignal.timeout: Deno keeps
    // a timeout signal, and what AbortSignal.any hangs on it, until it fires,
    // so every call with a 10-minute grpc-timeout held about 460 bytes for
    // 10 minutes after it ended.
    // The deadline aborts the call's own controller: AbortSignal.any links
    // cost more survivors per call (1% of the daemon's allocation, which
    // grew V8's young generation) than the rule they kept, reporting a
    // client's cancel after the deadline had already ended the call.
    const signal = controller.signal;
    let deadline: ReturnType<typeof setTimeout> | undefined;
    if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
      deadline = setTimeout(
        () => controller.abort(new DOMException("the call's grpc-timeout passed", "TimeoutError")),
        timeoutMs,
      );
      Deno.unrefTimer(deadline as unknown as number);
    }
    const ctx: CallContext = {
      method: method.name,
      header: headerValues,
      connectionId,
      signal,
    };

    const maxBytes = this.#options.maxReceiveBytes ?? 4 * 1024 * 1024;
    const goType = `*grpc.${
      this.#options.goRequestType?.(method.name) ?? lowerFirst(method.name) + "Req"
    }`;
    const raw = readEnvelopes(body, maxBytes);
    const decode = (bytes: Uint8Array, unary: boolean): MessageShape<DescMessage> => {
      const text = utf8Decoder.decode(bytes);
      if (record.messages++ === 0) record.body = text;
      const prefix = unary
        ? "grpc: error unmarshalling request: "
        : "grpc: failed to unmarshal the received message: ";
      if (subtype !== CODEC_SUBTYPE) {
        throw new GrpcStatusError({
          code: Code.Internal,
          message: `${prefix}failed to unmarshal, message is ${goType}, want proto.Message`,
        });
      }
      try {
        return parseGoJson(method.input, text, goType);
      } catch (err) {
        throw new GrpcStatusError({
          code: Code.Internal,
          message: prefix + (err instanceof Error ? err.message : String(err)),
        });
      }
    };
    const encode = (msg: MessageInitShape<DescMessage>): Uint8Array => {
      const full = create(method.output, msg);
      return encodeEnvelope(method.output, full);
    };
    const fail = (err: unknown): WireStatus => {
      if (err instanceof GrpcStatusError) return err.status;
      return this.#options.encodeError?.(err) ??
        { code: Code.Internal, message: err instanceof Error ? err.message : String(err) };
    };

    let logged = false;
    const log = () => {
      if (logged) return;
      logged = true;
      this.#options.onRequest?.(record);
    };
    try {
      // deno-lint-ignore no-explicit-any
      const handler = (this.#impl() as Record<string, any>)[method.localName];
      if (method.methodKind === "client_streaming") {
        const reqs = (async function* () {
          for await (const bytes of raw) yield decode(bytes, false);
        })();
        let first = true;
        const withLog = (async function* () {
          for await (const req of reqs) {
            if (first) {
              first = false;
              log();
            }
            yield req;
          }
        })();
        const res = await handler(withLog, ctx);
        log();
        await writer.send(encode(res));
      } else {
        const unary = method.methodKind === "unary";
        const bytes = await readSingle(raw, unary);
        const req = decode(bytes, unary);
        log();
        if (unary) {
          const res = await handler(req, ctx);
          await writer.send(encode(res));
        } else {
          writer.flushMs = this.#options.streamFlushMs ?? 0;
          for await (
            const chunk of handler(req, ctx) as AsyncIterable<MessageInitShape<DescMessage>>
          ) {
            if (signal.aborted) break;
            await writer.send(encode(chunk));
          }
        }
      }
      finished = true;
      await writer.finish({ code: 0, message: "" });
    } catch (err) {
      log();
      finished = true;
      await writer.finish(fail(err));
    } finally {
      clearTimeout(deadline);
      // What the client still sends (e.g. a push refused early) is discarded:
      // the session stops the stream with NO_ERROR once the answer is out.
      this.#calls.delete(controller);
    }
  }

  #lookup(path: string): DescMethod | string {
    const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
    if (!m) return `malformed method name: "${path}"`;
    const [, service, name] = m;
    if (service !== this.#service.typeName) return `unknown service ${service}`;
    const method = this.#service.methods.find((x) => x.name === name);
    // deno-lint-ignore no-explicit-any
    if (!method || !(this.#impl() as Record<string, any>)[method.localName]) {
      return `unknown method ${name} for service ${service}`;
    }
    return method;
  }
}

/**
 * Writes headers, messages and trailers (or a trailers-only response).
 *
 * With {@linkcode ResponseWriter.flushMs} set, messages that follow a socket
 * write closely are held and written together. A Decode streams one message
 * per token while llama.cpp computes the next one on every core, with threads
 * that spin at each barrier: every write wakes the client and the daemon's
 * I/O, which preempts one of those threads and stalls the others. Fewer
 * wake-ups made llama.cpp's per-token time 5–15% shorter on 2 cores.
 */
class ResponseWriter {
  readonly #stream: H2Stream;
  readonly #contentType: string;
  #headersSent = false;
  /** Hold messages written less than this many ms after the last socket write (0: never). */
  flushMs = 0;
  #held: Uint8Array[] = [];
  #lastWrite = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The write in flight: the next one waits for it (backpressure, and trailers come after it). */
  #writing: Promise<unknown> | undefined;

  constructor(stream: H2Stream, contentType: string) {
    this.#stream = stream;
    this.#contentType = contentType;
  }

  /** Sends one envelope ({@linkcode encodeEnvelope}'s output), or holds it (see `flushMs`). */
  async send(envelope: Uint8Array): Promise<void> {
    const stream = this.#stream;
    if (stream.closed) throw new DOMException("the client cancelled the call", "AbortError");
    if (!this.#headersSent) {
      this.#headersSent = true;
      stream.respond([[":status", "200"], ["content-type", this.#contentType]]);
    }
    if (this.#writing) await this.#writing;
    if (this.flushMs === 0) {
      // Nothing is held (every unary reply; streams with the hold off): straight out.
      await stream.write(envelope, false).catch(() => {});
      return;
    }
    this.#held.push(envelope);
    const wait = this.#lastWrite + this.flushMs - performance.now();
    if (wait > 0) {
      this.#timer ??= setTimeout(() => this.#flush(), wait);
      return;
    }
    this.#flush();
    if (this.#writing) await this.#writing;
  }

  /** Writes the held envelopes in one write. */
  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const stream = this.#stream;
    if (this.#held.length === 0 || stream.closed) return;
    const data = this.#held.length === 1 ? this.#held[0] : concatBytes(this.#held);
    this.#held = [];
    this.#lastWrite = performance.now();
    const writing = stream.write(data, false).catch(() => {}).finally(() => {
      if (this.#writing === writing) this.#writing = undefined;
    });
    this.#writing = writing;
  }

  /** Ends the response: trailers after the last message, or a trailers-only response. */
  async finish(status: WireStatus): Promise<void> {
    this.#flush();
    if (this.#writing) await this.#writing;
    const stream = this.#stream;
    if (stream.closed) return;
    const fields = statusFields(status);
    if (this.#headersSent) {
      stream.trailers(fields);
      return;
    }
    this.#headersSent = true;
    stream.respond([[":status", "200"], ["content-type", this.#contentType], ...fields], true);
  }
}

/**
 * A request stream's body and fate, as the HTTP/2 session reports them: the
 * DATA chunks (copies the session made), the client's END_STREAM, a reset or
 * a lost connection. A reader far behind (a push written to disk) pauses the
 * stream, and HTTP/2 flow control then stops the client.
 */
class RequestBody implements StreamHandler, AsyncIterable<Uint8Array> {
  readonly #stream: H2Stream;
  readonly #chunks: Uint8Array[] = [];
  #bytes = 0;
  #ended: boolean;
  #gone?: Error;
  #wake?: () => void;
  /** Called once when the client resets the stream or the connection drops. */
  onGone?: () => void;

  constructor(stream: H2Stream, ended: boolean) {
    this.#stream = stream;
    this.#ended = ended;
  }

  onHeaders(_fields: HeaderField[], end: boolean): void {
    if (end) this.#ended = true; // trailers from the client: the request is complete
    this.#wakeUp();
  }

  onData(chunk: Uint8Array, end: boolean): void {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#bytes += chunk.length;
      if (this.#bytes > BODY_HIGH_WATER) this.#stream.pause();
    }
    if (end) this.#ended = true;
    this.#wakeUp();
  }

  onReset(code: number): void {
    this.#fail(new Error(`the client reset the stream (HTTP/2 error code ${code})`));
  }

  onError(err: Error): void {
    this.#fail(err);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const chunk = this.#chunks.shift();
      if (chunk) {
        this.#bytes -= chunk.length;
        if (this.#bytes < BODY_HIGH_WATER / 2) this.#stream.resume();
        yield chunk;
        continue;
      }
      if (this.#gone) throw this.#gone;
      if (this.#ended) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  #fail(err: Error): void {
    if (this.#gone) return;
    this.#gone = err;
    this.#wakeUp();
    this.onGone?.();
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** Request bytes buffered before the stream is paused: two 4 MiB push frames. */
const BODY_HIGH_WATER = 8 << 20;

function statusFields(status: WireStatus): HeaderField[] {
  const out: HeaderField[] = [
    ["grpc-status", String(status.code)],
    ["grpc-message", encodeGrpcMessage(status.message)],
  ];
  const details = statusDetailsBin(status);
  if (details !== undefined) out.push(["grpc-status-details-bin", details]);
  return out;
}

/**
 * The gRPC content-subtype of a content type, lower-cased: `""` for
 * `application/grpc`, `x` for `application/grpc+x` or `application/grpc;x`,
 * `undefined` for a non-gRPC type.
 */
function grpcSubtype(contentType: string): string | undefined {
  const ct = contentType.toLowerCase();
  const base = "application/grpc";
  if (!ct.startsWith(base)) return undefined;
  if (ct.length === base.length) return "";
  const sep = ct[base.length];
  if (sep !== "+" && sep !== ";") return undefined;
  return ct.slice(base.length + 1);
}

/** Parses a `grpc-timeout` value (`30S`, `500m`) into milliseconds. */
function parseGrpcTimeout(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unitMs: Record<string, number> = {
    H: 3_600_000,
    M: 60_000,
    S: 1000,
    m: 1,
    u: 1e-3,
    n: 1e-6,
  };
  return Math.max(0, Math.ceil(n * unitMs[m[2]]));
}

/** Yields each length-prefixed message payload of a request body. */
async function* readEnvelopes(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number,
): AsyncGenerator<Uint8Array> {
  const splitter = new EnvelopeSplitter(maxBytes);
  const ready: Uint8Array[] = [];
  const onMessage = (flags: number, data: Uint8Array) => {
    if (flags !== 0) {
      throw new GrpcStatusError({
        code: Code.Internal,
        message: "grpc: compressed flag set with identity or empty encoding",
      });
    }
    ready.push(data);
  };
  for await (const chunk of body) {
    try {
      // The session hands over copies, so the splitter may keep views of them.
      splitter.push(chunk, onMessage);
    } catch (err) {
      if (!(err instanceof EnvelopeTooLargeError)) throw err;
      throw new GrpcStatusError({ code: Code.ResourceExhausted, message: err.message });
    }
    while (ready.length > 0) yield ready.shift()!;
  }
  if (splitter.buffered > 0) {
    throw new GrpcStatusError({
      code: Code.Internal,
      message: "grpc: received a truncated message",
    });
  }
}

/** Reads the one request message of a unary or server-streaming call. */
async function readSingle(raw: AsyncGenerator<Uint8Array>, unary: boolean): Promise<Uint8Array> {
  const first = await raw.next();
  if (first.done) {
    // grpc-go: a stream handler's RecvMsg returns io.EOF, which becomes UNKNOWN "EOF".
    throw new GrpcStatusError(
      unary
        ? { code: Code.Internal, message: "grpc: error while reading request: EOF" }
        : { code: Code.Unknown, message: "EOF" },
    );
  }
  // Like grpc-go, read exactly one message; anything after it is ignored (the
  // session stops the stream with NO_ERROR once the answer is out).
  return first.value;
}

/**
 * Parses a request the way Go's `json.Unmarshal` accepts it, as closely as
 * protobuf-es allows: unknown keys ignored, `null` = zero, 64-bit integers
 * exact. Error texts imitate Go's for the common cases.
 */
function parseGoJson<D extends DescMessage>(
  desc: D,
  text: string,
  goType: string,
): MessageShape<D> {
  if (text.trim() === "") throw new Error("unexpected end of JSON input");
  let value: JsonValue;
  try {
    value = JSON.parse(quoteUnsafeIntegers(text)) as JsonValue;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(
      /end of (JSON|data)/i.test(message)
        ? "unexpected end of JSON input"
        : `invalid character: ${message}`,
    );
  }
  if (value === null) return create(desc);
  if (typeof value !== "object" || Array.isArray(value)) {
    const kind = Array.isArray(value)
      ? "array"
      : typeof value === "boolean"
      ? "bool"
      : typeof value;
    throw new Error(`json: cannot unmarshal ${kind} into Go value of type ${goType.slice(1)}`);
  }
  const goInt = goIntProblem(desc, value); // Go's int: no fractions, no exponents beyond int64
  if (goInt) throw new Error(goInt);
  try {
    return fromJson(desc, value, { ignoreUnknownFields: true });
  } catch (err) {
    throw new Error(
      `json: cannot unmarshal into Go value of type ${goType.slice(1)}: ${
        err instanceof Error ? err.message : String(err)
      }`,
    );
  }
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}
