/**
 * HEAD modeld's single model slot (`modeld/slot`) over an {@linkcode Engine}:
 * one resident model, at most one open handle, a generation counter that
 * fences old handles, and one operation at a time (a Decode holds the lock
 * until its stream ends).
 *
 * Rules (contract §8.5): identity = name, type, digest, resolved path, config
 * and adapters. OpenSession on an empty slot loads; the same identity idle is
 * reused warm; the same identity with a handle open is `model_busy`; another
 * identity is `model_busy` with a handle open, else `model_switch_required`.
 * LoadModel / UnloadModel honour `expected_generation`
 * (`slot_generation_stale`). A closed handle leaves the model resident; the
 * idle reaper (`idleTtlMs`) unloads a Ready model idle that long. Embed is
 * `model_busy` with a handle open or an explicitly loaded model, and evicts an
 * idle implicit one.
 *
 * @example
 * ```ts ignore
 * import { SlotService } from "./slot.ts";
 * import { ModelStore } from "./model_store.ts";
 * const slot = new SlotService({ owner: "id", backend: "llama", store: new ModelStore("/tmp/m"), engine });
 * const session = await slot.openSession({ ...req, ownerInstanceId: "id" });
 * console.log(session.generation);
 * ```
 *
 * @module
 */

import { create, type MessageInitShape, toJsonString } from "@bufbuild/protobuf";
import {
  type ActiveModelSchema,
  type AdapterSpec,
  AdapterSpecSchema,
  type Config,
  ConfigSchema,
  type ContextReportSchema,
  type DaemonStatusSchema,
  type DecodeConfig,
  type ModelInfoSchema,
  type PrefixInput,
  type PrefixStatusSchema,
  type SessionSnapshot,
  type SessionSnapshotSchema,
  type SuffixInput,
  type SuffixStatusSchema,
} from "../../gen/contenox/transport/v1/compute_pb.ts";
import type { DecodeChunkInit, DecodeContext, Engine, EngineSession, ModelSpec } from "./engine.ts";
import type { ModelStore } from "./model_store.ts";
import { join } from "node:path";
import { sha256Hex } from "../push.ts";
import { sentinelText, ServiceError } from "./sentinels.ts";

/** The fields of a model request the slot looks at. */
export interface ModelRequest {
  /** The body fence. */
  ownerInstanceId: string;
  /** The model name. */
  modelName: string;
  /** `llama`, `openvino`, or "". */
  type: string;
  /** The content digest. */
  digest: string;
  /** The path ("" = resolve in the model store). */
  path: string;
  /** The load config. */
  config?: Config;
  /** LoRA adapters (part of the identity). */
  adapters?: AdapterSpec[];
}

/** A slot state, as `DaemonStatus.state` reports it. */
export type SlotState =
  | "Empty"
  | "Loading"
  | "Ready"
  | "Busy"
  | "Switching"
  | "Unloading"
  | "Failed"
  | "Idle";

/** Options of a {@linkcode SlotService}. */
export interface SlotOptions {
  /** The owner instance id the body fence must equal. */
  owner: string;
  /** The served backend (`llama`, `openvino`, ...); a request for another type is refused. */
  backend: string;
  /** Where models named without a path are resolved. */
  store: ModelStore;
  /** The engine that loads models, describes and embeds. */
  engine: Engine;
  /**
   * Unload a `Ready` model idle this long (ms), even with a handle open: the
   * handle then gets `slot_generation_stale`. 0 or absent: never.
   */
  idleTtlMs?: number;
  /**
   * Where Snapshot keeps engine states (`<dataRoot>/modeld-blobs/<backend>`);
   * a snapshot then carries only its `state_id`. Absent: states stay inline.
   */
  blobDir?: string;
}

interface Identity extends ModelSpec {
  config: Config;
  adapters: AdapterSpec[];
  key: string;
}

interface ActiveSlot {
  identity: Identity;
  session: EngineSession;
  generation: bigint;
  refs: number;
  explicit: boolean;
}

/** One operation at a time; waiters honour their signal. */
class OpLock {
  #held = false;
  readonly #waiters: Array<() => void> = [];

