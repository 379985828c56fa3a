/**
 * The HTTP/2 connection under a {@linkcode Connection}: one `node:http2`
 * session to the daemon, dialled on the first call and again after it breaks
 * or the daemon sends GOAWAY, with the handshake bounded and gRPC's client
 * keepalive (PINGs only while calls are open, at most one per interval, since
 * grpc-go servers answer more with GOAWAY). It replaces connect-node's session
 * manager with the same rules at a fraction of the cost per call: that one
 * re-armed two or three timers for every call and for every chunk read; here a
 * call costs a counter and a timestamp, and one timer per session checks the
 * keepalive.
 *
 * @example
 * ```ts ignore
 * import { H2Connection } from "./h2_connection.ts";
 *
 * const h2 = new H2Connection("http://127.0.0.1:40517", "127.0.0.1:40517", limits);
 * const stream = await h2.request("/contenox.transport.v1.Compute/Health", headers);
 * h2.close();
 * ```
 *
 * @module
 */

import { Code, ConnectError } from "@connectrpc/connect";
import http2 from "node:http2";
import { judgedFailure, MAX_TIMER_MS } from "./grpc_call.ts";
import { markUnprocessed } from "./transport_marks.ts";

/** The bounds a connection keeps. */
export interface H2Limits {
  /** TCP connect plus the daemon's SETTINGS. */
  connectTimeoutMs: number;
  /** Quiet time on an open call before a PING; also the idle time after which a reused connection is checked first. */
  pingIntervalMs: number;
  /** How long a PING may go unanswered. */
  pingTimeoutMs: number;
}

const NGHTTP2_CANCEL = 8;
/** A listener that captures nothing, for sessions that outlive their connection. */
const ignore = () => {};

/** One session and what the connection knows about it. */
interface Live {
  session: http2.ClientHttp2Session;
  /** Streams not yet closed (for GOAWAY's last stream id and the keepalive). */
  open: Set<http2.ClientHttp2Stream>;
  /** Resolves once the daemon acknowledged our SETTINGS. */
  handshake: Promise<void>;
  /** After GOAWAY: finishes its streams, takes no new ones. */
  draining: boolean;
  /** When data or a PING answer last arrived (ms, Date.now). */
  aliveAt: number;
  pingedAt: number;
  pingIntervalMs: number;
  timer?: ReturnType<typeof setTimeout>;
  verifying?: Promise<boolean>;
}

/**
 * One daemon's HTTP/2 connection.
 *
 * @example
 * ```ts ignore
 * const h2 = new H2Connection(url, endpoint, { connectTimeoutMs: 20_000, pingIntervalMs: 360_000, pingTimeoutMs: 20_000 });
 * ```
 */
export class H2Connection {
  readonly #authority: string;
  readonly #endpoint: string;
  readonly #limits: H2Limits;
  readonly #lives = new Map<http2.ClientHttp2Session, Live>();
  #current?: Live;
  #connecting?: Promise<Live>;
  #closed = false;

  /**
   * @param authority `http://host:port`.
   * @param endpoint `host:port`, for error messages.
   * @param limits Handshake and keepalive bounds.
   */
  constructor(authority: string, endpoint: string, limits: H2Limits) {
    this.#authority = authority;
    this.#endpoint = endpoint;
    this.#limits = limits;
  }

  /**
   * Opens a stream for a POST to `path`, once the session's handshake is done.
   *
   * @param path The request path.
   * @param headers The request headers (without pseudo-headers).
   * @returns The stream.
   * @throws {ConnectError} When the daemon cannot be reached, or the connection was closed.
   */
  async request(
    path: string,
    headers: http2.OutgoingHttpHeaders,
  ): Promise<http2.ClientHttp2Stream> {
    for (let attempt = 0;; attempt++) {
      const live = await this.#ready();
      let stream: http2.ClientHttp2Stream;
      try {
        stream = live.session.request({ ...headers, ":method": "POST", ":path": path });
      } catch (err) {
        // The session died between the check and the request: dial again, once.
        if (attempt === 0 && (live.session.closed || live.session.destroyed)) continue;
        throw err;
      }
      this.#track(live, stream);
      await live.handshake;
      return stream;
    }
  }

