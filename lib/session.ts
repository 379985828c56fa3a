/**
 * An open inference session: a handle on the daemon's KV state for one model.
 * Make the stable prefix resident with {@linkcode Session.ensurePrefix}, append
 * the volatile suffix with {@linkcode Session.prefillSuffix}, then stream
 * {@linkcode Session.decode}. Keep the session for the next turn and the
 * daemon reuses the prefix; close it (or `await using`) when done, because a
 * v0.32.4+ daemon has a single model slot and one open handle at a time.
 *
 * @example
 * ```ts ignore
 * await using session = await client.openSession({ name: "qwen", type: "llama" });
 * const ctx = await buildContext([{ role: "system", content: "Be terse." }, { role: "user", content: "2+2?" }]);
 * await session.ensurePrefix(ctx.prefix);
 * await session.prefillSuffix(ctx.suffix);
 * console.log((await session.decode({ maxTokens: 16 }).collect()).text);
 * ```
 *
 * @module
 */

import type {
  ContextReport,
  DecodeChunk,
  DecodeConfig,
  PrefixInput,
  PrefixStatus,
  SessionSnapshot,
  SuffixInput,
  SuffixStatus,
} from "../gen/contenox/transport/v1/compute_pb.ts";
import { DecodeStream } from "./decode_stream.ts";
import {
  ConnectionError,
  InvalidArgumentError,
  ModeldError,
  SessionClosedError,
  SlotGenerationStaleError,
  StaleFenceError,
} from "./errors.ts";
import { type CallOptions, unary } from "./call.ts";
import type { Connection } from "./transport.ts";
import { isConnectionDrop } from "./transport_marks.ts";
import type { WireInit } from "./wire_init.ts";

type SessionWire = typeof import("./session_wire.ts");
let sessionWire: SessionWire | undefined;

/**
 * Loads the generated descriptors sessions use. `openSession` awaits it, so a
 * session it returns decodes without waiting for a module.
 *
 * @returns The loaded module.
 *
 * @example
 * ```ts
 * import { loadSessionWire } from "./session.ts";
 * console.assert((await loadSessionWire()).decodeMethod.name === "Decode");
 * ```
 */
export async function loadSessionWire(): Promise<SessionWire> {
  return sessionWire ??= await import("./session_wire.ts");
}

/** The stable prefix: text, manifest and tool definitions (see `buildContext`). */
export type PrefixInputInit = WireInit<PrefixInput>;
/** The volatile suffix: text and the same manifest as the prefix. */
export type SuffixInputInit = WireInit<SuffixInput>;
/** Sampling knobs for {@linkcode Session.decode}; unset fields take the daemon's defaults. */
export type DecodeConfigInit = WireInit<DecodeConfig>;
/** A snapshot to hand back to {@linkcode Session.restore}. */
export type SnapshotInput = WireInit<SessionSnapshot>;

/**
 * A session handle on one daemon instance.
 *
 * @example
 * ```ts ignore
 * const session = await client.openSession({ name: "m", type: "llama", path: "/models/m.gguf" });
 * try {
 *   console.log((await session.explainContext()).numCtx);
 * } finally {
 *   await session.close();
 * }
 * ```
 */
export class Session implements AsyncDisposable {
  /** The daemon's opaque handle, `<instance>/<seq>` or `<instance>/<generation>/<seq>`. */
  readonly handle: string;
  readonly #conn: Connection;
  #closed = false;

  /**
   * Sessions come from `openSession`; this constructor is for the library.
   *
   * @param conn The connection the session was opened on (it must stay open).
   * @param handle The handle OpenSession returned.
   */
  constructor(conn: Connection, handle: string) {
    this.#conn = conn;
    this.handle = handle;
  }

  /** Whether {@linkcode Session.close} was called (the daemon may have closed it earlier). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The endpoint this session lives on. */
  get endpoint(): string {
    return this.#conn.endpoint;
  }

  /**
   * Makes the resident context equal to the stable prefix, reusing the longest
   * common token prefix of what was resident. Drops any old suffix and output.
   *
   * @param prefix The prefix text, manifest and tools.
   * @param options Signal and timeout.
   * @returns Reused, prefilled and dropped token counts; `reusedTokens > 0` is a warm hit.
   * @throws {ContextOverflowError} When the prefix is longer than the window.
   *
   * @example
   * ```ts ignore
   * const status = await session.ensurePrefix({ text: "You are terse." });
   * console.log(status.reusedTokens, status.prefilledTokens);
   * ```
   */
  async ensurePrefix(prefix: PrefixInputInit, options: CallOptions = {}): Promise<PrefixStatus> {
    this.#assertOpen("ensurePrefix");
    return await unary(
      this.#conn,
      "EnsurePrefix",
      options,
      (o) => this.#conn.rpc.ensurePrefix({ handle: this.handle, prefix }, o),
    );
  }

  /**
   * Appends the volatile suffix (the conversation after the stable prefix).
   *
   * @param suffix The suffix text and the same manifest as the prefix.
   * @param options Signal and timeout.
   * @returns Suffix and resident token counts.
   * @throws {ManifestMismatchError} When the manifest differs from the prefix's.
   *
   * @example
   * ```ts ignore
   * await session.prefillSuffix({ text: "What is 2+2?" });
   * ```
   */
  async prefillSuffix(suffix: SuffixInputInit, options: CallOptions = {}): Promise<SuffixStatus> {
    this.#assertOpen("prefillSuffix");
    return await unary(
      this.#conn,
      "PrefillSuffix",
      options,
      (o) => this.#conn.rpc.prefillSuffix({ handle: this.handle, suffix }, o),
    );
  }

