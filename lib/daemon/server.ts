/**
 * The daemon core, shared by every daemon this project runs: listens on
 * loopback, takes the data root's lease like modeld (meta `endpoint`,
 * `backend`; renewed every ttl/3; released on stop), and serves the
 * `contenox.transport.v1.Compute` service over an {@linkcode Engine}. The
 * test daemon (`@contenox/modeldconn/testing`) is this core with the scripted
 * engine; the real daemon (`@contenox/modeldconn/daemon`) is this core with
 * the llama.cpp engine.
 *
 * @example
 * ```ts ignore
 * import { startServer } from "./server.ts";
 * await using server = await startServer({ engine, dataRoot: "/tmp/root" });
 * console.log(server.endpoint, server.instanceId);
 * ```
 *
 * @module
 */

import { Compute } from "../../gen/contenox/transport/v1/compute_pb.ts";
import { acquireLease, type LeaseHandle } from "../lease.ts";
import { ComputeService, goRequestType } from "./compute_service.ts";
import type { Engine } from "./engine.ts";
import { GrpcServer, type RequestRecord } from "./grpc_server.ts";
import type { DaemonVersion } from "./sentinels.ts";
import { join } from "node:path";

/**
 * Options of {@linkcode startServer}.
 *
 * @example
 * ```ts ignore
 * const options: ServerOptions = { engine, dataRoot: "/tmp/root", idleTtlMs: 300_000 };
 * ```
 */
export interface ServerOptions {
  /** The engine behind the sessions. */
  engine: Engine;
  /** The data root (default: a new temporary directory, removed on stop). Must exist. */
  dataRoot?: string;
  /** The daemon version to imitate (default `v0.36.0`). */
  version?: DaemonVersion;
  /** The backend published in the lease, Health and Status (default `llama`). */
  backend?: string;
  /** The lease time to live in milliseconds (default 30 000); renewed every ttl/3. */
  ttlMs?: number;
  /** Models to install before serving: name → `model.gguf` content (v0.36 store). */
  models?: Record<string, string | Uint8Array>;
  /** How long {@linkcode DaemonServer.stop} waits for calls in flight (default 5000 ms). */
  graceMs?: number;
  /** Unload a model idle this long, in ms (default 0: never). */
  idleTtlMs?: number;
  /** Called after the server stopped serving for good, e.g. when the lease was lost. */
  onLeaseLost?: (err: unknown) => void;
  /**
   * Keep every request in {@linkcode DaemonServer.requests} (tests inspect
   * them). Off by default: a long-running daemon must not grow without bound.
   */
  recordRequests?: boolean;
  /**
   * Hold streamed messages (Decode chunks, push progress) written less than
   * this many ms after the previous write and send them together (default 0:
   * each at once).
   */
  streamFlushMs?: number;
}

/**
 * A running daemon (the test daemon, or the llama.cpp daemon of `serve()`).
 * Stop it with `stop()` (or `close()`, or `await using`).
 *
 * @example
 * ```ts ignore
 * import { startTestDaemon } from "@contenox/modeldconn/testing";
 * const daemon = await startTestDaemon({ version: "v0.32.3" });
 * console.log(daemon.endpoint, daemon.instanceId, daemon.requests.length);
 * await daemon.stop();
 * ```
 */
export class DaemonServer implements AsyncDisposable {
  /** The `host:port` it listens on (also the lease's `meta.endpoint`). */
  readonly endpoint: string;
  /** The lease instance id (the fence). */
  readonly instanceId: string;
  /** The data root holding the lease. */
  readonly dataRoot: string;
  /** The version imitated. */
  readonly version: DaemonVersion;
  /** The backend published. */
  readonly backend: string;
  /** Every RPC received, in order of arrival (with `recordRequests`; else empty). */
  readonly requests: RequestRecord[];
  readonly #server: GrpcServer<typeof Compute>;
  readonly #service: ComputeService;
  readonly #lease: LeaseHandle;
  readonly #ownsDataRoot: boolean;
  readonly #graceMs: number;
  readonly #counters: { decodesCancelled: number };
  readonly #engine: Engine;
  readonly #onLeaseLost: ((err: unknown) => void) | undefined;
  #renewTimer: ReturnType<typeof setInterval> | undefined;
  #renewing: Promise<void> = Promise.resolve();
  #stopping: Promise<void> | undefined;
  #killed = false;
  #leaseLost: unknown;

