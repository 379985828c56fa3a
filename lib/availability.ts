/**
 * Cheap, offline checks on the daemon of the current data root
 * ({@linkcode dataRoot}): is a live owner there ({@linkcode available}), which
 * backend it serves ({@linkcode backend}), the backend smoothed over restart
 * gaps ({@linkcode serveableBackend}), and where warm-session snapshots go
 * ({@linkcode snapshotDir}). They read the lease only, never the network.
 *
 * They need `--allow-read` on the data root and throw
 * {@linkcode PermissionNeededError} without it: a missing grant is a setup bug
 * to fix, not a daemon that is down.
 *
 * @example Advertise local models only when modeld can serve them
 * ```ts
 * import { serveableBackend } from "@contenox/modeldconn";
 * import { setDataRoot } from "@contenox/modeldconn";
 *
 * setDataRoot(await Deno.makeTempDir()); // where `modeld serve --data-root` runs
 * const backend = await serveableBackend();
 * if (backend === "llama") console.log("local llama models are available");
 * ```
 *
 * @module
 */

import { join } from "./path.ts";
import { dataRoot, onDataRootChange, readEnv } from "./data_root.ts";
import { readDataRootLease } from "./detect.ts";
import { isLive } from "./lease.ts";

/**
 * Whether a modeld owner holds a live lease on the current data root. Same
 * answer as `detect().state === "running"`, without the binary search.
 *
 * @returns True when the lease is live.
 * @throws {PermissionNeededError} Without `--allow-read` on the data root.
 *
 * @example
 * ```ts
 * import { available } from "@contenox/modeldconn";
 * import { setDataRoot } from "@contenox/modeldconn";
 * setDataRoot(await Deno.makeTempDir());
 * if (!(await available())) console.log("start modeld first");
 * ```
 */
export async function available(): Promise<boolean> {
  const { lease } = await readDataRootLease();
  return lease !== undefined && isLive(lease);
}

/**
 * The backend the running owner serves (`llama`, `openvino` or `none`), read
 * from the lease; "" when no live lease is held.
 *
 * @returns The lease's `meta.backend`, or "".
 * @throws {PermissionNeededError} Without `--allow-read` on the data root.
 *
 * @example
 * ```ts
 * import { backend } from "@contenox/modeldconn";
 * import { setDataRoot } from "@contenox/modeldconn";
 * setDataRoot(await Deno.makeTempDir());
 * console.log((await backend()) || "modeld is not running");
 * ```
 */
export async function backend(): Promise<string> {
  const { lease } = await readDataRootLease();
  return lease !== undefined && isLive(lease) ? lease.backend : "";
}

/**
 * How long (ms) a backend stays advertised after the lease stops reading live.
 *
 * @example
 * ```ts
 * import { SERVEABLE_GRACE_MS } from "./availability.ts";
 * console.assert(SERVEABLE_GRACE_MS === 60_000);
 * ```
 */
export const SERVEABLE_GRACE_MS = 60_000;

let cachedBackend = "";
let cachedAt = 0;

/**
 * Clears the grace cache; {@linkcode setDataRoot} does it too.
 *
 * @example
 * ```ts
 * import { resetServeableCache, serveableFrom } from "./availability.ts";
 * serveableFrom("llama", new Date());
 * resetServeableCache();
 * console.assert(serveableFrom("", new Date()) === "");
 * ```
 */
export function resetServeableCache(): void {
  cachedBackend = "";
  cachedAt = 0;
}

onDataRootChange(resetServeableCache);

/**
 * The pure core of {@linkcode serveableBackend}: given the live backend ("" for
 * none) observed at `now`, returns the backend to advertise. A live backend is
 * cached and returned; during a gap the cached one is returned for up to 60 s
 * (inclusive) after its last observation; later the cache is cleared.
 *
 * @param live The backend read from a live lease, or "".
 * @param now When it was read.
 * @returns The backend to advertise, or "".
 *
 * @example
 * ```ts
 * import { resetServeableCache, serveableFrom } from "./availability.ts";
 * const t0 = new Date("2026-06-21T18:00:00Z");
 * serveableFrom("llama", t0);
 * console.assert(serveableFrom("", new Date(t0.getTime() + 59_000)) === "llama");
 * console.assert(serveableFrom("", new Date(t0.getTime() + 61_000)) === "");
 * resetServeableCache();
 * ```
 */
export function serveableFrom(live: string, now: Date): string {
  if (live !== "") {
    cachedBackend = live;
    cachedAt = now.getTime();
    return live;
  }
  if (cachedBackend !== "" && now.getTime() - cachedAt <= SERVEABLE_GRACE_MS) return cachedBackend;
  cachedBackend = "";
  return "";
}

/**
 * The backend modeld can serve, smoothed over short lease gaps (a daemon
 * restart) so capability advertisement does not flap: the live backend while
 * the lease is live, else the last one seen within 60 s, else "". Live paths
 * should use {@linkcode backend} to fail honestly.
 *
 * @returns The backend to advertise, or "".
 * @throws {PermissionNeededError} Without `--allow-read` on the data root.
 *
 * @example
 * ```ts
 * import { serveableBackend } from "@contenox/modeldconn";
 * import { setDataRoot } from "@contenox/modeldconn";
 * setDataRoot(await Deno.makeTempDir());
 * console.log(`advertise models for: ${(await serveableBackend()) || "nothing"}`);
 * ```
 */
export async function serveableBackend(): Promise<string> {
  return serveableFrom(await backend(), new Date());
}

/**
 * The directory where warm-session snapshots of `backendName` persist:
 * `$CONTENOX_WARM_SNAPSHOT_DIR/<backend>` when that is set, else
 * `<dataRoot>/modeld-snapshots/<backend>`; "" (snapshots off) when
 * `$CONTENOX_WARM_SNAPSHOT_DISABLE` is non-empty. Variables without an
 * `--allow-env` grant count as unset.
 *
 * @param backendName The backend, e.g. `llama`.
 * @returns The directory, or "" when snapshots are disabled.
 *
 * @example
 * ```ts
 * import { snapshotDir } from "@contenox/modeldconn";
 * console.log(snapshotDir("llama") || "snapshots disabled");
 * ```
 */
export function snapshotDir(backendName: string): string {
  if (readEnv("CONTENOX_WARM_SNAPSHOT_DISABLE")) return "";
  const root = readEnv("CONTENOX_WARM_SNAPSHOT_DIR") || join(dataRoot(), "modeld-snapshots");
  return join(root, backendName);
}
