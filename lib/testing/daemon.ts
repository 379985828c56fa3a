/**
 * A fake modeld for tests: the daemon core ({@linkcode startServer}) with the
 * scripted engine, so it serves the Compute service over h2c on loopback with
 * the in-memory reference semantics and owns the data root's lease like the
 * real daemon (acquired with `meta {endpoint, backend}`, renewed every ttl/3,
 * released on stop).
 *
 * @example
 * ```ts ignore
 * import { startTestDaemon } from "@contenox/modeldconn/testing";
 * import { dial } from "../transport.ts";
 *
 * await using daemon = await startTestDaemon({ reply: "Hello there" });
 * await using conn = dial(daemon.endpoint, daemon.instanceId);
 * console.log((await conn.rpc.health({})).backend); // "llama"
 * ```
 *
 * @module
 */

import { DaemonServer, startServer } from "../daemon/server.ts";
import type { DaemonVersion } from "../daemon/sentinels.ts";
import type { Reply } from "./memory_service.ts";
import { ScriptedEngine } from "./scripted_engine.ts";

/**
 * Options for {@linkcode startTestDaemon}.
 *
 * @example
 * ```ts ignore
 * import { startTestDaemon } from "@contenox/modeldconn/testing";
 * await using daemon = await startTestDaemon({
 *   version: "v0.32.3",
 *   backend: "llama",
 *   ttlMs: 5_000,
 *   reply: ({ prompt }) => `You said: ${prompt.suffix}`,
 *   chunkDelayMs: 10,
 * });
 * ```
 */
export interface TestDaemonOptions {
  /** The data root (default: a new temporary directory, removed on stop). Must exist. */
  dataRoot?: string;
  /** The daemon version to imitate (default `v0.36.0`). */
  version?: DaemonVersion;
  /** The backend published in the lease, Health and Status (default `llama`). */
  backend?: string;
  /** The lease time to live in milliseconds (default 30 000); renewed every ttl/3. */
  ttlMs?: number;
  /**
   * The Decode reply: a text (split into word pieces, one chunk per piece) or
   * a function returning a text or a {@linkcode DecodeScript}. `MaxTokens`
   * caps it (≤ 0 = 256). Default: `"x"` per token, exactly `MaxTokens` chunks.
   */
  reply?: Reply;
  /** Delay between Decode chunks in milliseconds, so tests can cancel mid-stream. */
  chunkDelayMs?: number;
  /** The Embed function (v0.36); without it Embed is `unsupported_feature`. */
  embedding?: (text: string) => number[];
  /**
   * Models to install before serving: name → `model.gguf` content (v0.36 store).
   * Open them by name; a model `path` must name a file that exists (the test
   * daemon answers `model_load_failed` otherwise, as the real daemon does).
   */
  models?: Record<string, string | Uint8Array>;
  /** How long {@linkcode TestDaemon.stop} waits for calls in flight (default 5000 ms). */
  graceMs?: number;
  /** Unload a model idle this long, in ms (default 0: never, unlike modeld's 5 minutes). */
  idleTtlMs?: number;
  /**
   * Hold Decode chunks written less than this many ms after the previous
   * write and send them together, as `serve()` does (default 0: each at once).
   */
  streamFlushMs?: number;
}

/**
 * A running test daemon (the daemon core with the scripted engine). Stop it
 * with `stop()` or `await using`.
 *
 * @example
 * ```ts ignore
 * import { startTestDaemon } from "@contenox/modeldconn/testing";
 * const daemon = await startTestDaemon({ version: "v0.32.3" });
 * console.log(daemon.endpoint, daemon.instanceId, daemon.requests.length);
 * await daemon.stop();
 * ```
 */
export const TestDaemon: typeof DaemonServer = DaemonServer;
/** A running test daemon. */
export type TestDaemon = DaemonServer;

/**
 * Starts a test daemon: listens on `127.0.0.1:0`, takes the lease on the data
 * root (meta `endpoint`, `backend`), and serves with scripted replies. Needs
 * `--allow-net=127.0.0.1` and read/write access to the data root (and to the
 * system temp directory when no data root is given); DiskStats also needs
 * `--allow-sys=statfs`.
 *
 * @param options Version, backend, lease ttl, scripted replies and models.
 * @returns The running daemon.
 * @throws {LeaseHeldError} When a live lease already holds the data root.
 *
 * @example
 * ```ts ignore
 * import { startTestDaemon } from "@contenox/modeldconn/testing";
 * await using daemon = await startTestDaemon({ version: "v0.36.0", reply: "Hi!" });
 * console.log(daemon.endpoint);
 * ```
 */
export function startTestDaemon(options: TestDaemonOptions = {}): Promise<TestDaemon> {
  const version = options.version ?? "v0.36.0";
  const engine = new ScriptedEngine({
    version,
    reply: options.reply,
    chunkDelayMs: options.chunkDelayMs,
    embedding: options.embedding,
  });
  return startServer({ ...options, version, engine, recordRequests: true });
}
