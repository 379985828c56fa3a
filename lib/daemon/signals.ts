/**
 * Stop signals for a process that runs the llama.cpp daemon. node-llama-cpp
 * loads `signal-exit`, which re-raises SIGINT and SIGTERM (so the process dies
 * before the lease is released) unless it sees a Node-style listener of the
 * process's own: `Deno.addSignalListener` is invisible to it. Listen here.
 *
 * @example
 * ```ts ignore
 * import { onStopSignal } from "./signals.ts";
 * const stopped = new Promise<void>((resolve) => onStopSignal(resolve));
 * ```
 *
 * @module
 */

import process from "node:process";

/**
 * Calls `handler` on SIGINT or SIGTERM (each time) until unsubscribed.
 *
 * @param handler What to do: typically close the daemon.
 * @returns Unsubscribes.
 *
 * @example
 * ```ts ignore
 * import { onStopSignal, serve } from "@contenox/modeldconn/daemon";
 * async function run(dataRoot: string) {
 *   await using daemon = await serve({ dataRoot });
 *   await new Promise<void>((resolve) => onStopSignal(resolve));
 * }
 * ```
 */
export function onStopSignal(handler: () => void): () => void {
  const listener = () => handler();
  process.on("SIGINT", listener);
  process.on("SIGTERM", listener);
  return () => {
    process.off("SIGINT", listener);
    process.off("SIGTERM", listener);
  };
}
