/**
 * The contenox data root: the directory whose `modeld.lease` names the running
 * daemon. Resolved like the Go runtime does: an override set with
 * {@linkcode setDataRoot}, else `$CONTENOX_DATA_ROOT` (when non-empty), else
 * `<home>/.contenox` (`$HOME`, or `%USERPROFILE%` on Windows), else the
 * relative path `.contenox`.
 *
 * Environment variables are only read when the script was granted access to
 * them (`--allow-env=CONTENOX_DATA_ROOT,HOME`); a variable without a grant is
 * skipped, never prompted for. {@linkcode resolveDataRoot} reports the flags
 * that would have let it look further.
 *
 * Note that the daemon itself ignores `CONTENOX_DATA_ROOT`: start it with
 * `modeld serve --data-root DIR` and point the client at the same `DIR`.
 *
 * @example Point the client at a test daemon's data root
 * ```ts
 * import { dataRoot, setDataRoot } from "@contenox/modeldconn";
 *
 * setDataRoot("/tmp/modeld-test");
 * console.assert(dataRoot() === "/tmp/modeld-test");
 * setDataRoot(""); // back to the default
 * ```
 *
 * @module
 */

import { join } from "./path.ts";

/** Where {@linkcode resolveDataRoot} found the data root. */
export type DataRootSource = "override" | "env" | "home" | "relative";

/** The resolved data root and how it was found. */
export interface DataRootResolution {
  /** The data root directory (may be the relative `.contenox`). */
  root: string;
  /** Which rule produced {@linkcode DataRootResolution.root}. */
  source: DataRootSource;
  /**
   * Flags (e.g. `--allow-env=CONTENOX_DATA_ROOT`) whose absence made the
   * resolution skip a source. Empty when every source could be checked.
   */
  skipped: string[];
}

let override = "";
const listeners = new Set<() => void>();

/**
 * Overrides the data root for every later call in this process. An empty
 * string restores the default resolution. Also notifies the listeners added
 * with {@linkcode onDataRootChange} (the serveable-backend grace cache clears
 * itself this way: a backend seen under one root must not be advertised under
 * another).
 *
 * @param root The data root directory, or `""` for the default.
 *
 * @example
 * ```ts
 * import { dataRoot, setDataRoot } from "@contenox/modeldconn";
 * setDataRoot("/srv/contenox");
 * console.assert(dataRoot() === "/srv/contenox");
 * setDataRoot("");
 * ```
 */
export function setDataRoot(root: string): void {
  override = root;
  for (const listener of listeners) listener();
}

/**
 * Registers a callback that runs on every {@linkcode setDataRoot} call.
 *
 * @param listener Called with no arguments after the override changed.
 * @returns A function that removes the listener.
 *
 * @example
 * ```ts
 * import { onDataRootChange, setDataRoot } from "./data_root.ts";
 * let changes = 0;
 * const off = onDataRootChange(() => changes++);
 * setDataRoot("");
 * off();
 * console.assert(changes === 1);
 * ```
 */
export function onDataRootChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Resolves the data root and reports how: override, `$CONTENOX_DATA_ROOT`,
 * home directory, or the relative fallback. Never throws and never prompts for
 * a permission.
 *
 * @returns The root, its source, and the flags that would have let it check more.
 *
 * @example
 * ```ts
 * import { resolveDataRoot } from "./data_root.ts";
 * const { root, skipped } = resolveDataRoot();
 * if (skipped.length > 0) console.log(`using ${root}; grant ${skipped.join(" ")} to check more`);
 * ```
 */
export function resolveDataRoot(): DataRootResolution {
  if (override !== "") return { root: override, source: "override", skipped: [] };
  const skipped: string[] = [];
  const fromEnv = readEnv("CONTENOX_DATA_ROOT", skipped);
  if (fromEnv) return { root: fromEnv, source: "env", skipped };
  const home = readEnv(Deno.build.os === "windows" ? "USERPROFILE" : "HOME", skipped);
  if (home) return { root: join(home, ".contenox"), source: "home", skipped };
  return { root: ".contenox", source: "relative", skipped };
}

/**
 * The data root in effect: the {@linkcode setDataRoot} override, else
 * `$CONTENOX_DATA_ROOT`, else `<home>/.contenox`, else `.contenox`.
 *
 * @returns The data root directory.
 *
 * @example
 * ```ts
 * import { dataRoot } from "@contenox/modeldconn";
 * console.log(`lease file: ${dataRoot()}/modeld.lease`);
 * ```
 */
export function dataRoot(): string {
  return resolveDataRoot().root;
}

/**
 * Reads an environment variable only when access to it is already granted.
 * Without a grant the variable counts as unset and `--allow-env=<name>` is
 * added to `skipped`. Never prompts.
 *
 * @param name The variable name.
 * @param skipped Collects the flag when the variable could not be read.
 * @returns The value, or `undefined` when unset or not readable.
 *
 * @example
 * ```ts
 * import { readEnv } from "./data_root.ts";
 * const skipped: string[] = [];
 * const path = readEnv("PATH", skipped);
 * console.log(path ?? `not readable: ${skipped.join(" ")}`);
 * ```
 */
export function readEnv(name: string, skipped?: string[]): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    skipped?.push(`--allow-env=${name}`);
    return undefined;
  }
  return Deno.env.get(name);
}
