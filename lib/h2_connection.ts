/**
 * The HTTP/2 connection under a {@linkcode Connection}: one {@linkcode H2Session}
 * (this package's own HTTP/2 client over a Deno TCP socket, `h2/session.ts`) to
 * the daemon, dialled on the first call and again after it breaks or the
 * daemon sends GOAWAY, with the handshake bounded and gRPC's client keepalive
 * (PINGs only while calls are open, at most one per interval, since grpc-go
 * servers answer more with GOAWAY). A call costs a counter and a timestamp;
 * one timer per session checks the keepalive.
 *
 * @example
 * ```ts ignore
 * import { H2Connection } from "./h2_connection.ts";
 *
 * const h2 = new H2Connection("127.0.0.1", 40517, "127.0.0.1:40517", limits);
 * const { stream, sent } = await h2.request(headerBlock, handler, envelope, true);
 * h2.close();
 * ```
 *
 * @module
 */

import { Code, ConnectError } from "@connectrpc/connect";
import { judgedFailure, MAX_TIMER_MS } from "./grpc_call.ts";
import { H2_CANCEL, H2Session, type H2Stream, type StreamHandler } from "./h2/session.ts";
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

/** One session and what the connection knows about it. */
interface Live {
  session: H2Session;
  /** After GOAWAY: finishes its streams, takes no new ones. */
  draining: boolean;
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
 * const h2 = new H2Connection("127.0.0.1", 40517, "127.0.0.1:40517", { connectTimeoutMs: 20_000, pingIntervalMs: 360_000, pingTimeoutMs: 20_000 });
 * ```
 */
export class H2Connection {
  readonly #hostname: string;
  readonly #port: number;
  readonly #endpoint: string;
  readonly #limits: H2Limits;
  readonly #lives = new Set<Live>();
  #current?: Live;
  #connecting?: Promise<Live>;
  #closed = false;

  /**
   * @param hostname The host to dial (IPv6 without brackets).
   * @param port The port.
   * @param endpoint `host:port`, for error messages.
   * @param limits Handshake and keepalive bounds.
   */
  constructor(hostname: string, port: number, endpoint: string, limits: H2Limits) {
    this.#hostname = hostname;
    this.#port = port;
    this.#endpoint = endpoint;
    this.#limits = limits;
  }

  /**
   * Opens a stream once the session's handshake is done: HEADERS, and `body`
   * with them when it fits.
   *
   * @param headerBlock The request's HPACK block.
   * @param handler Hears the response.
   * @param body The first DATA, if any.
   * @param end Whether `body` ends the request.
   * @returns The stream, and a promise for `body`'s write.
   * @throws {ConnectError} When the daemon cannot be reached, or the connection was closed.
   */
  async request(
    headerBlock: Uint8Array,
    handler: StreamHandler,
    body?: Uint8Array,
    end?: boolean,
  ): Promise<{ stream: H2Stream; sent: Promise<boolean> }> {
    for (let attempt = 0;; attempt++) {
      const live = await this.#ready();
      while (live.session.atCapacity && !live.session.closed) await live.session.slotFreed();
      try {
        return live.session.request(headerBlock, handler, body, end);
      } catch (err) {
        // The session died or went away between the check and the request: dial again, once.
        if (attempt === 0 && (live.session.closed || live.session.goneAway)) continue;
        throw err;
      }
    }
  }

  /**
   * Closes every session; calls in flight fail, later requests are refused.
   */
  close(): void {
    this.#closed = true;
    const err = this.#closedError();
    for (const live of this.#lives) {
      clearTimeout(live.timer);
      live.session.close(err);
    }
    this.#lives.clear();
    this.#current = undefined;
  }

  /** What a call on a closed connection fails with: a dropped connection. */
  #closedError(): ConnectError {
    return judgedFailure(
      new ConnectError(`the connection to ${this.#endpoint} was closed`, Code.Unavailable),
    );
  }

  async #ready(): Promise<Live> {
    // As a dropped connection: the daemon ended this connection's sessions with it.
    if (this.#closed) throw this.#closedError();
    const live = this.#current;
    if (live && !live.draining && !live.session.closed && !live.session.goneAway) {
      // A connection idle for longer than the ping interval may have died
      // silently: check it with a PING before trusting it with a call.
      if (
        live.session.openStreams > 0 ||
        Date.now() - live.session.lastReadAt <= live.pingIntervalMs
      ) return live;
      if (await this.#verify(live)) return live;
    }
    return await this.#connect();
  }

  #connect(): Promise<Live> {
    this.#connecting ??= (async () => {
      const timeoutMs = this.#limits.connectTimeoutMs;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<"expired">((resolve) => {
        timer = setTimeout(() => resolve("expired"), Math.min(timeoutMs, MAX_TIMER_MS));
      });
      try {
        const dialled = H2Session.connect(this.#hostname, this.#port);
        const session = await Promise.race([dialled, deadline]);
        if (session === "expired") {
          dialled.then((late) => late.close(), () => {}); // a dial that completes after all
          throw judgedFailure(
            new ConnectError("connection establishment timed out", Code.Unavailable),
          );
        }
        if (await Promise.race([session.handshake, deadline]) === "expired") {
          session.close();
          throw judgedFailure(
            new ConnectError(
              `the HTTP/2 handshake with ${this.#endpoint} did not complete within ${timeoutMs} ms`,
              Code.Unavailable,
            ),
          );
        }
        return this.#adopt(session);
      } finally {
        clearTimeout(timer);
        this.#connecting = undefined;
      }
    })();
    return this.#connecting;
  }

  #adopt(session: H2Session): Live {
    if (this.#closed) {
      session.close();
      throw this.#closedError();
    }
    const live: Live = {
      session,
      draining: false,
      pingedAt: 0,
      pingIntervalMs: this.#limits.pingIntervalMs,
    };
    session.onClose = () => {
      clearTimeout(live.timer);
      this.#lives.delete(live);
      if (this.#current === live) this.#current = undefined;
    };
    session.onGoaway = (_code, lastStreamId, data) => {
      live.draining = true;
      if (this.#current === live) this.#current = undefined;
      // Streams above the last stream id were never processed: fail them, marked so.
      for (const stream of [...session.streams()]) {
        if (stream.id <= lastStreamId) continue;
        const handler = stream.handler;
        stream.reset(H2_CANCEL);
        handler.onError(markUnprocessed(judgedFailure(
          new ConnectError(
            `${this.#endpoint} sent GOAWAY before processing the call (last stream ${lastStreamId})`,
            Code.Unavailable,
          ),
        )));
      }
      if (new TextDecoder().decode(data) === "too_many_pings") {
        live.pingIntervalMs *= 2; // gRPC's keepalive rule (A8)
      }
    };
    session.onIdle = () => {
      if (live.draining) session.close();
    };
    session.unrefIfIdle(); // an idle connection never keeps the process alive
    this.#lives.add(live);
    this.#current = live;
    this.#armKeepalive(live, live.pingIntervalMs);
    return live;
  }

  /** One timer per session: PING when a call is open and nothing arrived for an interval. */
  #armKeepalive(live: Live, inMs: number): void {
    if (live.pingIntervalMs > MAX_TIMER_MS) return; // keepalive off
    live.timer = setTimeout(() => {
      if (live.session.closed) return;
      const now = Date.now();
      const quiet = now - live.session.lastReadAt;
      const interval = live.pingIntervalMs;
      if (live.session.openStreams > 0 && quiet >= interval && now - live.pingedAt >= interval) {
        this.#ping(live).then((ok) => {
          if (!ok) {
            live.session.close(
              judgedFailure(new ConnectError("PING timed out", Code.Unavailable)),
              H2_CANCEL,
            );
          }
        });
        this.#armKeepalive(live, interval);
        return;
      }
      this.#armKeepalive(live, Math.max(interval - quiet, 1));
    }, Math.min(inMs, MAX_TIMER_MS));
    Deno.unrefTimer(live.timer as unknown as number);
  }

  /** Sends a PING; resolves whether it was answered within the timeout. */
  #ping(live: Live): Promise<boolean> {
    live.pingedAt = Date.now();
    const timeoutMs = this.#limits.pingTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      live.session.ping().then(() => true, () => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.min(timeoutMs, MAX_TIMER_MS));
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Checks a long-idle session with a PING; a dead one is closed. */
  #verify(live: Live): Promise<boolean> {
    live.verifying ??= this.#ping(live).then((ok) => {
      live.verifying = undefined;
      if (!ok) live.session.close();
      return ok;
    });
    return live.verifying;
  }
}