  /**
   * Notes that data arrived on `stream` (the keepalive pings only quiet connections).
   *
   * @param stream The stream that read data.
   */
  alive(stream: http2.ClientHttp2Stream): void {
    const live = this.#lives.get(stream.session as http2.ClientHttp2Session);
    if (live) live.aliveAt = Date.now();
  }

  /**
   * Closes every session; calls in flight fail, later requests are refused.
   * Deno's node:http2 keeps every closed session reachable from a global
   * handle (bench/http2_leak_repro.ts): sessions are destroyed without an
   * error, so the socket stores none (an error's stack keeps its callers'
   * frames, this connection and its client alive), and lose their listeners.
   */
  close(): void {
    this.#closed = true;
    for (const live of this.#lives.values()) {
      clearTimeout(live.timer);
      if (!live.session.destroyed) live.session.destroy();
      live.session.removeAllListeners();
      live.session.on("error", ignore);
    }
    this.#lives.clear();
    this.#current = undefined;
  }

  async #ready(): Promise<Live> {
    if (this.#closed) {
      // As a dropped connection: the daemon ended this connection's sessions with it.
      throw judgedFailure(
        new ConnectError(`the connection to ${this.#endpoint} was closed`, Code.Unavailable),
      );
    }
    const live = this.#current;
    if (live && !live.draining && !live.session.closed && !live.session.destroyed) {
      // A connection idle for longer than the ping interval may have died
      // silently: check it with a PING before trusting it with a call.
      if (live.open.size > 0 || Date.now() - live.aliveAt <= live.pingIntervalMs) return live;
      if (await this.#verify(live)) return live;
    }
    return await this.#connect();
  }

