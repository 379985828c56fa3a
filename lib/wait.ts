/**
 * {@linkcode waitForDaemon}: for scripts that start modeld and must wait until
 * it holds its lease and answers Health.
 *
 * @example
 * ```ts ignore
 * import { waitForDaemon } from "@contenox/modeldconn";
 * const daemon = new Deno.Command("modeld", { args: ["serve", "--data-root", "/tmp/root"] }).spawn();
 * await waitForDaemon({ dataRoot: "/tmp/root", timeoutMs: 10_000 });
 * ```
 *
 * @module
 */

import { AbortedError, DaemonWaitTimeoutError, PermissionNeededError } from "./errors.ts";
import { probe, type ProbeResult } from "./probe.ts";

/**
 * Options of {@linkcode waitForDaemon}.
 *
 * @example
 * ```ts
 * import type { WaitForDaemonOptions } from "@contenox/modeldconn";
 * const options: WaitForDaemonOptions = { dataRoot: "/tmp/root", timeoutMs: 10_000 };
 * ```
 */
export interface WaitForDaemonOptions {
  /** The data root to watch; default `setDataRoot()` / `$CONTENOX_DATA_ROOT` / `~/.contenox`. */
  dataRoot?: string;
  /** Give up after this many milliseconds (default 30 000). */
  timeoutMs?: number;
  /** Stops waiting (`AbortedError`). */
  signal?: AbortSignal;
  /** Time between probes in milliseconds (default 100). */
  intervalMs?: number;
}

/**
 * Waits until the daemon of a data root is running and answers Health ready
 * (probe state `running`).
 *
 * @param options Data root, deadline, signal and probe interval.
 * @returns The successful probe (endpoint, instance, backend, Health).
 * @throws {DaemonWaitTimeoutError} When the deadline passes first (it names the last state).
 * @throws {AbortedError} When the signal aborts.
 * @throws {PermissionNeededError} When a permission is missing (waiting would not help).
 *
 * @example
 * ```ts ignore
 * import { waitForDaemon } from "@contenox/modeldconn";
 * const ready = await waitForDaemon({ dataRoot: "/tmp/root", timeoutMs: 5_000 });
 * console.log(ready.endpoint, ready.instanceId);
 * ```
 */
export async function waitForDaemon(options: WaitForDaemonOptions = {}): Promise<ProbeResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const interval = options.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let last: ProbeResult | undefined;
  while (true) {
    if (options.signal?.aborted) {
      throw new AbortedError("waitForDaemon", { cause: options.signal.reason });
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      last = await probe({
        dataRoot: options.dataRoot,
        signal: options.signal,
        timeoutMs: Math.max(1, Math.min(left, 2_000)),
      });
    } catch (err) {
      if (err instanceof PermissionNeededError) throw err;
      if (options.signal?.aborted) {
        throw new AbortedError("waitForDaemon", { cause: options.signal.reason });
      }
      throw err;
    }
    if (last.state === "running") return last;
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())), options.signal);
  }
  throw new DaemonWaitTimeoutError(
    timeoutMs,
    last?.state ?? "unknown",
    last?.dataRoot ?? options.dataRoot ?? "",
    { cause: last?.error },
  );
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
