/**
 * Every modeld RPC, against one daemon: the local one behind the lease
 * ({@linkcode ModeldClient}) or a remote node ({@linkcode RemoteNode}). Both
 * extend {@linkcode ModeldNode}, so a model store or a session works the same
 * wherever it lives.
 *
 * @example
 * ```ts ignore
 * await using client = new ModeldClient();
 * const models = await client.listModels();
 * const gpu = await client.endpoint("gpu-box", "10.0.0.7:40517");
 * console.log(models.length, (await gpu.listModels()).length);
 * ```
 *
 * @module
 */

import type { CallOptions as ConnectCallOptions } from "@connectrpc/connect";
import type {
  ActiveModel,
  AdapterSpec,
  Config,
  DaemonStatus,
  HealthResponse,
  ModelInfo,
  NodeDiskStats,
  NodeModel,
  PushModelResponse,
} from "../gen/contenox/transport/v1/compute_pb.ts";
import { type CallOptions, unary } from "./call.ts";
import { InvalidArgumentError, ModelNotActiveError, ModelSwitchRequiredError } from "./errors.ts";
import type { PushProgress, PushSource } from "./push.ts";
import { loadSessionWire, Session } from "./session.ts";
import type { Connection } from "./transport.ts";
import type { WireInit } from "./wire_init.ts";

/** Model load configuration (`NumCtx`, `NumBatch`, …); unset fields take daemon defaults. */
export type ModelConfig = WireInit<Config>;
/** A LoRA adapter; part of the model identity, in order (daemons v0.32.8+). */
export type AdapterSpecInit = WireInit<AdapterSpec>;

/**
 * Which model to use. On v0.34.0+ daemons `path` may be left out when the
 * model is in the daemon's store under `name`.
 *
 * @example
 * ```ts
 * import type { ModelRef } from "@contenox/modeldconn";
 * const ref: ModelRef = { name: "qwen3-4b", type: "llama", path: "/models/qwen3-4b.gguf" };
 * ```
 */
export interface ModelRef {
  /** Logical model name; the cache identity and the store name. */
  name: string;
  /** `"llama"` or `"openvino"`; defaults to the daemon's backend when it is one of those, else `"llama"`. */
  type?: string;
  /** Content digest (sha256 hex), part of the identity. */
  digest?: string;
  /** Filesystem path the daemon loads (required by v0.32.3 daemons). */
  path?: string;
  /** LoRA adapters (v0.32.8+). */
  adapters?: AdapterSpecInit[];
}

/** Options of calls that name a model. */
export interface ModelCallOptions extends CallOptions {
  /** Load configuration; part of the model identity on v0.32.4+ daemons. */
  config?: ModelConfig;
}

/** Options of {@linkcode ModeldNode.loadModel}. */
export interface LoadModelOptions extends ModelCallOptions {
  /** Load only if the slot is still at this generation (0 or unset: unconditional). */
  expectedGeneration?: bigint | number;
}

/** Options of {@linkcode ModeldNode.unloadModel}. */
export interface UnloadModelOptions extends CallOptions {
  /** Unload only if the slot is still at this generation (0 or unset: unconditional). */
  expectedGeneration?: bigint | number;
}

/** Options of {@linkcode ModeldNode.pushModel}. */
export interface PushModelOptions extends CallOptions {
  /** The model's store name. */
  name: string;
  /** `"llama"` (default) or `"openvino"`. */
  type?: string;
  /** `"file"` (a single GGUF, default) or `"tar"` (an uncompressed tar of a model dir). */
  format?: "file" | "tar";
  /** sha256 hex of the bytes; computed for bytes and files, required for a verified stream push. */
  digest?: string;
  /** Total bytes, for progress (known for bytes and files). */
  totalBytes?: number;
  /** Called after each frame (at most 4 MiB) is sent. */
  onProgress?: (progress: PushProgress) => void;
}

/**
 * The RPCs of one daemon. Subclasses decide which connection to use.
 *
 * @example
 * ```ts ignore
 * async function report(node: ModeldNode) {
 *   const disk = await node.diskStats();
 *   console.log(`${disk.freeBytes} bytes free`);
 * }
 * ```
 */
