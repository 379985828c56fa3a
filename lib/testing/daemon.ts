/**
 * A fake modeld for tests: serves the Compute service over h2c on loopback
 * with the in-memory reference semantics, and owns the data root's lease like
 * the real daemon (acquired with `meta {endpoint, backend}`, renewed every
 * ttl/3, released on stop).
 *
 * @example
 * ```ts ignore
 * import { startTestDaemon } from "./daemon.ts";
 * import { dial } from "../transport.ts";
 *
 * await using daemon = await startTestDaemon({ reply: "Hello there" });
 * await using conn = dial(daemon.endpoint, daemon.instanceId);
 * console.log((await conn.rpc.health({})).backend); // "llama"
 * ```
 *
 * @module
 */

import { Compute } from "../../gen/contenox/transport/v1/compute_pb.ts";
import { acquireLease, type LeaseHandle } from "../lease.ts";
import { ComputeService, goRequestType } from "./compute_service.ts";
import { GrpcServer, type RequestRecord } from "./grpc_server.ts";
import type { Reply } from "./memory_service.ts";
import type { DaemonVersion } from "./sentinels.ts";
import { join } from "node:path";

/**
 * Options for {@linkcode startTestDaemon}.
 *
 * @example
 * ```ts ignore
 * import { startTestDaemon } from "./daemon.ts";
 * await using daemon = await startTestDaemon({
 *   version: "v0.32.3",
 *   backend: "llama",
 *   ttlMs: 5_000,
 *   reply: ({ prompt }) => `You said: ${prompt.suffix}`,
 *   chunkDelayMs: 10,
 * });
 * ```
 */
export interface TestDaemonOptions {
  /** The data root (default: a new temporary directory, removed on stop). Must exist. */
  dataRoot?: string;
  /** The daemon version to imitate (default `v0.36.0`). */
  version?: DaemonVersion;
  /** The backend published in the lease, Health and Status (default `llama`). */
  backend?: string;
  /** The lease time to live in milliseconds (default 30 000); renewed every ttl/3. */
  ttlMs?: number;
  /**
   * The Decode reply: a text (split into word pieces, one chunk per piece) or
   * a function returning a text or a {@linkcode DecodeScript}. `MaxTokens`
   * caps it (≤ 0 = 256). Default: `"x"` per token, exactly `MaxTokens` chunks.
   */
  reply?: Reply;
  /** Delay between Decode chunks in milliseconds, so tests can cancel mid-stream. */
  chunkDelayMs?: number;
  /** The Embed function (v0.36); without it Embed is `unsupported_feature`. */
  embedding?: (text: string) => number[];
  /** Models to install before serving: name → `model.gguf` content (v0.36 store). */
  models?: Record<string, string | Uint8Array>;
  /** How long {@linkcode TestDaemon.stop} waits for calls in flight (default 5000 ms). */
  graceMs?: number;
}

/**
 * A running test daemon. Stop it with `stop()` or `await using`.
 *
 * @example
 * ```ts ignore
 * import { startTestDaemon } from "./daemon.ts";
 * const daemon = await startTestDaemon({ version: "v0.32.3" });
 * console.log(daemon.endpoint, daemon.instanceId, daemon.requests.length);
 * await daemon.stop();
 * ```
 */
export class TestDaemon implements AsyncDisposable {
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
  /** Every RPC received, in order of arrival. */
  readonly requests: RequestRecord[];
  readonly #server: GrpcServer<typeof Compute>;
  readonly #service: ComputeService;
  readonly #lease: LeaseHandle;
  readonly #ownsDataRoot: boolean;
  readonly #graceMs: number;
  readonly #counters: { decodesCancelled: number };
  #renewTimer: ReturnType<typeof setInterval> | undefined;
  #renewing: Promise<void> = Promise.resolve();
  #stopping: Promise<void> | undefined;
  #killed = false;
  #leaseLost: unknown;

  /** @internal Use {@linkcode startTestDaemon}. */
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
    this.#renewTimer = setInterval(() => {
      this.#renewing = this.#lease.renew().catch((err) => {
        // Lost the lease: stop serving, as modeld does.
        this.#leaseLost = err;
        this.#stopTimer();
        this.#server.destroy();
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
   * temporary data root it created. After {@linkcode TestDaemon.kill} it only
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

  /** Same as {@linkcode TestDaemon.stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Starts a test daemon: listens on `127.0.0.1:0`, takes the lease on the data
 * root (meta `endpoint`, `backend`), and serves. Needs `--allow-net=127.0.0.1`
 * and read/write access to the data root (and to the system temp directory
 * when no data root is given); DiskStats also needs `--allow-sys=statfs`.
 *
 * @param options Version, backend, lease ttl, scripted replies and models.
 * @returns The running daemon.
 * @throws {LeaseHeldError} When a live lease already holds the data root.
 *
 * @example
 * ```ts ignore
 * import { startTestDaemon } from "./daemon.ts";
 * await using daemon = await startTestDaemon({ version: "v0.36.0", reply: "Hi!" });
 * console.log(daemon.endpoint);
 * ```
 */
export async function startTestDaemon(options: TestDaemonOptions = {}): Promise<TestDaemon> {
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
      onRequest: (record) => requests.push(record),
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
      reply: options.reply,
      chunkDelayMs: options.chunkDelayMs,
      embedding: options.embedding,
    });
    for (const [name, content] of Object.entries(options.models ?? {})) {
      await service.store.seed(
        name,
        typeof content === "string" ? new TextEncoder().encode(content) : content,
      );
    }
    markReady();
    return new TestDaemon({
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
    });
  } catch (err) {
    server?.destroy();
    if (ownsDataRoot) await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
    throw err;
  }
}