  /**
   * Streams generated output. Leaving the loop early cancels generation on the
   * daemon; see {@linkcode DecodeStream}.
   *
   * @param config Sampling knobs (`maxTokens`, `temperature`, `topP`, `topK`, `seed`, …).
   * @param options Signal and timeout for the whole stream.
   * @returns A single-use async iterable of deltas.
   *
   * @example
   * ```ts ignore
   * for await (const d of session.decode({ maxTokens: 64, temperature: 0 })) {
   *   console.log(d.text);
   * }
   * ```
   */
  decode(config: DecodeConfigInit = {}, options: CallOptions = {}): DecodeStream {
    return new DecodeStream(
      (signal) => {
        this.#assertOpen("decode"); // checked when iterated, so the error surfaces in the loop
        const input = { handle: this.handle, config };
        return sessionWire
          ? this.#conn.serverStream(sessionWire.decodeMethod, input, signal)
          : decodeAfterLoading(this.#conn, input, signal);
      },
      { ...options, endpoint: this.#conn.endpoint },
    );
  }

  /**
   * Reports what the daemon holds for this session. Like Go's
   * `ExplainContext`, it never throws: when the report cannot be had (the
   * daemon dropped the handle after a slot switch or an idle reap, the session
   * was closed, the connection is gone, the call timed out) it returns a
   * report with only `closed: true`.
   *
   * @param options Signal and timeout.
   * @returns The context report; `{ closed: true, … zeros }` on any error.
   *
   * @example
   * ```ts ignore
   * const report = await session.explainContext();
   * console.log(report.residentTokens, report.numCtx, report.closed);
   * ```
   */
  async explainContext(options: CallOptions = {}): Promise<ContextReport> {
    try {
      this.#assertOpen("explainContext");
      return await unary(
        this.#conn,
        "ExplainContext",
        options,
        (o) => this.#conn.rpc.explainContext({ handle: this.handle }, o),
      );
    } catch {
      // Go: `if err != nil { return transport.ContextReport{Closed: true} }`.
      return (await loadSessionWire()).closedContextReport();
    }
  }

  /**
   * Saves the session state on the daemon host (v0.32.4+). The returned
   * metadata names the saved state by `stateId`.
   *
   * @param options Signal and timeout.
   * @returns The snapshot metadata.
   * @throws {DaemonTooOldError} On a v0.32.3 daemon.
   *
   * @example
   * ```ts ignore
   * const snap = await session.snapshot();
   * await session.restore(snap);
   * ```
   */
  async snapshot(options: CallOptions = {}): Promise<SessionSnapshot> {
    this.#assertOpen("snapshot");
    return await unary(
      this.#conn,
      "Snapshot",
      options,
      (o) => this.#conn.rpc.snapshot({ handle: this.handle }, o),
    );
  }

  /**
   * Restores a snapshot into this session (same model and config) (v0.32.4+).
   *
   * @param snapshot A snapshot from {@linkcode Session.snapshot}.
   * @param options Signal and timeout.
   *
   * @example
   * ```ts ignore
   * await session.restore(savedSnapshot);
   * ```
   */
  async restore(snapshot: SnapshotInput, options: CallOptions = {}): Promise<void> {
    this.#assertOpen("restore");
    await unary(
      this.#conn,
      "Restore",
      options,
      (o) => this.#conn.rpc.restore({ handle: this.handle, snapshot }, o),
    );
  }

  /**
   * Closes the handle on the daemon. Idempotent. A session the daemon already
   * dropped (restart, slot switch, connection loss) counts as closed.
   *
   * @param options Signal and timeout.
   *
   * @example
   * ```ts ignore
   * await session.close();
   * ```
   */
  async close(options: CallOptions = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await unary(
        this.#conn,
        "CloseSession",
        options,
        (o) => this.#conn.rpc.closeSession({ handle: this.handle }, o),
      );
    } catch (err) {
      if (!isAlreadyGone(err)) throw err;
    }
  }

  /** Closes the session; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #assertOpen(op: string): void {
    if (this.#closed) {
      throw new InvalidArgumentError(
        `Cannot ${op}: the session was closed; open a new session`,
      );
    }
    if (this.#conn.closed) {
      throw new ConnectionError(
        this.#conn.endpoint,
        `cannot ${op}: the client that opened this session was closed`,
      );
    }
  }
}

/** Decode on a session made without `openSession` (tests), before the descriptors are loaded. */
async function* decodeAfterLoading(
  conn: Connection,
  input: { handle: string; config: DecodeConfigInit },
  signal: AbortSignal,
): AsyncGenerator<DecodeChunk> {
  const { decodeMethod } = await loadSessionWire();
  yield* conn.serverStream(decodeMethod, input, signal);
}

/** Errors meaning the daemon no longer has the session, so closing it is done. */
function isAlreadyGone(err: unknown): boolean {
  return err instanceof SessionClosedError || err instanceof StaleFenceError ||
    err instanceof SlotGenerationStaleError ||
    (err instanceof ModeldError && err.code === "unavailable" && isConnectionDrop(err));
}
