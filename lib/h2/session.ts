/**
 * An HTTP/2 connection (RFC 9113) over one Deno TCP socket, either end:
 * framing, HPACK, flow control both ways, SETTINGS, PING, GOAWAY and
 * RST_STREAM, as much as gRPC over plaintext loopback needs and no more (no
 * TLS, no priorities, no server push). The client ({@linkcode H2Session.connect})
 * and the daemon's gRPC server ({@linkcode H2Session.accept}) both run on it,
 * in place of Deno's `node:http2`: that one costs about 170 µs of CPU per
 * unary call here (a bare request loop) and 4–6 µs per streamed message, this
 * one 60 µs and 1.7 µs (BENCHMARKS.md, the floor), and Deno 2.9.3's keeps
 * about 3.5 KB of every closed connection on either side. Writes resolve
 * once the socket took the bytes, and DATA goes out only as the peer's
 * windows allow, so a push holds at most one frame in memory whatever the
 * file's size.
 *
 * @example
 * ```ts ignore
 * import { H2Session } from "./session.ts";
 *
 * const session = await H2Session.connect("127.0.0.1", 40517);
 * await session.handshake;
 * const stream = session.request(headerBlock, handler, envelope, true);
 * session.close();
 * ```
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";
import { encodeHeaderBlock, type HeaderField, HpackDecoder, HpackError } from "./hpack.ts";

/** Frame types. */
const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PUSH_PROMISE = 5, PING = 6;
const GOAWAY = 7, WINDOW_UPDATE = 8, CONTINUATION = 9;
/** Flags. */
const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY = 0x20;

/** HTTP/2 error codes this side sends. */
export const H2_NO_ERROR = 0;
/** PROTOCOL_ERROR. */
export const H2_PROTOCOL_ERROR = 1;
/** INTERNAL_ERROR: the server failed outside the gRPC status path. */
export const H2_INTERNAL_ERROR = 2;
/** FLOW_CONTROL_ERROR. */
export const H2_FLOW_CONTROL_ERROR = 3;
/** FRAME_SIZE_ERROR. */
export const H2_FRAME_SIZE_ERROR = 6;
/** REFUSED_STREAM: a stream opened after our GOAWAY, never processed. */
export const H2_REFUSED_STREAM = 7;
/** CANCEL: a call the client gave up on. */
export const H2_CANCEL = 8;
/** COMPRESSION_ERROR. */
export const H2_COMPRESSION_ERROR = 9;

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
/** The largest frame we accept (the protocol's default; we never raise it). */
const MAX_FRAME_IN = 16_384;
/**
 * What each stream may send us before we read it: the bound on a paused
 * stream's buffer. The client reads small messages (a larger window let a
 * fast Decode stream pile up garbage); the daemon takes 4 MiB push frames.
 */
const STREAM_WINDOW = { client: 1 << 16, server: 1 << 20 } as const;
/** What the whole connection may have in flight to us. */
const CONNECTION_WINDOW = 1 << 26;
const READ_BUFFER = 1 << 16;
/** A handler for a server stream until its owner sets one. */
const IGNORE: StreamHandler = {
  onHeaders() {},
  onData() {},
  onReset() {},
  onError() {},
};
/** The most DATA one socket write carries: a large message goes out in pieces through one reused buffer. */
const WRITE_CHUNK = 1 << 18;

/** What a stream tells its owner. Calls arrive in the order of the frames. */
export interface StreamHandler {
  /** Response headers, or trailers when they end the stream (`end`). */
  onHeaders(fields: HeaderField[], end: boolean): void;
  /** A DATA payload (a copy the handler may keep); `end` when it ends the stream. */
  onData(chunk: Uint8Array, end: boolean): void;
  /** The peer reset the stream with this HTTP/2 error code. */
  onReset(code: number): void;
  /** The connection failed or went away before the stream ended. */
  onError(err: Error): void;
}

/**
 * A connection-level failure of the protocol itself (a malformed frame,
 * broken HPACK, a flow-control violation): the connection is closed with
 * GOAWAY and every open stream fails with this error.
 *
 * @example
 * ```ts
 * import { H2ProtocolError } from "./session.ts";
 * console.assert(new H2ProtocolError("bad frame", 1).code === 1);
 * ```
 */
export class H2ProtocolError extends Error {
  override name = "H2ProtocolError";
  /**
   * @param message What was wrong.
   * @param code The HTTP/2 error code sent with GOAWAY.
   */
  constructor(message: string, readonly code: number) {
    super(`http/2 protocol error: ${message}`);
  }
}

