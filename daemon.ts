/**
 * A modeld-compatible daemon in Deno with a real llama.cpp engine: the same
 * lease, the same `contenox.transport.v1.Compute` wire (v0.36.0, all 18 RPCs),
 * the same fence and error tokens as modeld v0.36.0, so this package's client
 * and CLI (and the Go client) run real models through it.
 *
 * The engine is node-llama-cpp 3.21.1 with its prebuilt linux-x64 CPU binary,
 * loaded only by this module: importing `@contenox/modeldconn` never loads it.
 *
 * @example Serve a data root until Ctrl-C
 * ```ts ignore
 * import { serve } from "@contenox/modeldconn/daemon";
 *
 * await using daemon = await serve({ dataRoot: "/home/me/.contenox" });
 * console.log(`serving on ${daemon.endpoint}`);
 * await new Promise((resolve) => Deno.addSignalListener("SIGINT", () => resolve(undefined)));
 * ```
 *
 * @module
 */

export { type Daemon, DEFAULT_IDLE_TTL_MS, serve, type ServeOptions } from "./lib/daemon/serve.ts";
export type { DaemonServer } from "./lib/daemon/server.ts";
export { syntheticGguf, type SyntheticGgufOptions } from "./lib/daemon/llama/synthetic_gguf.ts";