  acquire(signal?: AbortSignal): Promise<() => void> {
    const release = () => {
      const next = this.#waiters.shift();
      if (next) next();
      else this.#held = false;
    };
    if (signal?.aborted) return Promise.reject(contextError(signal));
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve(once(release));
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve(once(release));
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(contextError(signal!));
      };
      this.#waiters.push(grant);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  tryAcquire(): (() => void) | undefined {
    if (this.#held) return undefined;
    this.#held = true;
    return once(() => {
      const next = this.#waiters.shift();
      if (next) next();
      else this.#held = false;
    });
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/** The error a Go handler returns for a cancelled or expired context. */
function contextError(signal: AbortSignal): ServiceError {
  const reason = signal.reason;
  return reason instanceof DOMException && reason.name === "TimeoutError"
    ? ServiceError.of("deadline_exceeded")
    : ServiceError.of("context_canceled");
}

/**
 * The single model slot.
 *
 * @example
 * ```ts ignore
 * const active = await slot.loadModel({ ...req, expectedGeneration: 0n });
 * console.log(active.generation, slot.status().state);
 * ```
 */
export class SlotService {
  readonly #options: SlotOptions;
  readonly #lock = new OpLock();
  #active: ActiveSlot | undefined;
  #generation = 0n;
  #state: SlotState = "Empty";
  #busyOp = "";
  #lastError = "";
  #lastUsed = Date.now();
  #reaper: ReturnType<typeof setInterval> | undefined;

  /**
   * @param options Owner fence, backend, model store, engine and idle TTL.
   */
  constructor(options: SlotOptions) {
    this.#options = options;
    const ttl = options.idleTtlMs ?? 0;
    if (ttl > 0) {
      // modeld ticks every max(ttl/3, 1s).
      this.#reaper = setInterval(() => {
        // A model that fails to close leaves the slot Failed, as in modeld; never a crash.
        this.#reapIdle(ttl).catch((err) => this.#failed(err));
      }, Math.max(ttl / 3, 1000));
    }
  }

  /** Unloads a Ready model idle for `ttl` ms, handle or not (modeld's idle reaper). */
  async #reapIdle(ttl: number): Promise<void> {
    const unlock = this.#lock.tryAcquire();
    if (!unlock) return; // an operation is running: not idle
    try {
      const active = this.#active;
      if (!active || this.#state !== "Ready" || Date.now() - this.#lastUsed < ttl) return;
      await this.#evict(active, "Idle", "idle_reap");
      this.#state = "Idle";
      this.#busyOp = "";
    } finally {
      unlock();
    }
  }

  /**
   * Stops the idle reaper and frees the resident model (daemon shutdown).
   *
   * @example
   * ```ts ignore
   * await slot.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#reaper !== undefined) clearInterval(this.#reaper);
    this.#reaper = undefined;
    const unlock = await this.#lock.acquire();
    try {
      if (this.#active) await this.#evict(this.#active, "Unloading", "unload");
      this.#state = "Empty";
      this.#busyOp = "";
    } finally {
      unlock();
    }
  }

  #touch(): void {
    this.#lastUsed = Date.now();
  }

  /** The current slot generation. */
  get generation(): bigint {
    return this.#generation;
  }

  /**
   * The DaemonStatus (owner, backend, state, active model, busy op, last error).
   *
   * @returns The status.
   *
   * @example
   * ```ts ignore
   * console.log(slot.status().state);
   * ```
   */
  status(): MessageInitShape<typeof DaemonStatusSchema> {
    const st: MessageInitShape<typeof DaemonStatusSchema> = {
      ownerInstanceId: this.#options.owner,
      backend: this.#options.backend,
      state: this.#state,
      busyOperation: this.#busyOp,
      lastError: this.#lastError,
    };
    if (this.#active) st.active = activeModel(this.#active.identity, this.#active.generation);
    return st;
  }

  #checkFence(owner: string): void {
    if (this.#options.owner !== "" && owner !== this.#options.owner) {
      throw ServiceError.of("stale_fence");
    }
  }