/**
 * One stream: a request the client opened ({@linkcode H2Session.request}),
 * or one the server accepted ({@linkcode H2Session.accept}). What the peer
 * sends on it reaches its {@linkcode StreamHandler}.
 *
 * @example
 * ```ts ignore
 * const stream = session.request(block, handler);
 * await stream.write(envelope, true);
 * ```
 */
export class H2Stream {
  /** Whether END_STREAM went out (or the stream was reset). */
  localEnded = false;
  /** Whether the peer's END_STREAM arrived. */
  remoteEnded = false;
  /** Whether the stream is over: ended both ways or reset. */
  closed = false;
  /** What we may still send (the peer's window for this stream). */
  sendWindow: number;
  #unacked = 0;
  #paused = false;
  #out?: Uint8Array;
  #blocked?: () => void;

  /** @internal */
  constructor(
    readonly session: H2Session,
    readonly id: number,
    public handler: StreamHandler,
    sendWindow: number,
    readonly recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
  }

  /**
   * Sends response headers (server side); `end` makes them a trailers-only response.
   *
   * @param fields The header fields, `:status` first.
   * @param end Whether they end the stream.
   */
  respond(fields: HeaderField[], end = false): void {
    this.session.sendHeaders(this, fields, end);
  }

  /**
   * Ends the stream with trailers (server side).
   *
   * @param fields The trailer fields.
   */
  trailers(fields: HeaderField[]): void {
    this.session.sendHeaders(this, fields, true);
  }

  /**
   * Sends `data` as DATA frames, as the windows allow; resolves once the
   * socket took the last frame. Returns early (nothing more sent) when the
   * stream closed meanwhile: the peer answered (or stopped) it, or reset it.
   *
   * @param data The bytes.
   * @param end Whether they end our side of the stream (END_STREAM).
   * @returns Whether everything was sent.
   */
  write(data: Uint8Array, end: boolean): Promise<boolean> {
    return this.session.writeData(this, data, end);
  }

  /** Stops returning read credit (the reader is behind); HTTP/2 flow control then stops the peer. */
  pause(): void {
    this.#paused = true;
  }

