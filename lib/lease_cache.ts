/**
 * {@linkcode LeaseCache}: a client's parsed lease, read again only when the
 * file's stamp ({@linkcode leaseStamp}: one `stat`) changed or the client
 * forgot it after a failed call. Reading and parsing the lease cost 150 to
 * 250 µs of a 500 µs Health call; the stamp costs one `stat`. The lease's
 * expiry is judged by the caller on every call, from the cached record.
 *
 * @example
 * ```ts
 * import { LeaseCache } from "./lease_cache.ts";
 *
 * const leases = new LeaseCache();
 * const root = await Deno.makeTempDir();
 * const { lease } = await leases.read(root); // reads the file (none here)
 * console.log(lease ? lease.endpoint : "no lease");
 * leases.forget(); // after a failed call: the next read reads the file
 * ```
 *
 * @module
 */

import { resolveDataRoot } from "./data_root.ts";
import { type DataRootLease, readDataRootLease } from "./detect.ts";
import { leaseStamp, type ReadLeaseOptions } from "./lease.ts";

/**
 * The last lease read, kept while the file's stamp stays the same.
 *
 * @example
 * ```ts
 * import { LeaseCache } from "./lease_cache.ts";
 * const leases = new LeaseCache();
 * const first = await leases.read(await Deno.makeTempDir(), { timeoutMs: 1_000 });
 * console.log(first.root);
 * ```
 */
export class LeaseCache {
  #cached: { root: string; stamp: string; read: DataRootLease } | undefined;

  /**
   * The lease of `dataRoot`, as {@linkcode readDataRootLease} returns it: from
   * the cache when the file's stamp is the one it had when last read, else
   * read from the file (and kept when it holds a lease).
   *
   * @param dataRoot The data root; `undefined` or "" for the default.
   * @param options Aborts the stat and the read.
   * @returns The data root, its lease (or why the file is not one), and the skipped flags.
   * @throws {PermissionNeededError} When the lease cannot be read for lack of a permission.
   * @throws {AbortedError} When the signal aborted the read.
   * @throws {TimeoutError} When the deadline passed.
   *
   * @example
   * ```ts
   * import { LeaseCache } from "./lease_cache.ts";
   * const { lease } = await new LeaseCache().read(await Deno.makeTempDir());
   * console.assert(lease === undefined);
   * ```
   */
  async read(dataRoot?: string, options: ReadLeaseOptions = {}): Promise<DataRootLease> {
    const root = dataRoot || resolveDataRoot().root;
    // Taken before the read: a file that changes in between gets read again next time.
    const stamp = await leaseStamp(root, options);
    const cached = this.#cached;
    if (cached && stamp !== undefined && cached.root === root && cached.stamp === stamp) {
      return copy(cached.read);
    }
    this.#cached = undefined;
    const read = await readDataRootLease(dataRoot, options);
    if (stamp !== undefined && read.lease && read.root === root) {
      this.#cached = { root, stamp, read: copy(read) };
    }
    return read;
  }

  /**
   * Drops the kept lease: the next {@linkcode LeaseCache.read} reads the file.
   *
   * @example
   * ```ts
   * import { LeaseCache } from "./lease_cache.ts";
   * new LeaseCache().forget();
   * ```
   */
  forget(): void {
    this.#cached = undefined;
  }
}

/** A copy its caller may change (`detect()` appends to `skipped`). */
function copy(read: DataRootLease): DataRootLease {
  return { ...read, skipped: [...read.skipped] };
}