  async #identity(req: ModelRequest): Promise<Identity> {
    const path = req.path !== ""
      ? req.path
      : await this.#options.store.resolve(req.modelName, req.type, req.digest);
    const config = req.config ?? create(ConfigSchema);
    const adapters = req.adapters ?? [];
    const key = JSON.stringify([
      req.modelName,
      req.type,
      req.digest,
      path,
      toJsonString(ConfigSchema, config, { alwaysEmitImplicit: true }),
      adapters.map((a) => toJsonString(AdapterSpecSchema, a, { alwaysEmitImplicit: true })),
    ]);
    return {
      modelName: req.modelName,
      type: req.type,
      digest: req.digest,
      path,
      config,
      adapters,
      key,
    };
  }

  /** The backend's own type check (llama/openvino refuse the other type). */
  #checkBackend(type: string): void {
    const backend = this.#options.backend;
    if ((backend === "llama" || backend === "openvino") && type !== "" && type !== backend) {
      throw ServiceError.of(
        "backend_mismatch",
        `requested ${JSON.stringify(type)}, this daemon serves ${backend}`,
      );
    }
  }

  #failed(err: unknown): void {
    this.#state = "Failed";
    this.#busyOp = "";
    this.#lastError = err instanceof Error ? err.message : String(err);
  }

  /** Unloads the resident model (generation++), showing `state` / `op` while it closes. */
  async #evict(active: ActiveSlot, state: SlotState, op: string): Promise<void> {
    this.#state = state;
    this.#busyOp = op;
    this.#active = undefined;
    this.#generation++;
    await active.session.close();
  }

  /** The engine's load, wrapped as `model_load_failed` like the slot does. */
  async #load(
    identity: Identity,
    signal: AbortSignal | undefined,
    state: "Loading" | "Switching" = "Loading",
  ): Promise<EngineSession> {
    this.#state = state;
    this.#busyOp = state === "Switching" ? "switch" : "load";
    try {
      this.#checkBackend(identity.type);
      const session = await this.#options.engine.load(identity, signal);
      this.#touch();
      return session;
    } catch (err) {
      const inner = err instanceof ServiceError
        ? err
        : new ServiceError("", err instanceof Error ? err.message : String(err));
      const wrapped = new ServiceError(
        "model_load_failed",
        `modeld failed to load model: ${inner.message}`,
        { wraps: inner.token ? [inner.token] : [] },
      );
      this.#busyOp = "";
      this.#lastError = wrapped.message;
      this.#state = "Failed";
      throw wrapped;
    }
  }

  /**
   * LoadModel: make `req` the resident model, explicitly.
   *
   * @param req The model and `expectedGeneration` (0 = unconditional).
   * @param signal Cancels the wait for the operation lock.
   * @returns The ActiveModel.
   * @throws {ServiceError} `stale_fence`, `slot_generation_stale`, `model_busy`, `model_load_failed`, store errors.
   *
   * @example
   * ```ts ignore
   * const active = await slot.loadModel({ ...req, expectedGeneration: 0n });
   * ```
   */
  async loadModel(
    req: ModelRequest & { expectedGeneration: bigint },
    signal?: AbortSignal,
  ): Promise<MessageInitShape<typeof ActiveModelSchema>> {
    this.#checkFence(req.ownerInstanceId);
    const identity = await this.#identity(req);
    const unlock = await this.#lock.acquire(signal);
    try {
      if (req.expectedGeneration !== 0n && req.expectedGeneration !== this.#generation) {
        throw ServiceError.of("slot_generation_stale");
      }
      const active = this.#active;
      if (active && active.identity.key === identity.key) {
        active.explicit = true;
        this.#ready();
        return activeModel(active.identity, active.generation);
      }
      if (active && active.refs > 0) throw ServiceError.of("model_busy");
      if (active) await this.#evict(active, "Switching", "switch");
      const session = await this.#load(identity, signal, active ? "Switching" : "Loading");
      this.#generation++;
      this.#active = { identity, session, generation: this.#generation, refs: 0, explicit: true };
      this.#ready();
      return activeModel(identity, this.#generation);
    } finally {
      unlock();
    }
  }

  /**
   * UnloadModel: empty the slot.
   *
   * @param req The body fence and `expectedGeneration` (0 = unconditional).
   * @param signal Cancels the wait for the operation lock.
   * @throws {ServiceError} `stale_fence`, `slot_generation_stale`, `model_busy`.
   *
   * @example
   * ```ts ignore
   * await slot.unloadModel({ ownerInstanceId: "id", expectedGeneration: active.generation });
   * ```
   */
  async unloadModel(
    req: { ownerInstanceId: string; expectedGeneration: bigint },
    signal?: AbortSignal,
  ): Promise<void> {
    this.#checkFence(req.ownerInstanceId);
    const unlock = await this.#lock.acquire(signal);
    try {
      if (req.expectedGeneration !== 0n && req.expectedGeneration !== this.#generation) {
        throw ServiceError.of("slot_generation_stale");
      }
      const active = this.#active;
      if (active && active.refs > 0) throw ServiceError.of("model_busy");
      if (active) await this.#evict(active, "Unloading", "unload");
      this.#state = "Empty";
      this.#busyOp = "";
      this.#lastError = "";
    } finally {
      unlock();
    }
  }

  /**
   * OpenSession: hand out the slot's one handle.
   *
   * @param req The model request.
   * @param signal Cancels the wait for the operation lock.
   * @returns The session, bound to the current generation.
   * @throws {ServiceError} `stale_fence`, `model_busy`, `model_switch_required`, `model_load_failed`, store errors.
   *
   * @example
   * ```ts ignore
   * const session = await slot.openSession(req);
   * ```
   */
  async openSession(req: ModelRequest, signal?: AbortSignal): Promise<SlotSession> {
    this.#checkFence(req.ownerInstanceId);
    const identity = await this.#identity(req);
    const unlock = await this.#lock.acquire(signal);
    try {
      const active = this.#active;
      if (active) {
        if (active.identity.key === identity.key) {
          if (active.refs > 0) throw ServiceError.of("model_busy");
          active.refs = 1;
          this.#ready();
          return new SlotSession(this, active.generation);
        }
        throw ServiceError.of(active.refs > 0 ? "model_busy" : "model_switch_required");
      }
      const session = await this.#load(identity, signal);
      this.#generation++;
      this.#active = { identity, session, generation: this.#generation, refs: 1, explicit: false };
      this.#ready();
      return new SlotSession(this, this.#generation);
    } finally {
      unlock();
    }
  }

  /**
   * Describe: the engine's ModelInfo for the requested model.
   *
   * @param req The model request.
   * @param signal Cancels reading the model.
   * @returns The ModelInfo.
   * @throws {ServiceError} `stale_fence`, `backend_mismatch`, store errors, engine errors.
   *
   * @example
   * ```ts ignore
   * const info = await slot.describe(req);
   * ```
   */
  async describe(
    req: ModelRequest,
    signal?: AbortSignal,
  ): Promise<MessageInitShape<typeof ModelInfoSchema>> {
    this.#checkFence(req.ownerInstanceId);
    const identity = await this.#identity(req);
    this.#checkBackend(req.type);
    return await this.#options.engine.describe(identity, signal);
  }

  /**
   * Embed: a one-shot embedding outside the session slot.
   *
   * @param req The model request and text.
   * @param signal Cancels the wait for the operation lock.
   * @returns The vector.
   * @throws {ServiceError} `stale_fence`, `model_busy`, `backend_mismatch`, `unsupported_feature`.
   *
   * @example
   * ```ts ignore
   * const vector = await slot.embed({ ...req, text: "hi" });
   * ```
   */
  async embed(req: ModelRequest & { text: string }, signal?: AbortSignal): Promise<number[]> {
    this.#checkFence(req.ownerInstanceId);
    const identity = await this.#identity(req);
    const unlock = await this.#lock.acquire(signal);
    try {
      const active = this.#active;
      if (active) {
        if (active.refs > 0 || active.explicit) throw ServiceError.of("model_busy");
        await this.#evict(active, "Unloading", "embed");
      }
      this.#state = "Busy";
      this.#busyOp = "embed";
      try {
        this.#checkBackend(req.type);
        const vector = await this.#options.engine.embed(identity, req.text, signal);
        this.#markReadyOrError(undefined);
        return vector;
      } catch (err) {
        this.#markReadyOrError(err as ServiceError);
        throw err;
      }
    } finally {
      unlock();
    }
  }

  /**
   * Refuses to remove the resident model's files.
   *
   * @param name The model name about to be removed.
   * @throws {ServiceError} `model_busy` when `name` is resident.
   *
   * @example
   * ```ts ignore
   * slot.checkRemovable("qwen");
   * ```
   */
  checkRemovable(name: string): void {
    if (this.#active && this.#active.identity.modelName === name) {
      throw new ServiceError(
        "model_busy",
        `cannot remove model ${JSON.stringify(name)}: ${sentinelText("model_busy")}`,
      );
    }
  }

  #ready(): void {
    this.#touch();
    this.#state = "Ready";
    this.#busyOp = "";
    this.#lastError = "";
  }

  /** @internal Runs a session operation under the lock, with generation fencing. */
  async withSession<T>(
    generation: bigint,
    op: string,
    signal: AbortSignal | undefined,
    fn: (session: EngineSession) => Promise<T> | T,
  ): Promise<T> {
    const unlock = await this.#lock.acquire(signal);
    try {
      const session = this.#begin(generation, op);
      try {
        const out = await fn(session);
        this.#markReadyOrError(undefined);
        return out;
      } catch (err) {
        this.#markReadyOrError(err instanceof ServiceError ? err : undefined);
        throw err;
      }
    } finally {
      unlock();
    }
  }

  /** @internal A Decode: the lock is held until the stream ends. */
  async *decode(
    generation: bigint,
    config: DecodeConfig,
    options: DecodeContext,
  ): AsyncGenerator<DecodeChunkInit> {
    const unlock = await this.#lock.acquire(options.signal);
    let streamErr: ServiceError | undefined;
    try {
      const session = this.#begin(generation, "decode");
      let chunks: AsyncIterable<DecodeChunkInit>;
      try {
        chunks = session.decode(config, options);
      } catch (err) {
        streamErr = err instanceof ServiceError ? err : undefined;
        throw err;
      }
      for await (const chunk of chunks) {
        if (chunk.error) streamErr = new ServiceError(chunk.errorToken ?? "", chunk.error);
        yield chunk;
      }
      if (options.signal?.aborted) streamErr = undefined; // cancelled: not recorded
    } finally {
      this.#markReadyOrError(streamErr);
      unlock();
    }
  }

  /** @internal Releases a handle; the model stays resident. */
  async release(generation: bigint): Promise<void> {
    const unlock = await this.#lock.acquire();
    try {
      const active = this.#active;
      if (!active || active.generation !== generation) return;
      if (active.refs > 0) active.refs--;
      this.#ready();
    } finally {
      unlock();
    }
  }

  /** @internal Moves a snapshot's engine state into the blob store, as modeld's slot does. */
  async storeBlob(
    snap: MessageInitShape<typeof SessionSnapshotSchema>,
  ): Promise<MessageInitShape<typeof SessionSnapshotSchema>> {
    const dir = this.#options.blobDir;
    const state = snap.state;
    if (!dir || !state || state.length === 0) return snap;
    const id = await sha256Hex(state);
    try {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      const path = join(dir, `${id}.bin`);
      await Deno.writeFile(`${path}.tmp`, state, { mode: 0o600 });
      await Deno.rename(`${path}.tmp`, path);
    } catch {
      return snap; // modeld only logs a failed write; the state_id stays empty
    }
    return { ...snap, stateId: id, state: new Uint8Array() };
  }

  /** @internal Fills a snapshot's state from the blob store. */
  async loadBlob(snap: SessionSnapshot): Promise<SessionSnapshot> {
    const dir = this.#options.blobDir;
    if (!dir || snap.stateId === "" || snap.state.length > 0) return snap;
    const path = join(dir, `${snap.stateId}.bin`);
    if (!/^[0-9a-f]{64}$/.test(snap.stateId)) {
      throw new ServiceError("", `snapshot blob not found: open ${path}: invalid state id`);
    }
    try {
      return { ...snap, state: await Deno.readFile(path) };
    } catch {
      throw new ServiceError(
        "",
        `snapshot blob not found: open ${path}: no such file or directory`,
      );
    }
  }

  /** @internal Non-blocking probe used by tests: whether no operation holds the lock. */
  idle(): boolean {
    const unlock = this.#lock.tryAcquire();
    unlock?.();
    return unlock !== undefined;
  }

  #begin(generation: bigint, op: string): EngineSession {
    const active = this.#active;
    if (!active) {
      if (generation !== 0n && generation !== this.#generation) {
        throw ServiceError.of("slot_generation_stale");
      }
      throw ServiceError.of("model_not_active");
    }
    if (active.generation !== generation) throw ServiceError.of("slot_generation_stale");
    this.#state = "Busy";
    this.#busyOp = op;
    this.#lastError = "";
    return active.session;
  }

  #markReadyOrError(err: ServiceError | undefined): void {
    this.#touch();
    this.#busyOp = "";
    if (err && err.token !== "context_canceled") {
      this.#lastError = err.message;
      if (err.token === "session_fatal") {
        if (this.#active) {
          this.#active.session.close().catch(() => {}); // already failed: best effort
          this.#active = undefined;
          this.#generation++;
        }
        this.#state = "Failed";
        return;
      }
      if (err.token === "session_closed" || err.token === "slot_generation_stale") {
        this.#state = "Failed";
        return;
      }
    }
    this.#state = this.#active ? "Ready" : "Empty";
  }
}

