/**
 * The `contenox.transport.v1.Compute` handlers of the daemon core (every engine), like Go's
 * `transport/grpc.Server` in front of modeld's service stack: the metadata
 * fence on every call but Health, handle allocation and lookup (a handle not
 * starting with `<instance>/` is `stale_fence`, an unknown one
 * `session_closed`), and per version:
 *
 * - v0.36.0: the single model slot, `<instance>/<generation>/<seq>` handles,
 *   the body fence on OpenSession / Describe / Embed, all 18 methods, sessions
 *   closed when the HTTP/2 connection that opened them closes.
 * - v0.32.3: the 8 original methods only (others are `UNIMPLEMENTED`), one
 *   independent session per OpenSession, `<instance>/<seq>` handles,
 *   CloseSession always OK, no connection binding.
 *
 * @example
 * ```ts ignore
 * import { ComputeService } from "./compute_service.ts";
 * import { GrpcServer } from "./grpc_server.ts";
 * import { Compute } from "../../gen/contenox/transport/v1/compute_pb.ts";
 *
 * const svc = new ComputeService({ version: "v0.36.0", instanceId: "id", backend: "llama", modelsDir });
 * const server = new GrpcServer(Compute, svc.impl, { encodeError: (e) => svc.encodeError(e) });
 * ```
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  type Compute,
  ConfigSchema,
  DecodeConfigSchema,
  type DecodeRequest,
  type OpenSessionRequest,
  PrefixInputSchema,
  type PushModelChunk,
  SuffixInputSchema,
} from "../../gen/contenox/transport/v1/compute_pb.ts";
import { FENCE_HEADER } from "../transport.ts";
import type { CallContext, ServiceImpl } from "./grpc_server.ts";
import { GrpcStatusError } from "./grpc_server.ts";
import type { DecodeChunkInit, Engine, EngineSession, ModelSpec } from "./engine.ts";
import { ModelStore } from "./model_store.ts";
import {
  type DaemonVersion,
  encodeServiceError,
  ServiceError,
  type WireStatus,
} from "./sentinels.ts";
import { SlotService } from "./slot.ts";

/** The methods a v0.32.3 daemon has. */
const V0323_METHODS: ReadonlySet<string> = new Set([
  "health",
  "openSession",
  "describe",
  "ensurePrefix",
  "prefillSuffix",
  "explainContext",
  "closeSession",
  "decode",
]);

/** Go's request struct names, for grpc-go's codec error texts. */
const GO_REQUEST_TYPES: Readonly<Record<string, string>> = {
  Describe: "openSessionReq",
  ExplainContext: "explainReq",
  CloseSession: "closeReq",
  PushModel: "pushModelChunk",
};

/**
 * The Go request struct name of a method (`OpenSession` → `openSessionReq`).
 *
 * @param method The method name.
 * @returns The unqualified Go type name.
 *
 * @example
 * ```ts
 * import { goRequestType } from "./compute_service.ts";
 * console.assert(goRequestType("Describe") === "openSessionReq");
 * ```
 */
export function goRequestType(method: string): string {
  return GO_REQUEST_TYPES[method] ?? `${method.charAt(0).toLowerCase()}${method.slice(1)}Req`;
}

/** Options of a {@linkcode ComputeService}. */
export interface ComputeServiceOptions {
  /** The daemon version to imitate. */
  version: DaemonVersion;
  /** The lease instance id (the fence); "" disables fencing. */
  instanceId: string;
  /** The backend reported by Health and Status. */
  backend: string;
  /** The models directory (`<dataRoot>/models`). */
  modelsDir: string;
  /** The engine behind the sessions. */
  engine: Engine;
  /** The slot's idle TTL in ms (0 = never reap), v0.36 only. */
  idleTtlMs?: number;
  /** Where Snapshot keeps engine states (`<dataRoot>/modeld-blobs/<backend>`). */
  blobDir?: string;
}

/**
 * A handle's operations: an engine session owned by the handle (v0.32.3) or
 * the slot's view of the resident one (v0.36), which has the same shape.
 */
type OpenHandle = EngineSession;

/**
 * The Compute service state and handlers.
 *
 * @example
 * ```ts ignore
 * const svc = new ComputeService({ version: "v0.32.3", instanceId: "id", backend: "llama", modelsDir });
 * console.log(svc.openSessions);
 * ```
 */
