/**
 * The scripted engine behind `@contenox/modeldconn/testing`: every model
 * loads into a {@linkcode MemorySession} (a token is a code point, replies
 * are scripted), so the daemon core can be tested without model files.
 *
 * @example
 * ```ts ignore
 * import { ScriptedEngine } from "./scripted_engine.ts";
 * const engine = new ScriptedEngine({ version: "v0.36.0", reply: "Hi!" });
 * const session = await engine.load(spec);
 * ```
 *
 * @module
 */

import type { DecodeConfig, SessionSnapshot } from "../../gen/contenox/transport/v1/compute_pb.ts";
import type {
  DecodeContext,
  Engine,
  EngineSession,
  ModelInfoInit,
  ModelSpec,
} from "../daemon/engine.ts";
import { type DaemonVersion, ServiceError } from "../daemon/sentinels.ts";
import { MemorySession, type Reply } from "./memory_service.ts";

/** Options of a {@linkcode ScriptedEngine}. */
export interface ScriptedEngineOptions {
  /** Whose session rules apply. */
  version: DaemonVersion;
  /** Scripted Decode replies. */
  reply?: Reply;
  /** Delay between Decode chunks, in milliseconds. */
  chunkDelayMs?: number;
  /** Embedding function; without it Embed is `unsupported_feature`, as in Go's memory service. */
  embedding?: (text: string) => number[];
}

/**
 * An {@linkcode Engine} over in-memory sessions with scripted replies.
 *
 * @example
 * ```ts ignore
 * const engine = new ScriptedEngine({ version: "v0.32.3" });
 * ```
 */
export class ScriptedEngine implements Engine {
  readonly #options: ScriptedEngineOptions;

  /** @param options Version rules, replies and embedding. */
  constructor(options: ScriptedEngineOptions) {
    this.#options = options;
  }

  /**
   * A new in-memory session with the model's `NumCtx` as its window.
   *
   * @param model The model.
   * @returns The session.
   *
   * @example
   * ```ts ignore
   * const session = await engine.load(spec);
   * ```
   */
  load(model: ModelSpec): Promise<EngineSession> {
    const session = new MemorySession({
      version: this.#options.version,
      numCtx: model.config.numCtx,
    });
    const { reply, chunkDelayMs } = this.#options;
    return Promise.resolve({
      ensurePrefix: (p) => session.ensurePrefix(p),
      prefillSuffix: (s) => session.prefillSuffix(s),
      decode: (config: DecodeConfig, ctx: DecodeContext) =>
        session.decode(config, { handle: ctx.handle, signal: ctx.signal, reply, chunkDelayMs }),
      explain: () => Promise.resolve(session.explain()),
      snapshot: () => Promise.resolve(session.snapshot()),
      restore: (snap: SessionSnapshot) => session.restore(snap),
      close: () => Promise.resolve(session.close()),
    });
  }

  /**
   * The memory backend's ModelInfo: `NumCtx` in every window field (v0.32.3:
   * the two fields it had).
   *
   * @param model The model.
   * @returns The ModelInfo.
   *
   * @example
   * ```ts ignore
   * console.log((await engine.describe(spec)).effectiveContext);
   * ```
   */
  describe(model: ModelSpec): Promise<ModelInfoInit> {
    const n = model.config.numCtx;
    if (this.#options.version === "v0.32.3") {
      return Promise.resolve({ modelMaxContext: n, effectiveContext: n });
    }
    return Promise.resolve({
      modelMaxContext: n,
      effectiveContext: n,
      hotContextTokens: n,
      plannerEffectiveContext: n,
    });
  }

  /**
   * The scripted embedding, or `unsupported_feature` without one.
   *
   * @param _model The model (unused).
   * @param text The text.
   * @returns The vector.
   *
   * @example
   * ```ts ignore
   * const v = await engine.embed(spec, "hi");
   * ```
   */
  embed(_model: ModelSpec, text: string): Promise<number[]> {
    const fn = this.#options.embedding;
    if (!fn) return Promise.reject(ServiceError.of("unsupported_feature"));
    return Promise.resolve(fn(text));
  }

  /** Nothing to free. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
