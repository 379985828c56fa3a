/**
 * {@linkcode ModeldClient}: the local daemon, found through its lease, plus
 * remote nodes by address. The client keeps one HTTP/2 connection per daemon
 * instance and re-dials when the lease names a new instance (a restart or a
 * takeover). Close it with `close()` or `await using`.
 *
 * @example
 * ```ts ignore
 * import { ModeldClient } from "@contenox/modeldconn";
 *
 * await using client = new ModeldClient();
 * console.log(await client.health());
 * ```
 *
 * @module
 */

import { type CallOptions, unary } from "./call.ts";
import { dataRoot as defaultDataRoot } from "./data_root.ts";
import { warnIfCrashingDeno } from "./deno_version.ts";
import { detect, errorForState } from "./detect.ts";
import { isLive } from "./lease.ts";
import { LeaseCache } from "./lease_cache.ts";
import {
  AbortedError,
  DaemonNotRunningError,
  DaemonUnreachableError,
  InvalidArgumentError,
  InvalidEndpointError,
  ModeldError,
  TimeoutError,
} from "./errors.ts";
import { ModeldNode } from "./node.ts";
import { healthProblem } from "./probe.ts";
import { dial } from "./dial.ts";
import type { TransportLimits } from "./limits.ts";
import type { Connection } from "./transport.ts";

/** Options of {@linkcode ModeldClient}. */
export interface ClientOptions {
  /** The data root whose lease names the daemon; default `setDataRoot()` / `$CONTENOX_DATA_ROOT` / `~/.contenox`. */
  dataRoot?: string;
  /** Handshake bound, default deadlines, keepalive and size limits of every connection. */
  limits?: TransportLimits;
}

/**
 * A remote modeld node, by address (contenox v0.34.0+'s remote endpoints).
 *
 * @example
 * ```ts ignore
 * const node = await client.endpoint("gpu-box", "10.0.0.7:40517");
 * console.log(node.instanceId, node.backend, await node.listModels());
 * ```
 */
export interface ModeldTarget {
  /** A name for the node, the cache key. */
  backendId: string;
  /** `host:port`; "" means the local daemon behind the lease. */
  endpoint: string;
}

/**
 * A daemon reached by address; every RPC of {@linkcode ModeldNode}.
 *
 * @example
 * ```ts ignore
 * const node = await client.endpoint("b", "127.0.0.1:40517");
 * console.log(node.addr, node.instanceId, node.ready);
 * ```
 */
export class RemoteNode extends ModeldNode {
  /** The cache key given to {@linkcode ModeldClient.endpoint}. */
  readonly backendId: string;
  /** The node's `host:port`. */
  readonly addr: string;
  /** The instance id the node reported when dialled; every call is fenced with it. */
  readonly instanceId: string;
  /** The backend the node reported. */
  readonly backend: string;
  /** Whether the node reported ready. */
  readonly ready: boolean;
  readonly #conn: Connection;

  /**
   * Remote nodes come from {@linkcode ModeldClient.endpoint}.
   *
   * @param backendId The cache key.
   * @param conn The fenced connection.
   * @param backend The backend the node reported.
   */
  constructor(backendId: string, conn: Connection, backend: string) {
    super();
    this.backendId = backendId;
    this.addr = conn.endpoint;
    this.instanceId = conn.instanceId;
    this.backend = backend;
    this.ready = true;
    this.#conn = conn;
  }

  /**
   * The node's fixed connection.
   *
   * @returns The connection.
   *
   * @ignore The library's own plumbing.
   */
  protected connection(): Promise<Connection> {
    return Promise.resolve(this.#conn);
  }

  /**
   * The type a model defaults to on this node.
   *
   * @returns The node's backend, when it is a model type, else `"llama"`.
   */
  protected defaultModelType(): string {
    return modelTypeFor(this.backend);
  }

  /** Closes the node's connection (its sessions end). */
  close(): void {
    this.#conn.close();
  }
}

/**
 * The client of the local daemon (through the lease) and of remote nodes.
 *
 * @example
 * ```ts ignore
 * await using client = new ModeldClient({ dataRoot: "/tmp/contenox" });
 * await using session = await client.openSession({ name: "qwen", type: "llama" });
 * ```
 */
export class ModeldClient extends ModeldNode implements AsyncDisposable, Disposable {
  readonly #dataRoot: string | undefined;
  #local:
    | { key: string; conn: Promise<Connection>; backend: string; check: AbortController }
    | undefined;
  readonly #limits: TransportLimits;
  readonly #remotes = new Map<string, RemoteNode>();
  readonly #leases = new LeaseCache();
  #closed = false;