export abstract class ModeldNode {
  /**
   * Returns the connection to use for the next call.
   *
   * @param options The call's signal and timeout (for a health probe on dial).
   *
   * @ignore The library's own plumbing.
   */
  protected abstract connection(options: CallOptions): Promise<Connection>;

  /** The backend type to default a {@linkcode ModelRef.type} to. */
  protected abstract defaultModelType(): string;

  /**
   * Hears of every failed call of this node before it is thrown; the local
   * client forgets its lease when the daemon may have gone.
   *
   * @param _err The typed error.
   *
   * @ignore The library's own plumbing.
   */
  protected callFailed(_err: unknown): void {}

  /** One unary RPC on `conn`, whose failure {@linkcode ModeldNode.callFailed} hears of. */
  async #call<T>(
    conn: Connection,
    rpc: string,
    options: CallOptions,
    run: (o: ConnectCallOptions) => Promise<T>,
  ): Promise<T> {
    try {
      return await unary(conn, rpc, options, run);
    } catch (err) {
      this.callFailed(err);
      throw err;
    }
  }

  /**
   * Asks the daemon whether it is ready and which instance answers (unfenced).
   *
   * @param options Signal and timeout.
   * @returns Ready flag, instance id and backend.
   *
   * @example
   * ```ts ignore
   * const h = await client.health();
   * console.log(h.ready, h.instanceId, h.backend);
   * ```
   */
  async health(options: CallOptions = {}): Promise<HealthResponse> {
    const conn = await this.connection(options);
    return this.#call(conn, "Health", options, (o) => conn.rpc.health({}, o));
  }

  /**
   * Opens a session on `model`. On v0.32.4+ daemons a different idle model in
   * the slot is switched out (LoadModel, then one retry), as the Go client does.
   *
   * @param model The model.
   * @param options Load config, signal and timeout.
   * @returns The open session; close it when done.
   * @throws {ModelBusyError} When another session holds the daemon's only slot.
   *
   * @example
   * ```ts ignore
   * await using session = await client.openSession({ name: "qwen", type: "llama" }, {
   *   config: { numCtx: 4096 },
   * });
   * ```
   */
  async openSession(model: ModelRef, options: ModelCallOptions = {}): Promise<Session> {
    const conn = await this.connection(options);
    const open = () =>
      this.#call(
        conn,
        "OpenSession",
        options,
        (o) => conn.rpc.openSession(this.#modelRequest(conn, model, options.config), o),
      );
    let res;
    try {
      res = await open();
    } catch (err) {
      if (!(err instanceof ModelSwitchRequiredError || err instanceof ModelNotActiveError)) {
        throw err;
      }
      await this.loadModel(model, options);
      res = await open();
    }
    await loadSessionWire(); // so that the session's first decode starts at once
    return new Session(conn, res.handle);
  }

  /**
   * Describes a model without opening a session: context sizes and, on
   * v0.32.4+ daemons, the memory plan and chat-template capabilities.
   *
   * @param model The model.
   * @param options Load config (v0.32.4+ plans with it), signal and timeout.
   * @returns The model facts.
   *
   * @example
   * ```ts ignore
   * const info = await client.describe({ name: "qwen", type: "llama" }, { config: { numCtx: 8192 } });
   * console.log(info.effectiveContext);
   * ```
   */
  async describe(model: ModelRef, options: ModelCallOptions = {}): Promise<ModelInfo> {
    const conn = await this.connection(options);
    return this.#call(
      conn,
      "Describe",
      options,
      (o) => conn.rpc.describe(this.#modelRequest(conn, model, options.config), o),
    );
  }

  /**
   * Embeds `text` with `model` (v0.32.4+).
   *
   * @param model The embedding model.
   * @param text The text.
   * @param options Load config, signal and timeout.
   * @returns The vector.
   *
   * @example
   * ```ts ignore
   * const vector = await client.embed({ name: "bge", type: "llama" }, "hello");
   * console.log(vector.length);
   * ```
   */
  async embed(model: ModelRef, text: string, options: ModelCallOptions = {}): Promise<number[]> {
    const conn = await this.connection(options);
    const { adapters: _adapters, ...req } = this.#modelRequest(conn, model, options.config);
    const res = await this.#call(
      conn,
      "Embed",
      options,
      (o) => conn.rpc.embed({ ...req, text }, o),
    );
    return res.vector;
  }

  /**
   * The daemon's model slot: state, active model and generation (v0.32.4+).
   *
   * @param options Signal and timeout.
   * @returns The slot status.
   * @throws {DaemonTooOldError} On a v0.32.3 daemon.
   *
   * @example
   * ```ts ignore
   * const s = await client.status();
   * console.log(s.state, s.active?.modelName, s.active?.generation);
   * ```
   */
  async status(options: CallOptions = {}): Promise<DaemonStatus> {
    const conn = await this.connection(options);
    return this.#call(
      conn,
      "Status",
      options,
      (o) => conn.rpc.status({ ownerInstanceId: conn.instanceId }, o),
    );
  }

  /**
   * Loads `model` into the slot explicitly (v0.32.4+).
   *
   * @param model The model.
   * @param options Load config, expected generation, signal and timeout.
   * @returns The active model with its new generation.
   *
   * @example
   * ```ts ignore
   * const active = await client.loadModel({ name: "qwen", type: "llama" });
   * console.log(active.generation);
   * ```
   */
  async loadModel(model: ModelRef, options: LoadModelOptions = {}): Promise<ActiveModel> {
    const conn = await this.connection(options);
    const req = {
      ...this.#modelRequest(conn, model, options.config),
      expectedGeneration: toGeneration(options.expectedGeneration),
    };
    return this.#call(conn, "LoadModel", options, (o) => conn.rpc.loadModel(req, o));
  }

  /**
   * Unloads the slot's model (v0.32.4+). An empty slot is fine.
   *
   * @param options Expected generation, signal and timeout.
   *
   * @example
   * ```ts ignore
   * await client.unloadModel();
   * ```
   */
  async unloadModel(options: UnloadModelOptions = {}): Promise<void> {
    const conn = await this.connection(options);
    await this.#call(conn, "UnloadModel", options, (o) =>
      conn.rpc.unloadModel({
        ownerInstanceId: conn.instanceId,
        expectedGeneration: toGeneration(options.expectedGeneration),
      }, o));
  }

  /**
   * The models in the daemon's store (v0.34.0+).
   *
   * @param options Signal and timeout.
   * @returns The models (empty when the store is).
   *
   * @example
   * ```ts ignore
   * for (const m of await client.listModels()) console.log(m.name, m.sizeBytes);
   * ```
   */
  async listModels(options: CallOptions = {}): Promise<NodeModel[]> {
    const conn = await this.connection(options);
    const res = await this.#call(
      conn,
      "ListModels",
      options,
      (o) => conn.rpc.listModels({ ownerInstanceId: conn.instanceId }, o),
    );
    return res.models;
  }

  /**
   * Removes a model from the daemon's store (v0.34.0+).
   *
   * @param name The model's store name.
   * @param options Signal and timeout.
   * @throws {ModelNotFoundError} When no such model is stored.
   *
   * @example
   * ```ts ignore
   * await client.removeModel("old-model");
   * ```
   */
  async removeModel(name: string, options: CallOptions = {}): Promise<void> {
    if (name === "") throw new InvalidArgumentError("Cannot remove a model: the name is empty");
    const conn = await this.connection(options);
    await this.#call(
      conn,
      "RemoveModel",
      options,
      (o) => conn.rpc.removeModel({ ownerInstanceId: conn.instanceId, name }, o),
    );
  }

  /**
   * Free, used and total bytes of the disk holding the store (v0.34.0+).
   *
   * @param options Signal and timeout.
   * @returns The disk stats.
   *
   * @example
   * ```ts ignore
   * const d = await client.diskStats();
   * console.log(d.freeBytes, d.totalBytes);
   * ```
   */
  async diskStats(options: CallOptions = {}): Promise<NodeDiskStats> {
    const conn = await this.connection(options);
    return this.#call(
      conn,
      "DiskStats",
      options,
      (o) => conn.rpc.diskStats({ ownerInstanceId: conn.instanceId }, o),
    );
  }

  /**
   * Uploads a model into the daemon's store (v0.34.0+), in frames of at most
   * 4 MiB. For bytes in memory the SHA-256 digest is computed, so the daemon
   * verifies what it stored; an identical model already stored is not replaced.
   *
   * @param source The model bytes: a `Uint8Array`, a `ReadableStream`, or an async iterable.
   * @param options Name, type, format, digest, progress callback, signal and timeout.
   * @returns Whether it was already present and how many bytes were written.
   * @throws {DigestMismatchError} When the bytes do not match `digest`.
   *
   * @example
   * ```ts ignore
   * const res = await client.pushModel(bytes, { name: "tiny", onProgress: (p) => console.log(p.sentBytes) });
   * console.log(res.alreadyPresent, res.bytesWritten);
   * ```
   */
  async pushModel(source: PushSource, options: PushModelOptions): Promise<PushModelResponse> {
    if (options.name === "") {
      throw new InvalidArgumentError("Cannot push a model: the name is empty");
    }
    // Loaded on demand: node:crypto alone costs more than the client's own start-up.
    const { pushFrames, sha256Hex } = await import("./push.ts");
    let digest = options.digest;
    let totalBytes = options.totalBytes;
    if (source instanceof Uint8Array) {
      digest ??= await sha256Hex(source);
      totalBytes ??= source.length;
    }
    const conn = await this.connection(options);
    const frames = pushFrames(source, {
      name: options.name,
      type: options.type ?? "llama",
      format: options.format ?? "file",
      digest,
      totalBytes: totalBytes === undefined ? undefined : BigInt(totalBytes),
    }, { ownerInstanceId: conn.instanceId, onProgress: options.onProgress });
    return await this.#call(conn, "PushModel", options, (o) => conn.rpc.pushModel(frames, o));
  }

  /**
   * Uploads a model file into the daemon's store (v0.34.0+): reads it once for
   * its digest, then streams it. Needs `--allow-read` for the file.
   *
   * @param path The model file (GGUF, or a tar for `format: "tar"`).
   * @param options As {@linkcode ModeldNode.pushModel}, without having to pass the digest.
   * @returns Whether it was already present and how many bytes were written.
   *
   * @example
   * ```ts ignore
   * await client.pushModelFile("./tiny.gguf", { name: "tiny" });
   * ```
   */
  async pushModelFile(path: string, options: PushModelOptions): Promise<PushModelResponse> {
    const { sha256Hex, statPushFile } = await import("./push.ts");
    const file = await statPushFile(path);
    return await this.pushModel(file.open(), {
      ...options,
      digest: options.digest ?? await sha256Hex(file.open()),
      totalBytes: options.totalBytes ?? file.size,
    });
  }

  #modelRequest(conn: Connection, model: ModelRef, config: ModelConfig | undefined) {
    if (model.name === "" && !model.path) {
      throw new InvalidArgumentError("Cannot use a model without a name or a path: set name");
    }
    return {
      ownerInstanceId: conn.instanceId,
      modelName: model.name,
      type: model.type ?? this.defaultModelType(),
      digest: model.digest ?? "",
      path: model.path ?? "",
      config: config ?? {},
      adapters: model.adapters ?? [],
    };
  }
}

const MAX_UINT64 = 2n ** 64n - 1n;

/** A slot generation as the daemon's uint64, refused before sending when out of range. */
function toGeneration(value: bigint | number | undefined): bigint {
  if (value === undefined) return 0n;
  const valid = typeof value === "bigint"
    ? value >= 0n && value <= MAX_UINT64
    : Number.isSafeInteger(value) && value >= 0;
  if (!valid) {
    throw new InvalidArgumentError(
      `Cannot use expectedGeneration ${value}: it is a uint64; pass an integer from 0 to 2^64-1 ` +
        "(a bigint above 2^53)",
    );
  }
  return BigInt(value);
}
