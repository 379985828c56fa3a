/**
 * Offline detection of the modeld daemon: reads the lease and locates the
 * binary, without touching the network (the Go runtime's `Detect`). The
 * verdict is one of `running`, `stale`, `not_running` or `not_installed`;
 * {@linkcode errorForState} turns a failed verdict into the typed error.
 *
 * A live lease means running, wherever the binary is. A health probe (which
 * can downgrade running to unreachable) lives with the transport.
 *
 * @example
 * ```ts
 * import { detect, errorForState } from "./detect.ts";
 *
 * const result = await detect({ dataRoot: await Deno.makeTempDir() });
 * if (result.state === "running") console.log(`modeld at ${result.endpoint}`);
 * else console.log(errorForState(result)?.message);
 * ```
 *
 * @module
 */

import { resolveDataRoot } from "./data_root.ts";
import {
  DaemonNotInstalledError,
  DaemonNotRunningError,
  DaemonStaleError,
  type DaemonUnavailableError,
  LeaseUnreadableError,
  ModeldError,
  PermissionNeededError,
} from "./errors.ts";
import { isLive, type LeaseRecord, readLease, type ReadLeaseOptions } from "./lease.ts";
import { type BinarySource, locateModeld } from "./locate.ts";

/** The states {@linkcode detect} can report (unreachable needs a health probe). */
export type DetectState = "not_installed" | "not_running" | "stale" | "running";

/** What {@linkcode detect} found. */
export interface DetectResult {
  /** The verdict. */
  state: DetectState;
  /** The data root whose lease was read. */
  dataRoot: string;
  /** The parsed lease, live or expired, when one could be read. */
  lease?: LeaseRecord;
  /**
   * The lease file that is there but is not a lease (not a regular file, too
   * large, corrupt). Like Go, such a file counts as no lease for the verdict;
   * the error of {@linkcode errorForState} says so and names the path.
   */
  unreadableLease?: LeaseUnreadableError;
  /** The lease's `meta.endpoint` when running, else "". */
  endpoint: string;
  /** The lease's instance id when running or stale, else "". */
  instanceId: string;
  /** The lease's `meta.backend` when running, else "". */
  backend: string;
  /** The modeld binary, when located. */
  binary?: string;
  /** How the binary was found. */
  binarySource?: BinarySource;
  /**
   * Permission flags whose absence skipped part of the search (data root
   * variables, `CONTENOX_MODELD_BIN`, `PATH`, PATH directories, a managed
   * launcher's version check). Empty when the search was complete.
   */
  skipped: string[];
}

/** Options for {@linkcode detect}. */
export interface DetectOptions {
  /** The data root; defaults to {@linkcode resolveDataRoot}. */
  dataRoot?: string;
  /** The time to judge the lease at; defaults to now. */
  now?: Date;
  /** Aborts the lease read and the binary's version check. */
  signal?: AbortSignal;
  /** A deadline for the lease read in milliseconds. */
  timeoutMs?: number;
  /**
   * A lease read already made for this call; when given, the lease is not read again.
   *
   * @ignore
   */
  read?: DataRootLease;
}

/**
 * Detects the daemon's state from the lease and the binary's location:
 *
 * 1. a live lease → `running` (binary or not);
 * 2. else no binary found → `not_installed`;
 * 3. else an expired lease → `stale`;
 * 4. else → `not_running`.
 *
 * A corrupt lease counts as none. When missing permissions cut the binary
 * search short, the absence of a binary proves nothing, so step 2 is skipped:
 * the result is `stale` or `not_running` (whose errors tell how to start
 * modeld) and {@linkcode DetectResult.skipped} names the flags. Reading the
 * lease itself needs `--allow-read` on the data root.
 *
 * @param options The data root, clock and abort signal.
 * @returns The verdict and what it was based on.
 * @throws {PermissionNeededError} When the lease cannot be read for lack of `--allow-read`.
 *
 * @example
 * ```ts
 * import { detect } from "@contenox/modeldconn";
 * const { state, skipped } = await detect({ dataRoot: await Deno.makeTempDir() });
 * console.log(state, skipped.length ? `(grant ${skipped.join(" ")} for a full check)` : "");
 * ```
 */
export async function detect(options: DetectOptions = {}): Promise<DetectResult> {
  const { root, lease, unreadableLease, skipped } = options.read ??
    await readDataRootLease(options.dataRoot, options);
  const now = options.now ?? new Date();
  const live = lease !== undefined && isLive(lease, now);
  const located = await locateModeld(root, { signal: options.signal });
  skipped.push(...located.skipped);

  const result: DetectResult = {
    state: "not_running",
    dataRoot: root,
    endpoint: "",
    instanceId: "",
    backend: "",
    skipped,
  };
  if (lease) result.lease = lease;
  if (unreadableLease) result.unreadableLease = unreadableLease;
  if (located.path) {
    result.binary = located.path;
    result.binarySource = located.source;
  }

  // A binary we were not allowed to look for is not proven absent: with an
  // incomplete search, fall through to stale/not_running instead of
  // not_installed. Their errors say how to start modeld, which is the right
  // advice when it is installed; `skipped` says what to grant to know better.
  const searchIncomplete = located.skipped.length > 0;
  if (live) {
    result.state = "running";
    result.endpoint = lease.endpoint;
    result.instanceId = lease.instanceId;
    result.backend = lease.backend;
  } else if (!located.path && !searchIncomplete) {
    result.state = "not_installed";
  } else if (lease) {
    result.state = "stale";
    result.instanceId = lease.instanceId;
  } else {
    result.state = "not_running";
  }
  return result;
}