  /** @internal Use {@linkcode startServer}. */
  constructor(init: {
    endpoint: string;
    dataRoot: string;
    version: DaemonVersion;
    backend: string;
    requests: RequestRecord[];
    server: GrpcServer<typeof Compute>;
    service: ComputeService;
    lease: LeaseHandle;
    ownsDataRoot: boolean;
    graceMs: number;
    ttlMs: number;
    counters: { decodesCancelled: number };
    engine: Engine;
    onLeaseLost?: (err: unknown) => void;
  }) {
    this.endpoint = init.endpoint;
    this.instanceId = init.lease.instanceId;
    this.dataRoot = init.dataRoot;
    this.version = init.version;
    this.backend = init.backend;
    this.requests = init.requests;
    this.#server = init.server;
    this.#service = init.service;
    this.#lease = init.lease;
    this.#ownsDataRoot = init.ownsDataRoot;
    this.#graceMs = init.graceMs;
    this.#counters = init.counters;
    this.#engine = init.engine;
    this.#onLeaseLost = init.onLeaseLost;
    this.#renewTimer = setInterval(() => {
      this.#renewing = this.#lease.renew().catch((err) => {
        // Lost the lease: stop serving, as modeld does.
        this.#leaseLost = err;
        this.#stopTimer();
        this.#server.destroy();
        this.#onLeaseLost?.(err);
      });
    }, Math.max(1, init.ttlMs / 3));
  }

  /** Session handles currently open on the daemon. */
  get openSessions(): number {
    return this.#service.openSessions;
  }

  /** Decode streams the client reset before they ended. */
  get decodesCancelled(): number {
    return this.#counters.decodesCancelled;
  }

  /** Open HTTP/2 connections. */
  get connections(): number {
    return this.#server.connections;
  }

  /** The error that ended the lease, when a renew failed. */
  get leaseLost(): unknown {
    return this.#leaseLost;
  }

  /** The lease file's path. */
  get leasePath(): string {
    return join(this.dataRoot, "modeld.lease");
  }

  /** The models directory (`<dataRoot>/models`). */
  get modelsDir(): string {
    return this.#service.store.dir;
  }

  /**
   * The slot's DaemonStatus state (`Empty`, `Ready`, ...); `undefined` at v0.32.3.
   *
   * @returns The state.
   *
   * @example
   * ```ts ignore
   * console.log(daemon.slotState());
   * ```
   */
  slotState(): string | undefined {
    return this.#service.slot?.status().state as string | undefined;
  }

  #stopTimer(): void {
    if (this.#renewTimer !== undefined) clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
  }

  /**
   * Stops like modeld on SIGTERM: GOAWAY, waits for calls in flight (up to
   * `graceMs`), releases the lease (the file is removed) and removes a
   * temporary data root it created. After {@linkcode DaemonServer.kill} it only
   * removes the temporary data root. Idempotent.
   *
   * @returns When everything is released.
   *
   * @example
   * ```ts ignore
   * await daemon.stop();
   * ```
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopTimer();
      await this.#renewing;
      if (!this.#killed) {
        await this.#server.close(this.#graceMs);
        await this.#lease.release();
      }
      await this.#service.close();
      await this.#engine.close();
      if (this.#ownsDataRoot) await Deno.remove(this.dataRoot, { recursive: true }).catch(() => {});
    })();
    return this.#stopping;
  }

  /**
   * Stops serving at once without releasing the lease, like SIGKILL: the lease
   * file stays (and goes stale after its ttl), connections drop without GOAWAY.
   *
   * @returns When the listener is closed.
   *
   * @example
   * ```ts ignore
   * await daemon.kill();
   * ```
   */
  async kill(): Promise<void> {
    if (this.#killed || this.#stopping) return;
    this.#killed = true;
    this.#stopTimer();
    await this.#renewing;
    this.#server.destroy();
    // Let the destroyed sockets finish closing.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }

  /**
   * Same as {@linkcode DaemonServer.stop}.
   *
   * @returns When everything is released.
   *
   * @example
   * ```ts ignore
   * await daemon.close();
   * ```
   */
  close(): Promise<void> {
    return this.stop();
  }

  /** Same as {@linkcode DaemonServer.stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Starts a daemon: listens on `127.0.0.1:0`, takes the lease on the data
 * root (meta `endpoint`, `backend`), and serves. Needs `--allow-net=127.0.0.1`
 * and read/write access to the data root (and to the system temp directory
 * when no data root is given); DiskStats also needs `--allow-sys=statfs`.
 *
 * @param options Engine, data root, version, backend, lease ttl, models.
 * @returns The running daemon.
 * @throws {LeaseHeldError} When a live lease already holds the data root.
 *
 * @example
 * ```ts ignore
 * import { startServer } from "./server.ts";
 * await using daemon = await startServer({ engine });
 * console.log(daemon.endpoint);
 * ```
 */
export async function startServer(options: ServerOptions): Promise<DaemonServer> {
  const version = options.version ?? "v0.36.0";
  const backend = options.backend ?? "llama";
  const ttlMs = options.ttlMs ?? 30_000;
  const ownsDataRoot = options.dataRoot === undefined;
  const dataRoot = options.dataRoot ?? await Deno.makeTempDir({ prefix: "modeld-test-" });
  const counters = { decodesCancelled: 0 };
  const requests: RequestRecord[] = [];
  let server: GrpcServer<typeof Compute> | undefined;
  try {
    // modeld's order: listen, take the lease (which names the endpoint), then
    // serve. Calls that connect in between wait for the service.
    const late: { service?: ComputeService } = {};
    let markReady!: () => void;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    server = new GrpcServer(Compute, () => late.service!.impl, {
      ready,
      encodeError: (err) => late.service!.encodeError(err),
      goRequestType,
      maxReceiveBytes: version === "v0.32.3" ? 4 * 1024 * 1024 : 512 * 1024 * 1024,
      streamFlushMs: options.streamFlushMs,
      onRequest: options.recordRequests ? (record) => requests.push(record) : undefined,
      onCancelled: (method) => {
        if (method === "Decode") counters.decodesCancelled++;
      },
      onConnectionClose: (id) => {
        void late.service?.closeConnection(id);
      },
    });
    const endpoint = await server.listen("127.0.0.1", 0);
    const lease = await acquireLease(dataRoot, { ttlMs, meta: { endpoint, backend } });
    const service = late.service = new ComputeService({
      version,
      instanceId: lease.instanceId,
      backend,
      modelsDir: join(dataRoot, "models"),
      engine: options.engine,
      idleTtlMs: options.idleTtlMs,
      blobDir: join(dataRoot, "modeld-blobs", backend),
    });
    for (const [name, content] of Object.entries(options.models ?? {})) {
      await service.store.seed(
        name,
        typeof content === "string" ? new TextEncoder().encode(content) : content,
      );
    }
    markReady();
    return new DaemonServer({
      endpoint,
      dataRoot,
      version,
      backend,
      requests,
      server,
      service,
      lease,
      ownsDataRoot,
      graceMs: options.graceMs ?? 5_000,
      ttlMs,
      counters,
      engine: options.engine,
      onLeaseLost: options.onLeaseLost,
    });
  } catch (err) {
    server?.destroy();
    await options.engine.close().catch(() => {});
    if (ownsDataRoot) await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
    throw err;
  }
}