  /**
   * Creates a client. Nothing is read or dialled until the first call.
   *
   * @param options The data root.
   */
  constructor(options: ClientOptions = {}) {
    super();
    this.#dataRoot = options.dataRoot;
    this.#limits = options.limits ?? {};
  }

  /** The data root this client reads the lease from (resolved now). */
  get dataRoot(): string {
    return this.#dataRoot ?? defaultDataRoot();
  }

  /**
   * The local connection: reads the lease (again only when the file changed
   * or a call failed), reuses the connection when the same instance holds it,
   * else dials the new one and health-checks it.
   *
   * @param options Signal and timeout for the health check.
   * @returns The connection.
   *
   * @ignore The library's own plumbing.
   */
  protected async connection(options: CallOptions): Promise<Connection> {
    if (this.#closed) {
      throw new InvalidArgumentError(
        "Cannot call modeld: this client was closed; create a new one",
      );
    }
    // The hot path needs only a live lease; the full detect() (which also
    // searches for the modeld binary) runs only to explain a failure.
    // Pass the option as given: an unset root is resolved inside, where a
    // missing --allow-env is reported as such rather than as a read of ".contenox".
    // Liveness is judged now, also for a lease kept from an earlier call.
    const read = await this.#leases.read(this.#dataRoot, options);
    let { lease, root } = read;
    if (!lease || !isLive(lease)) {
      // Explain with the same read: detect() does not read the lease again.
      const found = await detect({ dataRoot: this.#dataRoot, signal: options.signal, read });
      if (found.state !== "running" || !found.lease) {
        throw errorForState(found) ?? new DaemonNotRunningError(found.dataRoot);
      }
      lease = found.lease; // became live in between
      root = found.dataRoot;
    }
    const key = `${lease.endpoint}|${lease.instanceId}`;
    if (this.#local?.key !== key) {
      warnIfCrashingDeno();
      this.#dropLocal();
      // The check is shared by every caller, so it runs on its own bound (the
      // Health default), never on the signal or timeout of whoever came first.
      const check = new AbortController();
      const conn = this.#verified(root, lease.endpoint, lease.instanceId, {
        signal: check.signal,
      });
      this.#local = { key, conn, backend: lease.backend, check };
      conn.catch(() => {
        if (this.#local?.conn === conn) this.#local = undefined;
        this.#leases.forget();
      });
    }
    return await withCallBounds(this.#local.conn, options);
  }

  /**
   * Forgets the lease after a failure that says the daemon may have gone or
   * been replaced (a lost connection, a fence the daemon refused), even when
   * the lease file looks unchanged.
   *
   * @param err The typed error of the failed call.
   *
   * @ignore The library's own plumbing.
   */
  protected override callFailed(err: unknown): void {
    if (err instanceof ModeldError && LEASE_SUSPECT_CODES.has(err.code)) this.#leases.forget();
  }

  #dropLocal(): void {
    this.#local?.check.abort();
    this.#local?.conn.then((c) => c.close(), () => {});
    this.#local = undefined;
  }

  /**
   * The type a model defaults to on the local daemon.
   *
   * @returns The lease's backend, when it is a model type, else `"llama"`.
   */
  protected defaultModelType(): string {
    return modelTypeFor(this.#local?.backend ?? "");
  }

  async #verified(
    root: string,
    endpoint: string,
    instanceId: string,
    options: CallOptions,
  ): Promise<Connection> {
    if (endpoint === "") {
      throw new DaemonUnreachableError(root, "", "the lease names no endpoint");
    }
    let conn: Connection;
    try {
      conn = await dial(endpoint, instanceId, this.#limits);
    } catch (err) {
      // Go's probe: an endpoint net.Dial cannot dial is an unreachable daemon.
      if (!(err instanceof InvalidEndpointError)) throw err;
      throw new DaemonUnreachableError(root, endpoint, err.message, { cause: err });
    }
    try {
      const health = await unary(conn, "Health", options, (o) => conn.rpc.health({}, o));
      const problem = healthProblem(health, instanceId);
      if (problem) throw new Error(problem);
      return conn;
    } catch (err) {
      conn.close();
      if (err instanceof ModeldError && err.code !== "unavailable") throw err;
      throw new DaemonUnreachableError(root, endpoint, (err as Error).message, {
        cause: err,
      });
    }
  }

  /**
   * The endpoint the local lease names, after a health probe.
   *
   * @param options Signal and timeout.
   * @returns `host:port`.
   *
   * @example
   * ```ts ignore
   * const addr = await client.localEndpointAddr();
   * ```
   */
  async localEndpointAddr(options: CallOptions = {}): Promise<string> {
    return (await this.connection(options)).endpoint;
  }

  /**
   * A remote node by address: health-probed unfenced, then dialled fenced with
   * the instance it reports. Cached by `backendId`; a cached node is
   * re-checked and re-dialled when it restarted.
   *
   * @param backendId The cache key.
   * @param addr The node's `host:port`.
   * @param options Signal and timeout.
   * @returns The node.
   * @throws {DaemonUnreachableError} When the node does not answer ready.
   *
   * @example
   * ```ts ignore
   * const node = await client.endpoint("gpu-box", "127.0.0.1:40517");
   * console.log(await node.diskStats());
   * ```
   */
  async endpoint(backendId: string, addr: string, options: CallOptions = {}): Promise<RemoteNode> {
    if (this.#closed) {
      throw new InvalidArgumentError(
        "Cannot dial a node: this client was closed; create a new one",
      );
    }
    const cached = this.#remotes.get(backendId);
    if (cached && cached.addr === addr) {
      const health = await cached.health(options).catch(() => undefined);
      if (health?.ready && health.instanceId === cached.instanceId) return cached;
    }
    this.closeEndpoint(backendId);
    const probeConn = await dial(addr, "", this.#limits);
    let health;
    try {
      health = await unary(probeConn, "Health", options, (o) => probeConn.rpc.health({}, o));
    } catch (err) {
      throw new DaemonUnreachableError("", addr, (err as Error).message, { cause: err });
    } finally {
      probeConn.close();
    }
    if (!health.ready || health.instanceId === "") {
      throw new DaemonUnreachableError("", addr, `node ${addr} reported not ready`);
    }
    const node = new RemoteNode(
      backendId,
      await dial(addr, health.instanceId, this.#limits),
      health.backend,
    );
    this.#remotes.set(backendId, node);
    return node;
  }

  /**
   * Drops and closes a cached remote node. Idempotent.
   *
   * @param backendId The cache key.
   *
   * @example
   * ```ts ignore
   * client.closeEndpoint("gpu-box");
   * ```
   */
  closeEndpoint(backendId: string): void {
    this.#remotes.get(backendId)?.close();
    this.#remotes.delete(backendId);
  }

  /**
   * The node a target names: this client for an empty endpoint, else the
   * remote node (like the Go `*Target` functions).
   *
   * @param target The target.
   * @param options Signal and timeout.
   * @returns The node to call.
   *
   * @example
   * ```ts ignore
   * const node = await client.node({ backendId: "local", endpoint: "" });
   * await node.listModels();
   * ```
   */
  async node(target: ModeldTarget | undefined, options: CallOptions = {}): Promise<ModeldNode> {
    if (!target || target.endpoint === "") return this;
    return await this.endpoint(target.backendId, target.endpoint, options);
  }

  /**
   * Closes every connection; open sessions end. Idempotent.
   *
   * @example
   * ```ts ignore
   * client.close();
   * ```
   */
  close(): void {
    this.#closed = true;
    this.#dropLocal();
    for (const id of [...this.#remotes.keys()]) this.closeEndpoint(id);
  }

  /** Closes the client; for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes the client; for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    const local = this.#local?.conn;
    this.close();
    await local?.catch(() => {});
  }
}

/** Failures after which the lease is read again: the daemon may have gone or been replaced. */
const LEASE_SUSPECT_CODES: ReadonlySet<string> = new Set([
  "unavailable",
  "stale_fence",
  "not_owner",
]);

/** Waits for a shared promise within one caller's own signal and timeout. */
function withCallBounds<T>(shared: Promise<T>, options: CallOptions): Promise<T> {
  const { signal, timeoutMs } = options;
  if (!signal && (timeoutMs === undefined || !Number.isFinite(timeoutMs))) return shared;
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      done();
      const reason = signal?.reason;
      reject(
        reason instanceof DOMException && reason.name === "TimeoutError"
          ? new TimeoutError("Health", { cause: reason })
          : new AbortedError("Health", { cause: reason }),
      );
    };
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
      timer = setTimeout(() => {
        done();
        reject(new TimeoutError("Health"));
      }, timeoutMs);
    }
    shared.then((v) => {
      done();
      resolve(v);
    }, (err) => {
      done();
      reject(err);
    });
  });
}

function modelTypeFor(backend: string): string {
  return backend === "openvino" ? "openvino" : "llama";
}