/**
 * A handle's view of the slot: every call is fenced by the generation it was
 * opened at.
 *
 * @example
 * ```ts ignore
 * const st = await session.ensurePrefix(prefix);
 * await session.close();
 * ```
 */
export class SlotSession implements EngineSession {
  readonly #slot: SlotService;
  /** The slot generation this handle belongs to. */
  readonly generation: bigint;
  #closed = false;

  /**
   * @param slot The slot.
   * @param generation The generation at open.
   */
  constructor(slot: SlotService, generation: bigint) {
    this.#slot = slot;
    this.generation = generation;
  }

  /** Whether the handle was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  #check(): void {
    if (this.#closed) throw ServiceError.of("session_closed");
  }

  /**
   * EnsurePrefix through the slot.
   *
   * @param prefix The prefix.
   * @param signal Cancels the wait for the lock.
   * @returns The PrefixStatus.
   *
   * @example
   * ```ts ignore
   * await session.ensurePrefix(prefix);
   * ```
   */
  ensurePrefix(
    prefix: PrefixInput,
    signal?: AbortSignal,
  ): Promise<MessageInitShape<typeof PrefixStatusSchema>> {
    this.#check();
    return this.#slot.withSession(
      this.generation,
      "ensure_prefix",
      signal,
      (s) => s.ensurePrefix(prefix),
    );
  }

  /**
   * PrefillSuffix through the slot.
   *
   * @param suffix The suffix.
   * @param signal Cancels the wait for the lock.
   * @returns The SuffixStatus.
   *
   * @example
   * ```ts ignore
   * await session.prefillSuffix(suffix);
   * ```
   */
  prefillSuffix(
    suffix: SuffixInput,
    signal?: AbortSignal,
  ): Promise<MessageInitShape<typeof SuffixStatusSchema>> {
    this.#check();
    return this.#slot.withSession(
      this.generation,
      "prefill_suffix",
      signal,
      (s) => s.prefillSuffix(suffix),
    );
  }

  /**
   * Decode through the slot (holds the slot until the stream ends).
   *
   * @param config The Decode config.
   * @param options Handle, reply, pacing, cancellation.
   * @returns The chunks.
   *
   * @example
   * ```ts ignore
   * for await (const c of session.decode(config, { handle })) console.log(c.text);
   * ```
   */
  decode(config: DecodeConfig, options: DecodeContext): AsyncGenerator<DecodeChunkInit> {
    this.#check();
    return this.#slot.decode(this.generation, config, options);
  }

  /**
   * ExplainContext; `{Closed: true}` when the handle is closed or stale.
   *
   * @returns The ContextReport.
   *
   * @example
   * ```ts ignore
   * console.log((await session.explain()).residentTokens);
   * ```
   */
  async explain(): Promise<MessageInitShape<typeof ContextReportSchema>> {
    if (this.#closed) return { closed: true };
    try {
      return await this.#slot.withSession(
        this.generation,
        "explain_context",
        undefined,
        (s) => s.explain(),
      );
    } catch {
      return { closed: true };
    }
  }

  /**
   * Snapshot through the slot.
   *
   * @param signal Cancels the wait for the lock.
   * @returns The SessionSnapshot.
   *
   * @example
   * ```ts ignore
   * const snap = await session.snapshot();
   * ```
   */
  snapshot(signal?: AbortSignal): Promise<MessageInitShape<typeof SessionSnapshotSchema>> {
    this.#check();
    return this.#slot.withSession(
      this.generation,
      "snapshot",
      signal,
      async (s) => this.#slot.storeBlob(await s.snapshot(signal)),
    );
  }

  /**
   * Restore through the slot.
   *
   * @param snap The snapshot.
   * @param signal Cancels the wait for the lock.
   *
   * @example
   * ```ts ignore
   * await session.restore(snap);
   * ```
   */
  restore(snap: SessionSnapshot, signal?: AbortSignal): Promise<void> {
    this.#check();
    return this.#slot.withSession(
      this.generation,
      "restore",
      signal,
      async (s) => s.restore(await this.#slot.loadBlob(snap), signal),
    );
  }

  /**
   * Releases the handle (idempotent); the model stays resident.
   *
   * @example
   * ```ts ignore
   * await session.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#slot.release(this.generation);
  }
}

function activeModel(
  identity: Identity,
  generation: bigint,
): MessageInitShape<typeof ActiveModelSchema> {
  return {
    modelName: identity.modelName,
    type: identity.type,
    digest: identity.digest,
    path: identity.path,
    config: identity.config,
    adapters: identity.adapters,
    generation,
  };
}