  #connect(): Promise<Live> {
    this.#connecting ??= new Promise<Live>((resolve, reject) => {
      const session = http2.connect(this.#authority);
      const timer = setTimeout(() => {
        session.destroy(undefined, NGHTTP2_CANCEL);
        reject(new ConnectError("connection establishment timed out", Code.Unavailable));
      }, Math.min(this.#limits.connectTimeoutMs, MAX_TIMER_MS));
      const failed = (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      };
      session.once("error", failed);
      session.once("connect", () => {
        clearTimeout(timer);
        session.off("error", failed);
        if (this.#closed) {
          session.destroy();
          reject(judgedFailure(
            new ConnectError(`the connection to ${this.#endpoint} was closed`, Code.Unavailable),
          ));
          return;
        }
        resolve(this.#adopt(session));
      });
    }).finally(() => this.#connecting = undefined);
    return this.#connecting;
  }

  #adopt(session: http2.ClientHttp2Session): Live {
    const now = Date.now();
    const live: Live = {
      session,
      open: new Set(),
      handshake: this.#handshake(session),
      draining: false,
      aliveAt: now,
      pingedAt: 0,
      pingIntervalMs: this.#limits.pingIntervalMs,
    };
    // Errors reach the streams; a session error listener must exist, or an
    // unheard write failure would crash the process.
    session.on("error", ignore);
    session.once("close", () => {
      clearTimeout(live.timer);
      this.#lives.delete(session);
      if (this.#current === live) this.#current = undefined;
    });
    session.once("goaway", (code: number, lastStreamId: number, data?: Uint8Array) => {
      live.draining = true;
      if (this.#current === live) this.#current = undefined;
      // Streams above the last stream id were never processed: fail them
      // first, marked so, before the session tears them down as a premature close.
      for (const stream of live.open) {
        if (stream.id === undefined || stream.id <= lastStreamId) continue;
        stream.destroy(markUnprocessed(judgedFailure(
          new ConnectError(
            `${this.#endpoint} sent GOAWAY before processing the call (last stream ${lastStreamId})`,
            Code.Unavailable,
          ),
        )));
      }
      if (data && new TextDecoder().decode(data) === "too_many_pings") {
        live.pingIntervalMs *= 2; // gRPC's keepalive rule (A8)
      }
      if (code === 0 && live.open.size === 0) session.destroy();
    });
    session.unref(); // an idle connection never keeps the process alive
    this.#lives.set(session, live);
    this.#current = live;
    this.#armKeepalive(live, live.pingIntervalMs);
    return live;
  }

  /** Resolves once the daemon acknowledged our SETTINGS, within the connect bound. */
  #handshake(session: http2.ClientHttp2Session): Promise<void> {
    if (!session.pendingSettingsAck) return Promise.resolve();
    const timeoutMs = this.#limits.connectTimeoutMs;
    const done = new Promise<void>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        session.off("localSettings", finish);
        session.off("close", finish);
        resolve();
      };
      const timer = setTimeout(() => {
        session.off("localSettings", finish);
        session.off("close", finish);
        session.destroy();
        reject(judgedFailure(
          new ConnectError(
            `the HTTP/2 handshake with ${this.#endpoint} did not complete within ${timeoutMs} ms`,
            Code.Unavailable,
          ),
        ));
      }, Math.min(timeoutMs, MAX_TIMER_MS));
      session.once("localSettings", finish);
      session.once("close", finish);
    });
    done.catch(ignore); // awaited by each request; a session nobody asked of must not crash
    return done;
  }

  #track(live: Live, stream: http2.ClientHttp2Stream): void {
    if (live.open.size === 0) live.session.ref();
    live.open.add(stream);
    stream.once("close", () => {
      live.open.delete(stream);
      if (live.open.size > 0) return;
      if (live.draining) live.session.destroy();
      else live.session.unref();
    });
  }

  /** One timer per session: PING when a call is open and nothing arrived for an interval. */
  #armKeepalive(live: Live, inMs: number): void {
    if (live.pingIntervalMs > MAX_TIMER_MS) return; // keepalive off
    live.timer = setTimeout(() => {
      if (live.session.destroyed) return;
      const now = Date.now();
      const quiet = now - live.aliveAt;
      const interval = live.pingIntervalMs;
      if (live.open.size > 0 && quiet >= interval && now - live.pingedAt >= interval) {
        this.#ping(live).then((ok) => {
          if (!ok) {
            live.session.destroy(
              judgedFailure(new ConnectError("PING timed out", Code.Unavailable)),
              NGHTTP2_CANCEL,
            );
          }
        });
        this.#armKeepalive(live, interval);
        return;
      }
      this.#armKeepalive(live, Math.max(interval - quiet, 1));
    }, Math.min(inMs, MAX_TIMER_MS));
    (live.timer as { unref?: () => void }).unref?.();
  }

  /** Sends a PING; resolves whether it was answered within the timeout. */
  #ping(live: Live): Promise<boolean> {
    live.pingedAt = Date.now();
    return new Promise((resolve) => {
      const timeoutMs = this.#limits.pingTimeoutMs;
      const timer = setTimeout(() => resolve(false), Math.min(timeoutMs, MAX_TIMER_MS));
      try {
        live.session.ping((err: Error | null, duration: number) => {
          clearTimeout(timer);
          if (err !== null || duration > timeoutMs) {
            resolve(false);
            return;
          }
          live.aliveAt = Date.now();
          resolve(true);
        });
      } catch {
        clearTimeout(timer);
        resolve(false); // the session is already gone
      }
    });
  }

  /** Checks a long-idle session with a PING; a dead one is destroyed. */
  #verify(live: Live): Promise<boolean> {
    live.verifying ??= this.#ping(live).then((ok) => {
      live.verifying = undefined;
      if (!ok) live.session.destroy();
      return ok;
    });
    return live.verifying;
  }
}
