/**
 * The real daemon: the daemon core with the llama.cpp engine, on 127.0.0.1,
 * holding `<dataRoot>/modeld.lease` with `meta.backend = "llama"`, so the
 * client, the CLI and the Go client find and use it exactly like modeld
 * v0.36.0.
 *
 * @example
 * ```ts ignore
 * import { serve } from "@contenox/modeldconn/daemon";
 * await using daemon = await serve({ dataRoot: "/home/me/.contenox" });
 * console.log(daemon.endpoint);
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { LlamaEngine } from "./llama/engine.ts";
import { type DaemonServer, startServer } from "./server.ts";

/** modeld's default idle TTL: 5 minutes. */
export const DEFAULT_IDLE_TTL_MS = 5 * 60_000;

/** Decode chunks closer than this (ms) to the previous write go out together: about 3 tokens on 2 cores. */
const DEFAULT_STREAM_FLUSH_MS = 25;

/**
 * Options of {@linkcode serve}.
 *
 * @example
 * ```ts
 * import type { ServeOptions } from "@contenox/modeldconn/daemon";
 * const options: ServeOptions = { dataRoot: "/tmp/root", threads: 2, idleTtlMs: 0 };
 * ```
 */
export interface ServeOptions {
  /** The data root: lease, `models/`, `modeld-blobs/`. Created if missing. */
  dataRoot: string;
  /** Threads for a model whose `NumThreads` is ≤ 0 (default: the machine's cores). */
  threads?: number;
  /** Unload a model idle this long, in ms (default 5 minutes; 0 = never). */
  idleTtlMs?: number;
  /** Lease time to live in ms (default 30 000, renewed every ttl/3). */
  ttlMs?: number;
  /** How long `close()` waits for calls in flight, in ms (default 5000). */
  graceMs?: number;
  /** Called when the lease is lost (another owner took it): the daemon has stopped serving. */
  onLeaseLost?: (err: unknown) => void;
  /**
   * Decode chunks that follow a write by less than this many ms are held and
   * sent together, still one message per token (default 25; 0 = each token at
   * once, as modeld). Each write wakes the client while llama.cpp computes the
   * next token on every core; fewer wake-ups made decoding 5–15% faster on 2 cores.
   */
  streamFlushMs?: number;
}

/**
 * A running daemon (see {@linkcode serve}).
 *
 * @example
 * ```ts
 * import type { Daemon } from "@contenox/modeldconn/daemon";
 * function report(d: Daemon) {
 *   console.log(d.endpoint, d.instanceId, d.slotState());
 * }
 * ```
 */
export type Daemon = DaemonServer;

/**
 * Starts the llama.cpp daemon in this process: loads the engine (prebuilt
 * CPU binary), listens on `127.0.0.1:0`, takes the lease, serves. Stop it with
 * `close()` or `await using`: calls in flight finish (up to `graceMs`),
 * sessions close, the lease file is removed.
 *
 * Permissions: `--allow-read` and `--allow-write` on the data root,
 * `--allow-net=127.0.0.1`, `--allow-ffi` (llama.cpp), plus what node-llama-cpp
 * needs to find its binary (see the README's daemon section).
 *
 * @param options Data root, threads, idle TTL.
 * @returns The running daemon.
 * @throws {LeaseHeldError} When a live daemon already holds the data root.
 *
 * @example
 * ```ts ignore
 * import { serve } from "@contenox/modeldconn/daemon";
 * await using daemon = await serve({ dataRoot: "/home/me/.contenox", threads: 2 });
 * console.log(`modeld-compatible daemon on ${daemon.endpoint}`);
 * ```
 */
export async function serve(options: ServeOptions): Promise<Daemon> {
  await Deno.mkdir(options.dataRoot, { recursive: true, mode: 0o700 });
  const scratchDir = join(options.dataRoot, "modeld-blobs", ".scratch");
  await Deno.mkdir(scratchDir, { recursive: true, mode: 0o700 });
  const engine = await LlamaEngine.create({ threads: options.threads, scratchDir });
  return await startServer({
    engine,
    dataRoot: options.dataRoot,
    backend: "llama",
    version: "v0.36.0",
    ttlMs: options.ttlMs,
    graceMs: options.graceMs,
    idleTtlMs: options.idleTtlMs ?? DEFAULT_IDLE_TTL_MS,
    onLeaseLost: options.onLeaseLost,
    streamFlushMs: options.streamFlushMs ?? DEFAULT_STREAM_FLUSH_MS,
  });
}
