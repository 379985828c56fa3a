/**
 * The seam between the daemon core and an inference engine. The core (gRPC
 * service, fence, handles, the single model slot, the model store, the lease)
 * knows an engine only through these two small interfaces; an engine is one
 * file that implements them. Two exist: the scripted engine of
 * `@contenox/modeldconn/testing` and the llama.cpp engine of
 * `@contenox/modeldconn/daemon`.
 *
 * Engines throw {@linkcode ServiceError}s carrying the daemon's error tokens
 * (`context_overflow`, `manifest_mismatch`, `unsupported_feature`, ...); the
 * core encodes them on the wire.
 *
 * @example
 * ```ts ignore
 * import type { Engine } from "./engine.ts";
 *
 * async function warm(engine: Engine, model: ModelSpec) {
 *   const session = await engine.load(model);
 *   await session.close();
 * }
 * ```
 *
 * @module
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  AdapterSpec,
  Config,
  ContextReportSchema,
  DecodeChunkSchema,
  DecodeConfig,
  ModelInfoSchema,
  PrefixInput,
  PrefixStatusSchema,
  SessionSnapshot,
  SessionSnapshotSchema,
  SuffixInput,
  SuffixStatusSchema,
} from "../../gen/contenox/transport/v1/compute_pb.ts";

/** A Decode stream message as an engine builds it. */
export type DecodeChunkInit = MessageInitShape<typeof DecodeChunkSchema>;
/** A PrefixStatus as an engine builds it. */
export type PrefixStatusInit = MessageInitShape<typeof PrefixStatusSchema>;
/** A SuffixStatus as an engine builds it. */
export type SuffixStatusInit = MessageInitShape<typeof SuffixStatusSchema>;
/** A ContextReport as an engine builds it. */
export type ContextReportInit = MessageInitShape<typeof ContextReportSchema>;
/** A SessionSnapshot as an engine builds it. */
export type SessionSnapshotInit = MessageInitShape<typeof SessionSnapshotSchema>;
/** A ModelInfo as an engine builds it. */
export type ModelInfoInit = MessageInitShape<typeof ModelInfoSchema>;

/**
 * A model as the slot resolved it: the request's identity with the path
 * filled in from the model store when the request named none.
 *
 * @example
 * ```ts ignore
 * const spec: ModelSpec = { modelName: "smol", type: "llama", digest: "", path: "/m/smol.gguf", config, adapters: [] };
 * ```
 */
export interface ModelSpec {
  /** The model name. */
  readonly modelName: string;
  /** `llama`, `openvino` or "". */
  readonly type: string;
  /** The content digest the caller expects ("" = any). */
  readonly digest: string;
  /** The resolved model path. */
  readonly path: string;
  /** The load config (`NumCtx`, `NumThreads`, ...). */
  readonly config: Config;
  /** LoRA adapters. */
  readonly adapters: readonly AdapterSpec[];
}

/**
 * What a Decode needs besides its config.
 *
 * @example
 * ```ts ignore
 * for await (const chunk of session.decode(config, { handle, signal })) console.log(chunk.text);
 * ```
 */
export interface DecodeContext {
  /** The session handle (scripted replies may echo it). */
  readonly handle: string;
  /** Aborted when the caller cancels the RPC: stop generating at once. */
  readonly signal: AbortSignal;
}

/**
 * One resident model and its context, as the slot holds it. Operations are
 * never concurrent: the slot runs one at a time.
 *
 * @example
 * ```ts ignore
 * const st = await session.ensurePrefix(prefix, signal);
 * await session.prefillSuffix(suffix, signal);
 * for await (const chunk of session.decode(config, { handle, signal })) console.log(chunk.text);
 * ```
 */
export interface EngineSession {
  /** Makes the resident context equal to the stable prefix, reusing what it can. */
  ensurePrefix(prefix: PrefixInput, signal?: AbortSignal): Promise<PrefixStatusInit>;
  /** Appends the volatile part and gets ready to sample. */
  prefillSuffix(suffix: SuffixInput, signal?: AbortSignal): Promise<SuffixStatusInit>;
  /** Streams generated text; an in-band error chunk ends the stream with failure. */
  decode(config: DecodeConfig, context: DecodeContext): AsyncIterable<DecodeChunkInit>;
  /** The observability report. */
  explain(): Promise<ContextReportInit>;
  /** Saves the state; returns the snapshot metadata. */
  snapshot(signal?: AbortSignal): Promise<SessionSnapshotInit>;
  /** Loads a state saved by {@linkcode EngineSession.snapshot}. */
  restore(snapshot: SessionSnapshot, signal?: AbortSignal): Promise<void>;
  /** Frees the model and its context. Idempotent. */
  close(): Promise<void>;
}

/**
 * An inference engine: loads models into sessions, describes and embeds.
 *
 * @example
 * ```ts ignore
 * const session = await engine.load(spec);
 * console.log((await engine.describe(spec)).modelMaxContext);
 * ```
 */
export interface Engine {
  /**
   * Loads a model. Throws with a message that says what is wrong with the
   * file (the slot wraps it as `model_load_failed`).
   */
  load(model: ModelSpec, signal?: AbortSignal): Promise<EngineSession>;
  /** The ModelInfo of a model, without making it resident. */
  describe(model: ModelSpec, signal?: AbortSignal): Promise<ModelInfoInit>;
  /** A one-shot embedding outside the session slot. */
  embed(model: ModelSpec, text: string, signal?: AbortSignal): Promise<number[]>;
  /** Frees everything the engine holds. */
  close(): Promise<void>;
}