/** What {@linkcode readDataRootLease} found. */
export interface DataRootLease {
  /** The data root whose lease was read. */
  root: string;
  /** The lease, when one could be parsed. */
  lease?: LeaseRecord;
  /** The lease file that is there but could not be read as a lease. */
  unreadableLease?: LeaseUnreadableError;
  /** Flags whose absence skipped a data root source (see {@linkcode resolveDataRoot}). */
  skipped: string[];
}

/**
 * Reads the lease of `dataRoot`, or of the resolved default data root, once.
 * A lease file that is there but is not a lease is returned as
 * `unreadableLease`, not thrown: it names no owner. When the default had to
 * skip `$CONTENOX_DATA_ROOT` or the home directory for lack of `--allow-env`
 * and the fallback cannot be read, the error names the `--allow-env` grant (the
 * real fix) rather than a read grant on the fallback.
 *
 * @param dataRoot The data root; `undefined` or "" for the default.
 * @param options Aborts the read (an `AbortSignal`, or a signal and a deadline).
 * @returns The data root, its lease (or why the file is not one), and the skipped flags.
 * @throws {PermissionNeededError} When the lease cannot be read for lack of a permission.
 * @throws {AbortedError} When the signal aborted the read.
 * @throws {TimeoutError} When the deadline passed.
 *
 * @example
 * ```ts
 * import { readDataRootLease } from "./detect.ts";
 * const { root, lease } = await readDataRootLease(await Deno.makeTempDir(), { timeoutMs: 1000 });
 * console.log(lease ? `lease in ${root}` : `no lease in ${root}`);
 * ```
 */
export async function readDataRootLease(
  dataRoot?: string,
  options?: AbortSignal | ReadLeaseOptions,
): Promise<DataRootLease> {
  const readOptions: ReadLeaseOptions = options instanceof AbortSignal
    ? { signal: options }
    : { signal: options?.signal, timeoutMs: options?.timeoutMs };
  if (dataRoot) {
    return { root: dataRoot, ...await readOrExplain(dataRoot, readOptions), skipped: [] };
  }
  const resolved = resolveDataRoot();
  try {
    const { root, skipped } = resolved;
    return { root, ...await readOrExplain(root, readOptions), skipped };
  } catch (err) {
    if (!(err instanceof PermissionNeededError) || resolved.skipped.length === 0) throw err;
    const vars = resolved.skipped.map((flag) => flag.slice("--allow-env=".length));
    // No cause: the failed read of the relative fallback (".contenox") is not the fix.
    const missing = new PermissionNeededError(
      "--allow-env",
      vars.join(","),
      "locate the modeld data root",
    );
    missing.message += "; or pass dataRoot (new ModeldClient({ dataRoot }), setDataRoot(), " +
      "the CLI's --data-root)";
    throw missing;
  }
}

async function readOrExplain(
  root: string,
  options: ReadLeaseOptions,
): Promise<{ lease?: LeaseRecord; unreadableLease?: LeaseUnreadableError }> {
  try {
    const lease = await readLease(root, options);
    return lease ? { lease } : {};
  } catch (err) {
    if (err instanceof LeaseUnreadableError) return { unreadableLease: err };
    throw err;
  }
}

/**
 * The typed error for a failed verdict, or `undefined` when running. When the
 * binary search was incomplete, the error's `cause` names the flags to grant.
 *
 * @param result A {@linkcode detect} result.
 * @returns A {@linkcode DaemonNotInstalledError}, {@linkcode DaemonNotRunningError}
 *   or {@linkcode DaemonStaleError}; `undefined` for `running`.
 *
 * @example
 * ```ts
 * import { detect, errorForState } from "./detect.ts";
 * const err = errorForState(await detect({ dataRoot: await Deno.makeTempDir() }));
 * if (err) console.log(err.message);
 * ```
 */
export function errorForState(result: DetectResult): DaemonUnavailableError | undefined {
  const cause = result.skipped.length === 0 ? undefined : new ModeldError(
    "permission_needed",
    `Cannot fully search for modeld: Deno permissions missing (run with ${
      result.skipped.join(" ")
    })`,
  );
  const options = {
    ...(cause ? { cause } : {}),
    ...(result.unreadableLease ? { unreadableLease: result.unreadableLease } : {}),
  };
  switch (result.state) {
    case "running":
      return undefined;
    case "not_installed":
      return new DaemonNotInstalledError(result.dataRoot, options);
    case "stale":
      return new DaemonStaleError(result.dataRoot, result.instanceId, options);
    case "not_running":
      return new DaemonNotRunningError(result.dataRoot, options);
  }
}
