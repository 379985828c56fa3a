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
   * A new in-memory session with the model's `NumCtx` as its window. A model
   * `path` must name an existing file (its content is not read), as the real
   * daemon requires; the slot reports a missing one as `model_load_failed`.
   *
   * @param model The model.
   * @returns The session.
   *
   * @example
   * ```ts ignore
   * const session = await engine.load(spec);
   * ```
   */
  async load(model: ModelSpec): Promise<EngineSession> {
    if (model.path !== "") await checkModelFile(model.path);
    const session = new MemorySession({
      version: this.#options.version,
      numCtx: model.config.numCtx,
    });
    const { reply, chunkDelayMs } = this.#options;
    return {
      ensurePrefix: (p) => session.ensurePrefix(p),
      prefillSuffix: (s) => session.prefillSuffix(s),
      decode: (config: DecodeConfig, ctx: DecodeContext) =>
        session.decode(config, { handle: ctx.handle, signal: ctx.signal, reply, chunkDelayMs }),
      explain: () => Promise.resolve(session.explain()),
      snapshot: () => Promise.resolve(session.snapshot()),
      restore: (snap: SessionSnapshot) => session.restore(snap),
      close: () => Promise.resolve(session.close()),
    };
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
  async describe(model: ModelSpec): Promise<ModelInfoInit> {
    if (model.path !== "") await checkModelFile(model.path);
    const n = model.config.numCtx;
    if (this.#options.version === "v0.32.3") {
      return { modelMaxContext: n, effectiveContext: n };
    }
    return {
      modelMaxContext: n,
      effectiveContext: n,
      hotContextTokens: n,
      plannerEffectiveContext: n,
    };
  }

  /**
   * The scripted embedding, or `unsupported_feature` without one.
   *
   * @param model The model (its path must exist, when given).
   * @param text The text.
   * @returns The vector.
   *
   * @example
   * ```ts ignore
   * const v = await engine.embed(spec, "hi");
   * ```
   */
  async embed(model: ModelSpec, text: string): Promise<number[]> {
    const fn = this.#options.embedding;
    if (!fn) throw ServiceError.of("unsupported_feature");
    if (model.path !== "") await checkModelFile(model.path);
    return fn(text);
  }

  /** Nothing to free. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Fails like a daemon opening a model file that is not there (or not readable). */
async function checkModelFile(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`open ${path}: no such file or directory`);
    }
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        `open ${path}: the test daemon cannot read it (run the tests with --allow-read=${path})`,
      );
    }
    throw new Error(`open ${path}: ${(err as Error).message}`);
  }
  if (!info.isFile) throw new Error(`open ${path}: not a regular file`);
}