  /** Returns the credit withheld while paused. */
  resume(): void {
    this.#paused = false;
    if (this.#unacked > 0 && !this.closed) this.#credit();
  }

  /**
   * Resets the stream (RST_STREAM) unless it is over; the handler hears no more.
   *
   * @param code The HTTP/2 error code (CANCEL by default).
   */
  reset(code: number = H2_CANCEL): void {
    if (this.closed) return;
    this.session.resetStream(this, code);
  }

  /** @internal A buffer for `size` bytes of frames: a large one is reused (the write before it completed). */
  outBuffer(size: number): Uint8Array {
    if (size < WRITE_CHUNK / 4) return new Uint8Array(size);
    if (!this.#out || this.#out.length < size) this.#out = new Uint8Array(WRITE_CHUNK + 9 * 64);
    return this.#out.subarray(0, size);
  }

  /** @internal Counts received DATA against this stream's window. */
  received(length: number): void {
    this.#unacked += length;
    if (!this.#paused && this.#unacked >= this.recvWindow / 4) this.#credit();
  }

  /** @internal Wakes a writer waiting for window (or for the stream to close). */
  wake(): void {
    const blocked = this.#blocked;
    this.#blocked = undefined;
    blocked?.();
  }

  /** @internal Resolves when the window grows or the stream closes. */
  windowOpened(): Promise<void> {
    return new Promise((resolve) => this.#blocked = resolve);
  }

  #credit(): void {
    this.session.windowUpdate(this.id, this.#unacked);
    this.#unacked = 0;
  }
}

/**
 * One HTTP/2 connection, either end: {@linkcode H2Session.connect} dials
 * (client), {@linkcode H2Session.accept} serves an accepted socket (server).
 *
 * @example
 * ```ts ignore
 * const session = await H2Session.connect("127.0.0.1", port);
 * session.onClose = () => console.log("gone");
 * ```
 */
export class H2Session {
  /** Resolves once the peer acknowledged our SETTINGS; rejects if the connection closes first. */
  readonly handshake: Promise<void>;
  /** Called once with what GOAWAY said; open streams above `lastStreamId` were never processed. */
  onGoaway?: (code: number, lastStreamId: number, debug: Uint8Array) => void;
  /** Called once when the connection is gone (closed by either side, or failed). */
  onClose?: () => void;
  /** Called when the last open stream ended. */
  onIdle?: () => void;
  /** When bytes last arrived (ms, Date.now): the keepalive pings only quiet connections. */
  lastReadAt = Date.now();
  /** Set once GOAWAY arrived (or, on the server, went out): no new streams. */
  goneAway = false;
  readonly #conn: Deno.TcpConn;
  readonly #role: "client" | "server";
  /** Server side: hears each new request stream. */
  readonly #onStream?: (stream: H2Stream, fields: HeaderField[], end: boolean) => void;
  /** Server side: the highest stream id the client opened. */
  #lastPeerId = 0;
  /** Server side: whether the client preface has been read. */
  #prefaceRead = false;
  readonly #streams = new Map<number, H2Stream>();
  readonly #decoder = new HpackDecoder();
  #nextId = 1;
  #sendWindow = DEFAULT_WINDOW;
  #initialWindow = DEFAULT_WINDOW;
  #maxFrame = 16_384;
  #maxStreams = Infinity;
  #recvUnacked = 0;
  #settled!: () => void;
  #unsettled!: (err: Error) => void;
  #closed = false;
  /** The error that closed the connection, if one did. */
  #failure?: Error;
  #out: Uint8Array[] = [];
  #outDone: (() => void)[] = [];
  #flushing = false;
  #pings = new Map<bigint, { resolve: () => void; reject: (err: Error) => void }>();
  #pingSeq = 0n;
  #slots: (() => void)[] = [];
  #connWindowWaiters: H2Stream[] = [];
  /** A header block split over CONTINUATION frames. */
  #partial?: { id: number; end: boolean; chunks: Uint8Array[] };
  #refed = true;

  private constructor(
    conn: Deno.TcpConn,
    role: "client" | "server",
    onStream?: (stream: H2Stream, fields: HeaderField[], end: boolean) => void,
  ) {
    this.#conn = conn;
    this.#role = role;
    this.#onStream = onStream;
    this.#prefaceRead = role === "client";
    this.handshake = new Promise((resolve, reject) => {
      this.#settled = resolve;
      this.#unsettled = reject;
    });
    this.handshake.catch(() => {}); // awaited by each request; unheard it must not crash
  }

  /**
   * Dials `hostname:port`, sends the connection preface and our SETTINGS
   * (no push, 64 KiB per stream, 64 MiB for the connection) and starts reading.
   *
   * @param hostname The host to dial (IPv6 without brackets).
   * @param port The port.
   * @returns The session; await {@linkcode H2Session.handshake} before trusting it.
   * @throws {Deno.errors.ConnectionRefused} (and the like) when the dial fails.
   */
  static async connect(
    hostname: string,
    port: number,
  ): Promise<H2Session> {
    const conn = await Deno.connect({ hostname, port });
    // Nagle's algorithm would hold a small request until the daemon's delayed
    // ACK (about 40 ms per call); Deno leaves it on for TCP sockets.
    conn.setNoDelay(true);
    const session = new H2Session(conn, "client");
    session.#start(PREFACE);
    return session;
  }

  /**
   * Serves one accepted connection: sends our SETTINGS (1 MiB per stream,
   * 64 MiB for the connection), reads the client preface, and hands each new
   * request stream to `onStream` (which sets the stream's handler).
   *
   * @param conn The accepted socket.
   * @param onStream Hears each new stream with its request headers; `end` when they end it.
   * @returns The session.
   */
  static accept(
    conn: Deno.TcpConn,
    onStream: (stream: H2Stream, fields: HeaderField[], end: boolean) => void,
  ): H2Session {
    conn.setNoDelay(true);
    const session = new H2Session(conn, "server", onStream);
    session.#start(new Uint8Array(0));
    return session;
  }

  /** The stream window this side offers. */
  get #recvWindow(): number {
    return STREAM_WINDOW[this.#role];
  }

  #start(preface: Uint8Array): void {
    const settings = new Uint8Array(12);
    const view = new DataView(settings.buffer);
    view.setUint16(0, 2); // ENABLE_PUSH (a server may send only 0 or nothing; 0 is harmless)
    view.setUint32(2, 0);
    view.setUint16(6, 4); // INITIAL_WINDOW_SIZE
    view.setUint32(8, this.#recvWindow);
    void this.#enqueue(concatBytes([
      preface,
      frame(SETTINGS, 0, 0, this.#role === "server" ? settings.subarray(6) : settings),
      windowUpdateFrame(0, CONNECTION_WINDOW - DEFAULT_WINDOW),
    ]));
    void this.#readLoop();
  }

  /** Whether the connection is gone. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The streams not yet over. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /** The open streams, for GOAWAY handling. */
  streams(): IterableIterator<H2Stream> {
    return this.#streams.values();
  }

  /** Whether a new stream would exceed the daemon's SETTINGS_MAX_CONCURRENT_STREAMS. */
  get atCapacity(): boolean {
    return this.#streams.size >= this.#maxStreams;
  }

  /** Resolves when a stream ended (after {@linkcode H2Session.atCapacity}) or the connection closed. */
  slotFreed(): Promise<void> {
    return new Promise((resolve) => this.#slots.push(resolve));
  }

  /**
   * Opens a stream: HEADERS with `headerBlock`, and `body` in the same write
   * when the windows take it whole (else it follows as they open).
   *
   * @param headerBlock The request's HPACK block (see `encodeHeaderBlock`).
   * @param handler Hears the response.
   * @param body The first DATA, if any.
   * @param end Whether `body` ends the request.
   * @returns The stream, and a promise for `body`'s write (resolves whether all was sent).
   * @throws {Error} When the connection is closed or going away.
   */
  request(
    headerBlock: Uint8Array,
    handler: StreamHandler,
    body?: Uint8Array,
    end = false,
  ): { stream: H2Stream; sent: Promise<boolean> } {
    if (this.#closed || this.goneAway) {
      throw this.#failure ?? new Error("the HTTP/2 connection is closed");
    }
    if (headerBlock.length > this.#maxFrame) {
      throw new Error(`request headers of ${headerBlock.length} bytes exceed one frame`);
    }
    const id = this.#nextId;
    this.#nextId += 2;
    if (this.#nextId > MAX_WINDOW) this.goneAway = true; // stream ids ran out: next call dials anew
    const stream = new H2Stream(this, id, handler, this.#initialWindow, this.#recvWindow);
    this.#streams.set(id, stream);
    if (!this.#refed) {
      this.#refed = true;
      this.#conn.ref();
    }
    const small = body !== undefined && body.length <= this.#maxFrame &&
      body.length <= this.#sendWindow && body.length <= stream.sendWindow;
    if (small) {
      // The common case (a unary request): one buffer, one write.
      const out = new Uint8Array(18 + headerBlock.length + body.length);
      writeFrameHeader(out, 0, headerBlock.length, HEADERS, END_HEADERS, id);
      out.set(headerBlock, 9);
      const at = 9 + headerBlock.length;
      writeFrameHeader(out, at, body.length, DATA, end ? END_STREAM : 0, id);
      out.set(body, at + 9);
      this.#sendWindow -= body.length;
      stream.sendWindow -= body.length;
      if (end) stream.localEnded = true;
      return { stream, sent: this.#enqueue(out).then(() => true) };
    }
    const headers = frame(
      HEADERS,
      END_HEADERS | (body === undefined && end ? END_STREAM : 0),
      id,
      headerBlock,
    );
    if (body === undefined) {
      if (end) stream.localEnded = true;
      return { stream, sent: this.#enqueue(headers).then(() => true) };
    }
    void this.#enqueue(headers);
    return { stream, sent: this.writeData(stream, body, end) };
  }

  /** @internal See {@linkcode H2Stream.write}. */
  async writeData(stream: H2Stream, data: Uint8Array, end: boolean): Promise<boolean> {
    let at = 0;
    do {
      if (stream.closed || stream.localEnded) return false;
      if (this.#closed) throw this.#failure ?? new Error("the HTTP/2 connection is closed");
      // A window can be negative after the daemon lowered INITIAL_WINDOW_SIZE;
      // an empty DATA frame (END_STREAM alone) needs none.
      const room = Math.max(
        0,
        Math.min(data.length - at, this.#sendWindow, stream.sendWindow, WRITE_CHUNK),
      );
      if (room <= 0 && at < data.length) {
        if (this.#sendWindow <= 0) this.#connWindowWaiters.push(stream);
        await stream.windowOpened();
        continue;
      }
      const frames = Math.max(1, Math.ceil(room / this.#maxFrame));
      const out = stream.outBuffer(room + 9 * frames);
      let o = 0;
      for (let f = 0; f < frames; f++) {
        const n = Math.min(this.#maxFrame, room - f * this.#maxFrame);
        const last = f === frames - 1 && end && at + n === data.length;
        writeFrameHeader(out, o, n, DATA, last ? END_STREAM : 0, stream.id);
        out.set(data.subarray(at, at + n), o + 9);
        o += 9 + n;
        at += n;
      }
      this.#sendWindow -= room;
      stream.sendWindow -= room;
      const ending = end && at === data.length;
      if (ending) stream.localEnded = true;
      const written = this.#enqueue(out);
      if (ending) this.#localEnd(stream);
      await written;
    } while (at < data.length);
    return true;
  }

  /** @internal Sends HEADERS for `stream` (server responses and trailers). */
  sendHeaders(stream: H2Stream, fields: HeaderField[], end: boolean): void {
    if (stream.closed || stream.localEnded || this.#closed) return;
    const block = encodeHeaderBlock(fields);
    if (block.length > this.#maxFrame) {
      // Split over CONTINUATION frames (a large grpc-status-details-bin).
      const parts: Uint8Array[] = [];
      for (let at = 0; at < block.length; at += this.#maxFrame) {
        const piece = block.subarray(at, at + this.#maxFrame);
        const last = at + this.#maxFrame >= block.length;
        const type = at === 0 ? HEADERS : CONTINUATION;
        const flags = (last ? END_HEADERS : 0) | (at === 0 && end ? END_STREAM : 0);
        parts.push(frame(type, flags, stream.id, piece));
      }
      void this.#enqueue(concatBytes(parts));
    } else {
      void this.#enqueue(frame(HEADERS, END_HEADERS | (end ? END_STREAM : 0), stream.id, block));
    }
    if (end) {
      stream.localEnded = true;
      this.#localEnd(stream);
    }
  }

  /**
   * Our END_STREAM went out. The stream is over once the peer's came too; a
   * server that answered before the request ended stops it with NO_ERROR, as
   * grpc-go does, so the client stops sending.
   */
  #localEnd(stream: H2Stream): void {
    if (stream.remoteEnded) {
      stream.closed = true;
      this.#forget(stream);
      this.#idle();
      return;
    }
    if (this.#role === "server") {
      stream.closed = true;
      this.#forget(stream);
      void this.#enqueue(rstFrame(stream.id, H2_NO_ERROR));
      stream.wake();
      this.#idle();
    }
  }

  /**
   * Sends GOAWAY: the client may finish the streams it opened but start no
   * new one (server side, graceful stop). Closes once none is open: at once,
   * or when the last one ends.
   *
   * @param code The HTTP/2 error code (NO_ERROR for a graceful stop).
   */
  goaway(code = H2_NO_ERROR): void {
    if (this.#closed || this.goneAway) return;
    this.goneAway = true;
    void this.#enqueue(goawayFrame(this.#lastPeerId, code));
    if (this.#streams.size === 0) this.end();
  }

  /** Closes the connection once everything queued so far was written (the last trailers of a graceful stop). */
  end(): void {
    if (this.#closed) return;
    void this.#enqueue(new Uint8Array(0)).then(() => this.close());
  }

  /** @internal Sends RST_STREAM and forgets the stream. */
  resetStream(stream: H2Stream, code: number): void {
    stream.closed = true;
    stream.localEnded = true;
    this.#forget(stream);
    if (!this.#closed) void this.#enqueue(rstFrame(stream.id, code));
    stream.wake();
    this.#idle();
  }

  /** @internal Returns read credit for a stream. */
  windowUpdate(id: number, increment: number): void {
    if (!this.#closed && this.#streams.has(id)) {
      void this.#enqueue(windowUpdateFrame(id, increment));
    }
  }

  /**
   * Sends a PING and resolves when it is answered.
   *
   * @returns A promise that resolves on the answer; it rejects if the connection closes first.
   */
  ping(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#failure ?? new Error("closed"));
    const key = ++this.#pingSeq;
    const payload = new Uint8Array(8);
    new DataView(payload.buffer).setBigUint64(0, key);
    return new Promise((resolve, reject) => {
      this.#pings.set(key, { resolve, reject });
      void this.#enqueue(frame(PING, 0, 0, payload));
    });
  }

  /** Lets the process exit while the connection is idle (no open stream). */
  unrefIfIdle(): void {
    if (this.#streams.size === 0 && this.#refed && !this.#closed) {
      this.#refed = false;
      this.#conn.unref();
    }
  }

  /**
   * Closes the connection: GOAWAY (when `code` is given), then the socket. Open
   * streams fail with `err` (or a plain "closed").
   *
   * @param err What open streams fail with.
   * @param code An HTTP/2 error code to send with GOAWAY first.
   */
  close(err?: Error, code?: number): void {
    if (this.#closed) return;
    const failure = err ?? new Error("the HTTP/2 connection was closed");
    if (code !== undefined) {
      // Best effort, straight to the socket: the connection is ending anyway.
      this.#conn.write(goawayFrame(0, code)).catch(() => {}).finally(() => this.#teardown(failure));
      this.#closed = true;
      this.#failure = failure;
      this.#failStreams(failure);
      return;
    }
    this.#teardown(failure);
  }

  #teardown(failure: Error): void {
    this.#closed = true;
    this.#failure ??= failure;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.#failStreams(this.#failure);
    for (const resolve of this.#outDone.splice(0)) resolve();
    this.#out = [];
    for (const ping of this.#pings.values()) ping.reject(this.#failure);
    this.#pings.clear();
    for (const wake of this.#slots.splice(0)) wake();
    this.#unsettled(this.#failure);
    const onClose = this.onClose;
    this.onClose = undefined;
    onClose?.();
  }

  #failStreams(err: Error): void {
    const open = [...this.#streams.values()];
    this.#streams.clear();
    for (const stream of open) {
      stream.closed = true;
      stream.wake();
      stream.handler.onError(err);
    }
  }

  #forget(stream: H2Stream): void {
    if (!this.#streams.delete(stream.id)) return;
    const slot = this.#slots.shift();
    slot?.();
  }

  /** Queues bytes for the socket; resolves once it took them. Frames queued in one tick go out in one write. */
  #enqueue(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#out.push(bytes);
    const done = new Promise<void>((resolve) => this.#outDone.push(resolve));
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => void this.#flush());
    }
    return done;
  }

  async #flush(): Promise<void> {
    try {
      while (this.#out.length > 0 && !this.#closed) {
        const parts = this.#out;
        const waiters = this.#outDone;
        this.#out = [];
        this.#outDone = [];
        const bytes = parts.length === 1 ? parts[0] : concatBytes(parts);
        for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
        for (const resolve of waiters) resolve();
      }
    } catch (err) {
      this.#teardown(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.#flushing = false;
    }
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER);
    let pending: Uint8Array | undefined;
    try {
      for (;;) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        this.lastReadAt = Date.now();
        let data: Uint8Array = buffer.subarray(0, n);
        if (pending) data = concatBytes([pending, data]);
        if (!this.#prefaceRead) {
          if (data.length < PREFACE.length) {
            pending = data.slice();
            continue;
          }
          for (let i = 0; i < PREFACE.length; i++) {
            if (data[i] !== PREFACE[i]) {
              throw new H2ProtocolError("not an HTTP/2 client preface", H2_PROTOCOL_ERROR);
            }
          }
          this.#prefaceRead = true;
          data = data.subarray(PREFACE.length);
        }
        const used = this.#frames(data);
        pending = used < data.length ? data.slice(used) : undefined;
        if (this.#closed) return;
      }
      this.#teardown(
        new Error(`the ${this.#role === "client" ? "daemon" : "client"} closed the connection`),
      );
    } catch (err) {
      if (this.#closed) return;
      if (err instanceof H2ProtocolError) this.close(err, err.code);
      else this.#teardown(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Handles the whole frames in `data`; returns how many bytes they took. */
  #frames(data: Uint8Array): number {
    let at = 0;
    while (data.length - at >= 9) {
      const length = (data[at] << 16) | (data[at + 1] << 8) | data[at + 2];
      if (length > MAX_FRAME_IN) {
        throw new H2ProtocolError(
          `a frame of ${length} bytes (at most ${MAX_FRAME_IN})`,
          H2_FRAME_SIZE_ERROR,
        );
      }
      if (data.length - at < 9 + length) break;
      const type = data[at + 3];
      const flags = data[at + 4];
      const id =
        ((data[at + 5] & 0x7f) << 24 | data[at + 6] << 16 | data[at + 7] << 8 | data[at + 8]) >>> 0;
      const payload = data.subarray(at + 9, at + 9 + length);
      at += 9 + length;
      if (this.#partial && type !== CONTINUATION) {
        throw new H2ProtocolError("a header block was interrupted", H2_PROTOCOL_ERROR);
      }
      this.#frame(type, flags, id, payload);
      if (this.#closed) break;
    }
    return at;
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    switch (type) {
      case DATA:
        return this.#onData(flags, id, payload);
      case HEADERS: {
        if (id === 0) throw new H2ProtocolError("HEADERS on stream 0", H2_PROTOCOL_ERROR);
        let block = unpad(flags, payload);
        if (flags & PRIORITY) block = block.subarray(5);
        const end = (flags & END_STREAM) !== 0;
        if (flags & END_HEADERS) return this.#onHeaderBlock(id, block, end);
        this.#partial = { id, end, chunks: [block.slice()] };
        return;
      }
      case CONTINUATION: {
        const partial = this.#partial;
        if (!partial || partial.id !== id) {
          throw new H2ProtocolError("an unexpected CONTINUATION", H2_PROTOCOL_ERROR);
        }
        partial.chunks.push(payload.slice());
        if (flags & END_HEADERS) {
          this.#partial = undefined;
          this.#onHeaderBlock(id, concatBytes(partial.chunks), partial.end);
        }
        return;
      }
      case RST_STREAM: {
        if (payload.length !== 4) {
          throw new H2ProtocolError("RST_STREAM of wrong size", H2_FRAME_SIZE_ERROR);
        }
        const stream = this.#streams.get(id);
        if (!stream) return;
        stream.closed = true;
        stream.localEnded = true;
        this.#forget(stream);
        stream.wake();
        stream.handler.onReset(readU32(payload, 0));
        this.#idle();
        return;
      }
      case SETTINGS:
        return this.#onSettings(flags, id, payload);
      case PUSH_PROMISE:
        throw new H2ProtocolError("PUSH_PROMISE, which we disabled", H2_PROTOCOL_ERROR);
      case PING: {
        if (payload.length !== 8 || id !== 0) {
          throw new H2ProtocolError("malformed PING", H2_FRAME_SIZE_ERROR);
        }
        if (flags & ACK) {
          const key = new DataView(payload.buffer, payload.byteOffset, 8).getBigUint64(0);
          const ping = this.#pings.get(key);
          this.#pings.delete(key);
          ping?.resolve();
        } else {
          void this.#enqueue(frame(PING, ACK, 0, payload.slice()));
        }
        return;
      }
      case GOAWAY: {
        if (payload.length < 8) throw new H2ProtocolError("GOAWAY too short", H2_FRAME_SIZE_ERROR);
        this.goneAway = true;
        this.onGoaway?.(readU32(payload, 4), readU32(payload, 0) & MAX_WINDOW, payload.slice(8));
        this.#idle();
        return;
      }
      case WINDOW_UPDATE:
        return this.#onWindowUpdate(id, payload);
      default:
        return; // PRIORITY and unknown types are ignored (RFC 9113 §4.1)
    }
  }

  #onData(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new H2ProtocolError("DATA on stream 0", H2_PROTOCOL_ERROR);
    // Every DATA byte, padding included, counts against the connection's window.
    this.#recvUnacked += payload.length;
    if (this.#recvUnacked >= CONNECTION_WINDOW / 4) {
      void this.#enqueue(windowUpdateFrame(0, this.#recvUnacked));
      this.#recvUnacked = 0;
    }
    const stream = this.#streams.get(id);
    if (!stream) return; // a stream we reset: its late frames only count for the window
    const end = (flags & END_STREAM) !== 0;
    const body = unpad(flags, payload);
    if (!end) stream.received(payload.length);
    else this.#remoteEnd(stream);
    stream.handler.onData(body.slice(), end);
    if (end) this.#idle();
  }

  #onHeaderBlock(id: number, block: Uint8Array, end: boolean): void {
    let fields: HeaderField[];
    try {
      fields = this.#decoder.decode(block);
    } catch (err) {
      if (err instanceof HpackError) throw new H2ProtocolError(err.message, H2_COMPRESSION_ERROR);
      throw err;
    }
    let stream = this.#streams.get(id);
    if (!stream && this.#role === "server" && id % 2 === 1 && id > this.#lastPeerId) {
      this.#lastPeerId = id;
      if (this.goneAway) {
        void this.#enqueue(rstFrame(id, H2_REFUSED_STREAM));
        return;
      }
      stream = new H2Stream(this, id, IGNORE, this.#initialWindow, this.#recvWindow);
      this.#streams.set(id, stream);
      if (end) this.#remoteEnd(stream);
      this.#onStream!(stream, fields, end);
      return;
    }
    if (!stream) return;
    if (end) this.#remoteEnd(stream);
    stream.handler.onHeaders(fields, end);
    if (end) this.#idle();
  }

  /**
   * The peer ended its side. Client: the daemon's answer is complete, so the
   * stream is over (a request still being sent is stopped with NO_ERROR).
   * Server: the request is complete; the stream lives until we answer.
   */
  #remoteEnd(stream: H2Stream): void {
    stream.remoteEnded = true;
    if (this.#role === "server" && !stream.localEnded) return;
    stream.closed = true;
    if (!stream.localEnded) {
      stream.localEnded = true;
      void this.#enqueue(rstFrame(stream.id, H2_NO_ERROR));
    }
    this.#forget(stream);
    stream.wake();
  }

  #onSettings(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) throw new H2ProtocolError("SETTINGS on a stream", H2_PROTOCOL_ERROR);
    if (flags & ACK) {
      this.#settled();
      return;
    }
    if (payload.length % 6 !== 0) {
      throw new H2ProtocolError("SETTINGS of wrong size", H2_FRAME_SIZE_ERROR);
    }
    for (let at = 0; at < payload.length; at += 6) {
      const key = (payload[at] << 8) | payload[at + 1];
      const value = readU32(payload, at + 2);
      if (key === 3) this.#maxStreams = value;
      else if (key === 4) {
        if (value > MAX_WINDOW) {
          throw new H2ProtocolError("INITIAL_WINDOW_SIZE too large", H2_FLOW_CONTROL_ERROR);
        }
        const delta = value - this.#initialWindow;
        this.#initialWindow = value;
        for (const stream of this.#streams.values()) {
          stream.sendWindow += delta;
          if (delta > 0) stream.wake();
        }
      } else if (key === 5) {
        if (value < 16_384 || value > 16_777_215) {
          throw new H2ProtocolError(`MAX_FRAME_SIZE ${value}`, H2_PROTOCOL_ERROR);
        }
        this.#maxFrame = value;
      }
    }
    void this.#enqueue(frame(SETTINGS, ACK, 0, new Uint8Array(0)));
    for (const wake of this.#slots.splice(0)) wake(); // a raised stream limit
  }

  #onWindowUpdate(id: number, payload: Uint8Array): void {
    if (payload.length !== 4) {
      throw new H2ProtocolError("WINDOW_UPDATE of wrong size", H2_FRAME_SIZE_ERROR);
    }
    const increment = readU32(payload, 0) & MAX_WINDOW;
    if (id === 0) {
      if (increment === 0) throw new H2ProtocolError("WINDOW_UPDATE of 0", H2_PROTOCOL_ERROR);
      this.#sendWindow += increment;
      if (this.#sendWindow > MAX_WINDOW) {
        throw new H2ProtocolError("connection window beyond 2^31-1", H2_FLOW_CONTROL_ERROR);
      }
      for (const stream of this.#connWindowWaiters.splice(0)) stream.wake();
      return;
    }
    const stream = this.#streams.get(id);
    if (!stream) return;
    if (increment === 0 || stream.sendWindow + increment > MAX_WINDOW) {
      this.resetStream(stream, increment === 0 ? H2_PROTOCOL_ERROR : H2_FLOW_CONTROL_ERROR);
      stream.handler.onReset(increment === 0 ? H2_PROTOCOL_ERROR : H2_FLOW_CONTROL_ERROR);
      return;
    }
    stream.sendWindow += increment;
    stream.wake();
  }

  /**
   * No stream is open: an idle connection must not keep the process alive,
   * and a server's connection after its GOAWAY is done.
   */
  #idle(): void {
    if (this.#streams.size > 0) return;
    this.unrefIfIdle();
    if (this.#role === "server" && this.goneAway) this.end();
    this.onIdle?.();
  }
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

/** A DATA or HEADERS payload without its padding. */
function unpad(flags: number, payload: Uint8Array): Uint8Array {
  if (!(flags & PADDED)) return payload;
  const pad = payload[0];
  if (payload.length === 0 || pad >= payload.length) {
    throw new H2ProtocolError("padding longer than the frame", H2_PROTOCOL_ERROR);
  }
  return payload.subarray(1, payload.length - pad);
}

function writeFrameHeader(
  out: Uint8Array,
  at: number,
  length: number,
  type: number,
  flags: number,
  id: number,
): void {
  out[at] = length >>> 16;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out[at + 5] = (id >>> 24) & 0x7f;
  out[at + 6] = (id >>> 16) & 0xff;
  out[at + 7] = (id >>> 8) & 0xff;
  out[at + 8] = id & 0xff;
}

function frame(type: number, flags: number, id: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  writeFrameHeader(out, 0, payload.length, type, flags, id);
  out.set(payload, 9);
  return out;
}

/** A frame whose payload is one 32-bit value (WINDOW_UPDATE, RST_STREAM). */
function u32Frame(type: number, id: number, value: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, value);
  return frame(type, 0, id, payload);
}

function windowUpdateFrame(id: number, increment: number): Uint8Array {
  return u32Frame(WINDOW_UPDATE, id, increment);
}

function rstFrame(id: number, code: number): Uint8Array {
  return u32Frame(RST_STREAM, id, code);
}

/** GOAWAY: the last stream id the sender processed, and why. */
function goawayFrame(lastStreamId: number, code: number): Uint8Array {
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setUint32(0, lastStreamId);
  new DataView(payload.buffer).setUint32(4, code);
  return frame(GOAWAY, 0, 0, payload);
}