export class ComputeService {
  /** The handlers, for {@linkcode GrpcServer}. */
  readonly impl: ServiceImpl<typeof Compute>;
  /** The model store. */
  readonly store: ModelStore;
  /** The slot (v0.36 only). */
  readonly slot: SlotService | undefined;
  readonly #options: ComputeServiceOptions;
  readonly #handles = new Map<string, { handle: OpenHandle; connectionId: number }>();
  #seq = 0;

  /**
   * @param options Version, fence, backend, models directory and scripting.
   */
  constructor(options: ComputeServiceOptions) {
    this.#options = options;
    this.store = new ModelStore(options.modelsDir);
    this.slot = options.version === "v0.32.3" ? undefined : new SlotService({
      owner: options.instanceId,
      backend: options.backend,
      store: this.store,
      engine: options.engine,
      idleTtlMs: options.idleTtlMs,
      blobDir: options.blobDir,
    });
    const all = this.#handlers();
    const impl: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(all)) {
      if (options.version !== "v0.32.3" || V0323_METHODS.has(name)) impl[name] = fn;
    }
    this.impl = impl as ServiceImpl<typeof Compute>;
  }

  /** Open handles. */
  get openSessions(): number {
    return this.#handles.size;
  }

  /**
   * Encodes a handler error as this version's daemon would.
   *
   * @param err What a handler threw.
   * @returns The status.
   *
   * @example
   * ```ts ignore
   * const status = svc.encodeError(err);
   * ```
   */
  encodeError(err: unknown): WireStatus {
    if (err instanceof GrpcStatusError) return err.status;
    return encodeServiceError(err, this.#options.version);
  }

  /**
   * Closes the handles opened on an HTTP/2 connection (v0.36 only; v0.32.3
   * leaks them, as the real daemon does).
   *
   * @param connectionId The connection that closed.
   *
   * @example
   * ```ts ignore
   * await svc.closeConnection(1);
   * ```
   */
  async closeConnection(connectionId: number): Promise<void> {
    if (this.#options.version === "v0.32.3") return;
    const closing: OpenHandle[] = [];
    for (const [key, entry] of this.#handles) {
      if (entry.connectionId === connectionId) {
        this.#handles.delete(key);
        closing.push(entry.handle);
      }
    }
    for (const h of closing) await h.close();
  }

  #checkFence(ctx: CallContext): void {
    const id = this.#options.instanceId;
    if (id === "") return;
    const values = ctx.header(FENCE_HEADER);
    if (values.length !== 1 || values[0] !== id) throw ServiceError.of("stale_fence");
  }

  #lookup(handle: string): OpenHandle {
    const id = this.#options.instanceId;
    if (id !== "" && !handle.startsWith(`${id}/`)) throw ServiceError.of("stale_fence");
    const entry = this.#handles.get(handle);
    if (!entry) throw ServiceError.of("session_closed");
    return entry.handle;
  }

  #register(handle: OpenHandle, generation: bigint | undefined, ctx: CallContext): string {
    this.#seq++;
    const id = this.#options.instanceId;
    const key = generation === undefined
      ? `${id}/${this.#seq}`
      : `${id}/${generation}/${this.#seq}`;
    this.#handles.set(key, { handle, connectionId: ctx.connectionId });
    return key;
  }

  /**
   * Closes every handle and the slot (daemon shutdown).
   *
   * @example
   * ```ts ignore
   * await svc.close();
   * ```
   */
  async close(): Promise<void> {
    const handles = [...this.#handles.values()];
    this.#handles.clear();
    for (const { handle } of handles) await handle.close();
    await this.slot?.close();
  }

  #requireSlot(): SlotService {
    if (!this.slot) throw ServiceError.of("unsupported_feature");
    return this.slot;
  }

  async *#decode(req: DecodeRequest, ctx: CallContext): AsyncGenerator<DecodeChunkInit> {
    this.#checkFence(ctx);
    const handle = this.#lookup(req.handle);
    const config = req.config ?? create(DecodeConfigSchema);
    yield* handle.decode(config, { handle: req.handle, signal: ctx.signal });
  }

  #handlers(): Required<ServiceImpl<typeof Compute>> {
    const opts = this.#options;
    const v0323 = opts.version === "v0.32.3";
    return {
      health: () =>
        Promise.resolve({ instanceId: opts.instanceId, ready: true, backend: opts.backend }),

      openSession: async (req, ctx) => {
        this.#checkFence(ctx);
        if (v0323) {
          const backend = opts.backend;
          if (
            (backend === "llama" || backend === "openvino") && req.type !== "" &&
            req.type !== backend
          ) {
            throw ServiceError.of(
              "backend_mismatch",
              `requested ${JSON.stringify(req.type)}, this daemon serves ${backend}`,
            );
          }
          const session = await opts.engine.load(asSpec(req), ctx.signal);
          return { handle: this.#register(session, undefined, ctx) };
        }
        const session = await this.#requireSlot().openSession(req, ctx.signal);
        return { handle: this.#register(session, session.generation, ctx) };
      },

      describe: async (req, ctx) => {
        this.#checkFence(ctx);
        if (v0323) {
          return await opts.engine.describe(asSpec(req), ctx.signal);
        }
        return await this.#requireSlot().describe(req, ctx.signal);
      },

      ensurePrefix: async (req, ctx) => {
        this.#checkFence(ctx);
        return await this.#lookup(req.handle).ensurePrefix(
          req.prefix ?? create(PrefixInputSchema),
          ctx.signal,
        );
      },

      prefillSuffix: async (req, ctx) => {
        this.#checkFence(ctx);
        return await this.#lookup(req.handle).prefillSuffix(
          req.suffix ?? create(SuffixInputSchema),
          ctx.signal,
        );
      },

      explainContext: async (req, ctx) => {
        this.#checkFence(ctx);
        return await this.#lookup(req.handle).explain();
      },

      closeSession: async (req, ctx) => {
        this.#checkFence(ctx);
        const entry = this.#handles.get(req.handle);
        this.#handles.delete(req.handle);
        if (entry) await entry.handle.close();
        return {};
      },

      decode: (req, ctx) => this.#decode(req, ctx),

      status: (_req, ctx) => {
        this.#checkFence(ctx);
        return Promise.resolve(this.#requireSlot().status());
      },

      loadModel: async (req, ctx) => {
        this.#checkFence(ctx);
        const owner = req.ownerInstanceId || opts.instanceId;
        return await this.#requireSlot().loadModel({ ...req, ownerInstanceId: owner }, ctx.signal);
      },

      unloadModel: async (req, ctx) => {
        this.#checkFence(ctx);
        const owner = req.ownerInstanceId || opts.instanceId;
        await this.#requireSlot().unloadModel(
          { ownerInstanceId: owner, expectedGeneration: req.expectedGeneration },
          ctx.signal,
        );
        return {};
      },

      embed: async (req, ctx) => {
        this.#checkFence(ctx);
        return { vector: await this.#requireSlot().embed(req, ctx.signal) };
      },

      snapshot: async (req, ctx) => {
        this.#checkFence(ctx);
        return await this.#lookup(req.handle).snapshot(ctx.signal);
      },

      restore: async (req, ctx) => {
        this.#checkFence(ctx);
        const handle = this.#lookup(req.handle);
        if (req.snapshot) await handle.restore(req.snapshot, ctx.signal);
        return {};
      },

      listModels: async (_req, ctx) => {
        this.#checkFence(ctx);
        return { models: await this.store.list() };
      },

      removeModel: async (req, ctx) => {
        this.#checkFence(ctx);
        this.#requireSlot().checkRemovable(req.name);
        await this.store.remove(req.name);
        return {};
      },

      diskStats: async (_req, ctx) => {
        this.#checkFence(ctx);
        return await this.store.diskStats();
      },

      pushModel: async (reqs, ctx) => {
        const it = reqs[Symbol.asyncIterator]();
        const first = await it.next();
        if (first.done) throw new GrpcStatusError({ code: Code.Unknown, message: "EOF" });
        this.#checkFence(ctx);
        const head: PushModelChunk = first.value;
        if (!head.manifest) {
          throw new ServiceError(
            "",
            "modeld transport: PushModel stream missing manifest on first frame",
          );
        }
        const data = (async function* () {
          if (head.data.length > 0) yield head.data;
          for (;;) {
            const next = await it.next();
            if (next.done) return;
            if (next.value.data.length > 0) yield next.value.data;
          }
        })();
        const res = await this.store.receive(head.manifest, data);
        return { alreadyPresent: res.alreadyPresent, bytesWritten: res.bytesWritten };
      },
    };
  }
}

/** A v0.32.3 request as the engine's model (no slot, so no store resolution). */
function asSpec(req: OpenSessionRequest): ModelSpec {
  return {
    modelName: req.modelName,
    type: req.type,
    digest: req.digest,
    path: req.path,
    config: req.config ?? create(ConfigSchema),
    adapters: req.adapters,
  };
}
